"""Fine-tuning the LLM (LoRA on CPU → merged F16 GGUF) and training the guard classifiers.

``data`` builds the training set, ``lora`` trains, ``gguf_export`` writes the served file,
``finetune`` and ``guards`` are the tracked, registered jobs behind ``genai-factory train``.
"""
