# Two commands on a fresh machine with python3 (>= 3.11) and make:
#   make dev    the whole system on 127.0.0.1 (embedded PostgreSQL unless DATABASE_URL is set)
#   make test   the whole suite (README: "Make targets")
#   make images / make image-test   the four function images, built and run as Knative runs them
PYTHON ?= python3
# pytest-xdist workers; each has its own database (README: "Make targets"). TEST_WORKERS=0 runs in this
# one process. 2 here (2 cores): more makes the CPU-bound suites (schemathesis, the poison and fuzz
# suites) slow towards their timeouts. Nothing is shared between workers but the PostgreSQL server (each
# its own databases) and loopback ports: a port a test needs unreachable is held closed for the test
# (tests.support.processes.closed_port), never merely probed free.
TEST_WORKERS ?= 2
PARALLEL := -n $(TEST_WORKERS) --dist loadscope
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: dev dev-stop test test-fast test-fault bench profile lock check-manifests images image-test clean browser

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "python3 >= 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

dev: $(STAMP)
	$(BIN)/patient-mgt dev

# Stops a running `make dev`, what a killed one left behind, and the embedded PostgreSQL.
dev-stop: $(STAMP)
	$(BIN)/patient-mgt dev --stop

# Everything but the image checks (tests/conftest.py leaves the `images` tests to `make image-test`).
test: $(STAMP) browser
	$(BIN)/python -m pytest $(PARALLEL)

# The console's browser tests drive Debian's headless Chromium through its chromedriver (no browser
# download exists here): installed when missing and root, as `make bench` installs wrk.
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "chromium missing: apt-get install -y chromium chromium-driver"; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	  else echo "chromium and chromium-driver are missing (Debian: apt-get install chromium chromium-driver): the console's browser tests will fail"; fi; \
	fi

# The inner loop: unit, integration, http and manifests (no process, emulator or browser started).
test-fast: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m "not e2e and not fault"

# Database outages and restarts, kill -9, redelivery, the poison and fuzz suites.
test-fault: $(STAMP)
	$(BIN)/python -m pytest $(PARALLEL) -m fault

bench: $(STAMP)
	$(BIN)/python -m bench

# A py-spy flame graph and a top-frames summary of each hot path under load (GET, search, POST, an 8-OBX
# ORU push, cold starts) into bench/.profiles/ (git-ignored); docs/performance.md, "Profiles".
profile: $(STAMP)
	$(BIN)/python -m bench.profile

# The four images from the one Dockerfile with skaffold.yaml's build args (tools/images.py);
# installs podman, runc and debootstrap with apt-get when missing. PYTHON_IMAGE=... overrides the
# local stand-in for python:3.11-slim-bookworm.
images: $(STAMP)
	$(BIN)/python -m tools.images build

# Each image run as knative/app/services.yaml runs it, against PostgreSQL on 127.0.0.1:5432.
image-test: images
	$(BIN)/python -m pytest tests/images --images

# knative/ and skaffold.yaml against the schemas vendored in tests/fixtures/schemas (also part of `make test`).
check-manifests: $(STAMP)
	$(BIN)/python -m tests.manifests.conformance

# Re-pin after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --python-version 3.11 --generate-hashes --no-header -o requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info
