"""The image-model factory: dataset, pre-processing, trainer, orchestrator, predictor and serving.

It reuses the MLOps core (``genai_factory.mlops``: tracking, registry, aliases, gates, drift tests)
rather than copying it: an image classifier is registered, gated, promoted and followed by the
service exactly like the LLM. The bundled model is a demonstration trained on a public research
set (PneumoniaMNIST), not a diagnostic device. Nothing here imports torch at package import time.
"""
