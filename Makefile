# Two commands on a fresh machine with python3 (>= 3.11) and make:
#   make dev    the whole system on 127.0.0.1 (embedded PostgreSQL unless DATABASE_URL is set)
#   make test   the whole suite, in parallel (README: "Make targets")
PYTHON ?= python3
# pytest-xdist workers; each has its own database. TEST_WORKERS=0 runs in this one process.
# Default: one per core here (2). More (TEST_WORKERS=3) helps when e2e waiting dominates, but CPU-bound suites
# (schemathesis, the poison and fuzz suites) then slow down towards their timeouts on a busy 2-core machine.
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist loadscope
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev test test-fast test-fault bench lock check-manifests clean

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "python3 >= 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/patient-mgt dev

test: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL)

test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not e2e and not fault"

test-fault: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m fault

bench: $(STAMP)
	$(BIN)/python -m bench

# knative/ and skaffold.yaml against the schemas vendored in tests/fixtures/schemas (also part of `make test`).
check-manifests: $(STAMP)
	$(BIN)/python -m tests.manifests.conformance

# Re-pin after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 --generate-hashes --no-header -o requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info
