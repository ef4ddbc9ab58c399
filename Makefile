# ghost-engine: `make run` starts the local stack, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
API_PORT ?= 8000

.PHONY: run test unit integration deploy-check smoke bench bench-generator clean help

help:
	@echo "make run    - start the local stack (emulator, worker, API) in the foreground"
	@echo "make test   - install the dev dependencies and run the whole suite"
	@echo "make unit   - the fast offline tests only"
	@echo "make deploy-check - terraform fmt/validate/test, apply to an emulator, boot the app from it, destroy"
	@echo "make smoke  - scripts/smoke-test.sh against the running local stack"
	@echo "make bench  - what a job costs beside a bare Celery chain (docs/performance.md)"
	@echo "make bench-generator - time the generator per style at 12, 200 and 1,000 rooms"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "ghost-engine needs Python 3.11+; set PYTHON=python3.11"; exit 2; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps: reinstall only when pyproject.toml changes.
$(VENV)/.local-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local]'
	@touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.local-installed

# dynalite, the second DynamoDB implementation the integration tests run on (package.json).
# The stamp lives in node_modules, so deleting node_modules reinstalls too.
NODE_STAMP := node_modules/.npm-installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

run: $(VENV)/.local-installed
	$(BIN)/python scripts/local_stack.py

test: $(VENV)/.dev-installed $(NODE_STAMP)
	$(BIN)/python -m pytest

unit: $(VENV)/.dev-installed
	$(BIN)/python -m pytest tests/unit

integration: $(VENV)/.dev-installed $(NODE_STAMP)
	$(BIN)/python -m pytest tests/integration tests/e2e tests/browser

# deploy/terraform run for real (docs/deploy.md, "Checks"); `make test` runs it too.
deploy-check: $(VENV)/.dev-installed
	$(BIN)/python -m pytest tests/deploy

smoke:
	scripts/smoke-test.sh http://127.0.0.1:$(API_PORT)

# Starts its own emulator and workers on free ports; takes a few minutes. Then the generator alone.
bench: $(VENV)/.dev-installed
	$(BIN)/python scripts/bench.py
	$(BIN)/python scripts/bench_generator.py

# The generator alone, no stack: see docs/performance.md.
bench-generator: $(VENV)/.local-installed
	$(BIN)/python scripts/bench_generator.py

clean:
	rm -rf $(VENV) node_modules .local-stack .pytest_cache
