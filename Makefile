# videogen: developer entry points. Everything installs into .venv beside this file.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
NEED   := import sys; sys.exit(sys.version_info < (3, 11))
# An editable install leaves our modules uncompiled, and where PYTHONDONTWRITEBYTECODE is
# set (as on these machines) every start would compile them again: compile them once
# here (only changed files; Python still reads .pyc files it may not write).
COMPILE = $(PY) -m compileall -q videogen_cli >/dev/null

.PHONY: install runtime venv demo test lint fmt cassettes bench postgres clean

# $(VENV) is (re)built with $(PYTHON) when its own python is missing, broken or older than
# 3.11 (say, made by macOS's python3 3.9 on an earlier try), instead of being reused.
venv:
	@if ! $(PY) -c '$(NEED)' 2>/dev/null; then \
	  if ! $(PYTHON) -c '$(NEED)' 2>/dev/null; then \
	    echo "make: videogen needs Python >= 3.11, but PYTHON=$(PYTHON) is" \
	      "$$($(PYTHON) --version 2>&1 || echo 'not found')." >&2; \
	    echo "hint: install Python 3.11+ and point make at it, e.g." \
	      "make demo PYTHON=python3.12 (or PYTHON=/opt/homebrew/bin/python3.12)" >&2; \
	    exit 2; \
	  fi; \
	  echo "make: creating $(VENV) with $$($(PYTHON) --version)"; \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV) && $(PY) -m pip install -q --upgrade pip; \
	fi

# What the tool needs to run (the demo): the runtime dependencies only.
runtime: venv
	@test $(VENV)/.runtime -nt pyproject.toml || \
	  { $(PY) -m pip install -q -e . && touch $(VENV)/.runtime; }
	@$(COMPILE)

# Everything for development: the tests, linters and both database drivers.
install: venv
	@test $(VENV)/.dev -nt pyproject.toml || \
	  { $(PY) -m pip install -q -e '.[dev]' && touch $(VENV)/.dev $(VENV)/.runtime; }
	@$(COMPILE)

# The README's main job: one generation on the embedded sandbox, watched to the end.
demo: runtime
	$(BIN)/videogen generate --prompt "a paper boat drifting down a rainy street" --duration 4s --watch

# Postgres is needed by the backend tests; this installs it where it is missing (Debian).
postgres:
	bash tests/support/ensure-postgres.sh

test: install postgres
	$(PY) -m pytest -q

lint: install
	$(BIN)/ruff check videogen_cli tests
	$(BIN)/ruff format --check videogen_cli tests
	$(BIN)/mypy
	$(BIN)/lint-imports

fmt: install
	$(BIN)/ruff check --fix videogen_cli tests
	$(BIN)/ruff format videogen_cli tests

# Re-record the fal cassettes against the live queue API. Needs FAL_KEY; costs real money.
cassettes: install
	@test -n "$$FAL_KEY" || { echo "cassettes: set FAL_KEY to record against fal.ai" >&2; exit 2; }
	VIDEOGEN_RECORD=1 $(PY) -m pytest -q tests/test_fal_adapter.py --record-mode=rewrite

bench: install
	$(PY) tests/bench/run.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
