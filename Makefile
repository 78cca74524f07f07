# Two set-up commands: `make demo` runs the main job on the SQLite default, `make test` runs
# everything the CI runs. Both create .venv and install the project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench

$(BIN)/cdt: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@

demo: $(BIN)/cdt
	cd examples && ../$(BIN)/cdt -m && ../$(BIN)/cdt -lm

lint: $(BIN)/cdt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# The benchmark against the original tool, yoyo and Alembic (about 15 minutes): it makes the
# tools' virtualenvs under bench/.envs/ and starts its own PostgreSQL server.
bench: $(BIN)/cdt
	$(BIN)/python -m bench
