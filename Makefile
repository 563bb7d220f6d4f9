# Every target creates .venv itself when it is missing, so a fresh clone needs nothing but Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench fuzz clean envoy-bootstrap lock

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/controlplane demo --examples examples

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check controlplane tests bench
	$(BIN)/ruff format --check controlplane tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

# The property tests with Hypothesis' large `fuzz` profile, then 10,000+ hostile objects beside a
# good tenant (issue 9; minutes; not part of `make test`).
fuzz: $(STAMP)
	$(BIN)/python -m bench fuzz hostile_fuzz

# The defaults: xDS 127.0.0.1:8001, admin on the unix socket /tmp/envoy-admin.sock, stats on :8002.
envoy-bootstrap: $(STAMP)
	$(BIN)/controlplane bootstrap envoy-bootstrap/envoy.yaml

# requirements.lock: pyproject.toml's runtime dependencies, pinned with the hashes of every file
# PyPI has for them, for the image (Dockerfile: pip install --require-hashes). Universal (markers
# instead of this machine's platform), so one lock serves amd64 and arm64 alike.
lock: $(STAMP)
	$(BIN)/pip install --quiet 'uv>=0.5'
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command 'make lock' --output-file requirements.lock

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
