# ghost-engine: `make run` starts the local stack, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
API_PORT ?= 8000

.PHONY: run run-clean test unit integration deploy-check smoke bench bench-generator soak clean help
.PHONY: lint format lock lock-check lock-upgrade coverage coverage-report

help:
	@echo "make run    - start the local stack (emulator, worker, API) in the foreground"
	@echo "make run-clean - the same, forgetting the jobs kept from earlier runs"
	@echo "make test   - install the dev dependencies and run the whole suite"
	@echo "make unit   - the fast offline tests only"
	@echo "make deploy-check - terraform fmt/validate/test, apply to an emulator, boot the app from it, destroy"
	@echo "make smoke  - scripts/smoke-test.sh against the running local stack"
	@echo "make bench  - what a job costs beside a bare Celery chain (docs/performance.md)"
	@echo "make bench-generator - time the generator per style at 12, 200 and 1,000 rooms"
	@echo "make coverage - make test COVERAGE=1: the suite under branch coverage (what CI runs), failing under the floor"
	@echo "make lint   - ruff, ruff format --check, mypy, hadolint, actionlint, shellcheck, terraform fmt, the lock check"
	@echo "make format - ruff check --fix, then ruff format, over the tree"
	@echo "make lock   - refresh uv.lock (and the image's requirements) after editing pyproject.toml"
	@echo "make lock-upgrade - every dependency to its newest version within pyproject's bounds, then make test"
	@echo "make soak   - SOAK_MINUTES (20) of steady load at 2 % AWS faults: memory, descriptors, latency per minute"

# ---- dependencies: every install is uv.lock's exact versions (README, "Dependencies") ----------
# uv itself, pinned, in its own virtualenv from PyPI: the one tool outside the lock (it reads it).
UV_VERSION := 0.13.9
UV_HOME    := .venv-uv
UV         := $(UV_HOME)/bin/uv
# This machine's Python, never one uv downloads; the project's environment is $(VENV).
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
LOCK_CHECK := $(PYTHON) scripts/check_lock.py --uv $(UV)

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "ghost-engine needs Python 3.11+; set PYTHON=python3.11"; exit 2; }
	$(PYTHON) -m venv $(UV_HOME)
	$(UV_HOME)/bin/python -m pip install --quiet 'uv==$(UV_VERSION)'

$(BIN)/python: | $(UV)
	$(UV) venv --quiet --python $(PYTHON) $(VENV)

# Stamps: resync only when pyproject.toml or uv.lock changes. A stale lock stops here, in one
# line naming `make lock`. `make run` keeps whatever else is installed (--inexact), so it does not
# undo `make test`'s dev tools; `make test` syncs exactly the lock's dev set.
$(VENV)/.local-installed: pyproject.toml uv.lock | $(UV)
	@$(LOCK_CHECK)
	$(UV) sync --locked --inexact --quiet --python $(PYTHON) --extra local
	@touch $@

$(VENV)/.dev-installed: pyproject.toml uv.lock | $(UV)
	@$(LOCK_CHECK)
	$(UV) sync --locked --quiet --python $(PYTHON) --extra dev
	@touch $@ $(VENV)/.local-installed

# dynalite, the second DynamoDB implementation the integration tests run on (package.json).
# The stamp lives in node_modules, so deleting node_modules reinstalls too.
NODE_STAMP := node_modules/.npm-installed
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

run: $(VENV)/.local-installed
	$(BIN)/python scripts/local_stack.py

# The local stack keeps its state across restarts (.local-stack/); this starts it empty.
run-clean: $(VENV)/.local-installed
	$(BIN)/python scripts/local_stack.py --clean

# The suite in two parts: everything but the `serial` tests on TEST_WORKERS processes (pytest-xdist,
# a test file per process at a time; most integration tests wait on the emulator more than they
# compute), then the `serial` ones alone: bound in time (the fault runs' 60 s, the 300-job load).
# TEST_WORKERS=0 runs the first part in one process too. A part that selects nothing
# (PYTEST_ARGS=tests/unit has no serial test) is not a failure (pytest's exit 5); a failure in the
# first part still runs the second, so one run shows every failure.
#
# COVERAGE=1 runs the same suite under branch coverage, subprocesses included ([tool.coverage] in
# pyproject.toml: the workers, servers and CLIs the tests start are measured too), then fails under
# the floor. CI runs `make test COVERAGE=1`. Slower: Python 3.11's tracer makes CPU-bound code (the
# generator) about three times slower, which is why plain `make test` does not measure.
# Two processes. Three were faster (first part 10.7 to 8.5 minutes plain, 13.9 to about 12 under
# coverage, 2026-12-06), but three of five runs with three each failed a test that races its own
# clock on the busier machine (a health check's age, a lease renewal, a worker's first heartbeat
# within its 8 s limit); two have passed many times.
TEST_WORKERS ?= 2
PYTEST_RUN := $(if $(COVERAGE),$(BIN)/coverage run -m pytest,$(BIN)/python -m pytest)
test: $(VENV)/.dev-installed $(NODE_STAMP)
ifdef COVERAGE
	@rm -f .coverage .coverage.*
