# The README's two set-up commands: `make demo` and `make test`. Both create the virtual
# environment on first use and install the pinned versions from constraints.txt.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
ARGS ?=
ASYNCAPI_DIR := tests/asyncapi
ASYNCAPI_STAMP := $(ASYNCAPI_DIR)/node_modules/.installed

.PHONY: demo test tools lint typecheck unit install lock docs chaos clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/bridge demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: tools lint typecheck $(ASYNCAPI_STAMP)
	$(BIN)/pytest $(ARGS)

# Tools the tests drive that PyPI does not provide: promtool (Debian package `prometheus`) and
# node + npm (Debian packages `nodejs` `npm`, for the AsyncAPI parser). Each is installed when
# missing and this is root on Debian; otherwise `make test` stops at once naming the one command
# that fixes it. Nothing is ever skipped for a missing tool.
tools:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: installing promtool (Debian package prometheus)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "make test needs promtool; install it with: sudo apt-get install prometheus" >&2; \
	    exit 1; \
	  fi; }
	@{ command -v node && command -v npm; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make test: installing node and npm (Debian packages nodejs npm)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends nodejs npm >/dev/null; \
	  else \
	    echo "make test needs node and npm; install them with: sudo apt-get install nodejs npm" >&2; \
	    exit 1; \
	  fi; }

# The official AsyncAPI parser (npm @asyncapi/parser, pinned by tests/asyncapi/package-lock.json)
# that tests/ops/test_asyncapi.py runs; reinstalled whenever the lock file changes. Install
# scripts are not run: the parser needs none (one dependency's only script is telemetry).
$(ASYNCAPI_STAMP): $(ASYNCAPI_DIR)/package.json $(ASYNCAPI_DIR)/package-lock.json | tools
	cd $(ASYNCAPI_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

unit: $(STAMP)
	$(BIN)/pytest tests/unit $(ARGS)

# Benchmarks (issue #8), not part of `make test`: `make bench ARGS="--only latency"`; see BENCHMARKS.md.
.PHONY: bench
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

# Regenerate the pins after changing dependencies in pyproject.toml.
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet '.[dev]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^icws-bridge' > constraints.txt
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# A long seeded chaos run (not part of make test; a 50 s version is): make chaos ARGS="--seed 2"
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos --duration 600 $(ARGS)

# Regenerate every generated artefact: schemas, example.env, the README settings table.
docs: $(STAMP)
	$(BIN)/bridge schemas --out bridge/schemas
	$(BIN)/python -c "from bridge.settings_docs import example_env; print(example_env(), end='')" > config/example.env
	$(BIN)/python -c "import re, pathlib; from bridge.settings_docs import settings_table as t; p = pathlib.Path('README.md'); p.write_text(re.sub(r'(<!-- settings-table:start -->\n).*?(\n<!-- settings-table:end -->)', lambda m: m.group(1) + t() + m.group(2), p.read_text(), flags=re.S))"
