# `make demo` runs the example project on the SQLite default with the package alone; `make test`
# runs everything CI runs (lint, the documentation build, the suite on this Python and a part of
# it on each other Python the machine has); `make docs` builds the documentation site.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := .venv-demo
PIP := pip install --quiet --disable-pip-version-check

# The other supported Pythons found here: under pyenv (yours, or the machine's own in /root,
# which a clean environment with a new HOME does not point at), else on PATH.
PYENV_ROOT ?= $(HOME)/.pyenv
PYENV_ROOTS := $(sort $(PYENV_ROOT) $(wildcard /root/.pyenv))
MAIN_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
SUPPORTED := 3.11 3.12 3.13 3.14
find_python = $(firstword $(lastword $(sort $(foreach root,$(PYENV_ROOTS),$(wildcard $(root)/versions/$(1).*/bin/python$(1))))) \
	$(shell command -v python$(1) 2>/dev/null))
OTHER_PYTHONS := $(strip $(foreach v,$(filter-out $(MAIN_VERSION),$(SUPPORTED)),$(call find_python,$(v))))
# On the other Pythons: the contract suite on SQLite and PostgreSQL, the CLI, the API and the bad
# input catalogue (about a minute each); the whole suite runs on the main one.
SUBSET := tests/test_contract.py tests/test_cli.py tests/test_api.py tests/test_bad_input.py \
	-k "not mongo and not elasticsearch and not opensearch and not minio and not qdrant"

.PHONY: demo test lint system docs suite search-engines other-pythons bench dist

$(BIN)/cdt: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP) -e ".[dev]"
	touch $@

$(DEMO)/bin/cdt: pyproject.toml
	$(PYTHON) -m venv $(DEMO)
	$(DEMO)/bin/$(PIP) -e .
	touch $@

demo: $(DEMO)/bin/cdt
	cd examples && ../$(DEMO)/bin/cdt -m && ../$(DEMO)/bin/cdt -lm

lint: $(BIN)/cdt
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# What the machine must have besides Python packages (a JDK, Maven): installed with apt as
# root, else one line naming the package and the command.
system: $(BIN)/cdt
	$(BIN)/python -m tests.servers.system

docs: $(BIN)/cdt
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

suite: $(BIN)/cdt system
	$(BIN)/pytest

# The other search-engine lines beside the suite's default (a 9.5 node with the 9.x client, an
# OpenSearch 3.8 node): an 8.19 node with the 8.x client (its own virtualenv, since one
# environment holds one client), OpenSearch 2.19, and the contract suite on a three-node cluster.
ES8 := .venv-es8
$(ES8)/bin/cdt: pyproject.toml
	$(PYTHON) -m venv $(ES8)
	$(ES8)/bin/$(PIP) -e ".[dev]" "elasticsearch[async]>=8,<9"
	touch $@

search-engines: $(BIN)/cdt $(ES8)/bin/cdt system
	CLANDESTINO_TEST_ELASTICSEARCH_NODE=es8 $(ES8)/bin/pytest -q \
	  -k "elasticsearch or another_major" tests/test_contract.py tests/test_elasticsearch.py
	CLANDESTINO_TEST_OPENSEARCH_NODE=os2 $(BIN)/pytest -q -k opensearch \
	  tests/test_contract.py tests/test_opensearch.py
	CLANDESTINO_TEST_ELASTICSEARCH_NODES=3 $(BIN)/pytest -q -k elasticsearch tests/test_contract.py

other-pythons:
	@set -e; for python in $(OTHER_PYTHONS); do \
	  version=$$($$python -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
	  venv=.venv-$$version; \
	  if [ ! $$venv/bin/pytest -nt pyproject.toml ]; then \
	    $$python -m venv $$venv && $$venv/bin/$(PIP) -e ".[test]" && touch $$venv/bin/pytest; \
	  fi; \
	  echo "== Python $$version: SQLite, PostgreSQL, CLI and API tests"; \
	  $$venv/bin/pytest -q $(SUBSET); \
	done
	@echo "Pythons tested besides $(MAIN_VERSION): $(or $(OTHER_PYTHONS),none found)"

test: system lint docs suite search-engines other-pythons

# The sdist and wheel to publish, checked by twine (tests/test_dist.py checks their contents).
dist: $(BIN)/cdt
	rm -rf dist
	$(BIN)/python -m build --outdir dist
	$(BIN)/twine check --strict dist/*

# The benchmark against the original tool, yoyo and Alembic (about 15 minutes): it makes the
# tools' virtualenvs under bench/.envs/, starts its own PostgreSQL server, and plots its table
# into docs/benchmark/.
bench: $(BIN)/cdt
	$(BIN)/$(PIP) -e ".[dev,bench]"
	$(BIN)/python -m bench
