# videogen: developer entry points. Everything installs into .venv beside this file.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin

.PHONY: install demo test lint fmt cassettes bench postgres clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# The README's main job: one generation on the embedded sandbox, watched to the end.
demo: install
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
