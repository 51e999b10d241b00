# flsdb: two commands on a fresh machine.
#   make run   generate synthetic submissions -> load into DuckDB -> dbt build -> outputs
#   make test  lint + unit/integration tests (installs everything it needs first)
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DBT_PROFILES_DIR := $(CURDIR)
export FLSDB_PROJECT_DIR := $(CURDIR)
# dbt writes anonymous usage events; machines here have no internet.
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: install run test lint pytest bench clean

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==24.3.1
	$(BIN)/pip install --quiet --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/flsdb run

lint: $(STAMP)
	$(BIN)/sqlfluff lint models analyses tests --processes 2

pytest: $(STAMP)
	$(BIN)/pytest

test: lint pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_generate.py
	$(BIN)/python bench/bench_load.py

clean:
	rm -rf target logs warehouse .pytest_cache