endif
	@status=0; \
	$(PYTEST_RUN) -n $(TEST_WORKERS) --dist loadfile -m "not serial" $(PYTEST_ARGS) || [ $$? -eq 5 ] || status=1; \
	$(PYTEST_RUN) -m serial $(PYTEST_ARGS) || [ $$? -eq 5 ] || status=1; \
	exit $$status
ifdef COVERAGE
	@$(MAKE) --no-print-directory coverage-report
endif

coverage:
	@$(MAKE) --no-print-directory test COVERAGE=1

# The table (modules under 100 %), the line and branch figures apart, then the floor's verdict.
coverage-report: $(VENV)/.dev-installed
	@$(BIN)/coverage combine --quiet
	@$(BIN)/coverage json --quiet --fail-under 0 -o /dev/stdout | $(BIN)/python -c 'import json, sys; \
		t = json.load(sys.stdin)["totals"]; line = 100 * t["covered_lines"] / t["num_statements"]; \
		branch = 100 * t["covered_branches"] / max(1, t["num_branches"]); both = t["percent_covered"]; \
		print(f"coverage: lines {line:.1f} %, branches {branch:.1f} %, together {both:.1f} %")'
	$(BIN)/coverage report

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

# Steady load at 2 % AWS faults for SOAK_MINUTES (20): memory, descriptors, latency per minute (docs/reliability.md).
soak: $(VENV)/.dev-installed
	$(BIN)/python -m tests.faults.soak

# The generator alone, no stack: see docs/performance.md.
bench-generator: $(VENV)/.local-installed
	$(BIN)/python scripts/bench_generator.py

clean:
	rm -rf $(VENV) $(UV_HOME) node_modules .local-stack .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*

# ---- the lock --------------------------------------------------------------------------------
lock: | $(UV)
	$(UV) lock
	$(LOCK_CHECK) --write

lock-check: | $(UV)
	@$(LOCK_CHECK)

# Newest versions within pyproject.toml's bounds (celery and kombu stay on 5.7.x), then the suite.
lock-upgrade: | $(UV)
	$(UV) lock --upgrade
	$(LOCK_CHECK) --write
	$(MAKE) test

# ---- lint and format (README, "Contributing") -------------------------------------------------
# Every check runs and reports; the target fails if any did. terraform is not on PyPI: without it
# that one check says SKIPPED (tests/deploy, which CI runs, needs it anyway).
LINT_SHELL := scripts/*.sh .ci/run
lint: $(VENV)/.dev-installed
	@failed=""; \
	check() { name=$$1; shift; echo "lint: $$name"; "$$@" || failed="$$failed $$name"; }; \
	check lock $(LOCK_CHECK); \
	check whitespace scripts/check_whitespace.sh; \
	check ruff $(BIN)/ruff check --no-fix --output-format concise .; \
	check ruff-format $(BIN)/ruff format --check .; \
	check mypy $(BIN)/mypy; \
	check hadolint $(BIN)/hadolint --no-color deploy/docker/Dockerfile; \
	check actionlint $(BIN)/actionlint -no-color -shellcheck=$(BIN)/shellcheck -pyflakes= .github/workflows/*.yml; \
	check shellcheck $(BIN)/shellcheck --external-sources --shell=bash $(LINT_SHELL); \
	if command -v terraform >/dev/null 2>&1; then \
		check terraform-fmt env TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive deploy/terraform; \
	else echo "lint: terraform-fmt SKIPPED: terraform not found"; fi; \
	if [ -n "$$failed" ]; then echo "make lint: FAILED:$$failed"; exit 1; fi; \
	echo "make lint: clean"

# Fixes first: a fix (an import sorted, a list spelled out) can leave a line for the formatter.
format: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix --exit-zero .
	$(BIN)/ruff format .
