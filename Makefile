# flsdb: two commands on a fresh machine.
#   make run   generate synthetic submissions -> load into DuckDB -> dbt build -> outputs
#   make test  lint + unit/integration tests (installs everything it needs first)
#   make test-fast  the quick loop: the tests that build no warehouse, and lint of changed SQL
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

.PHONY: install run test test-fast lint lint-python lint-changed pytest browser bench clean

# A .venv copied from another folder (`cp -a` of the project) still runs that folder's Python and
# code (every script's first line and the editable install name the original): pyvenv.cfg records
# the folder it was made in, and a .venv made elsewhere is replaced by a new one here.
VENV_MADE_IN := $(shell sed -n 's/^command = .* -m venv //p' $(VENV)/pyvenv.cfg 2>/dev/null)
ifneq ($(VENV_MADE_IN),)
ifneq ($(VENV_MADE_IN),$(CURDIR)/$(VENV))
$(STAMP): venv-from-another-folder
endif
endif

.PHONY: venv-from-another-folder
venv-from-another-folder:
	@echo "$(VENV) was made in $(VENV_MADE_IN) (a copied project): replacing it with one for $(CURDIR)"
	rm -rf $(VENV)

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

lint: lint-python
	$(BIN)/sqlfluff lint models analyses tests --processes 2

# The Python linter, pinned (pyproject.toml [tool.ruff]; under a second for the whole tree).
lint-python: $(STAMP)
	$(BIN)/ruff check src tests bench bi

pytest: $(STAMP)
	$(BIN)/pytest

# The publication tests open the report site in Debian's headless Chromium.
browser:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; \
	  else echo "chromium is not installed and this is not root: the browser test will be skipped"; fi; }

test: lint browser pytest

# The quick loop (DEVELOPERS.md, "Tests"): every test not marked `warehouse` (those build a warehouse
# with dbt or read the session's shared builds) or `slow`, ruff, and sqlfluff on the SQL files
# changed against LINT_BASE. `make test` runs everything.
test-fast: lint-python lint-changed $(STAMP)
	$(BIN)/pytest -m "not warehouse and not slow"

# sqlfluff on the .sql files under models/, analyses/ and tests/ that differ from LINT_BASE
# (committed or not, new files included); nothing to lint when none changed.
LINT_BASE ?= main
lint-changed: $(STAMP)
	@base=$$(git merge-base HEAD $(LINT_BASE) 2>/dev/null || echo HEAD); \
	files=$$( { git diff --name-only --diff-filter=d $$base -- models analyses tests; \
	            git ls-files --others --exclude-standard -- models analyses tests; } | grep '\.sql$$' | sort -u); \
	if [ -z "$$files" ]; then echo "lint-changed: no SQL changed against $(LINT_BASE)"; \
	else echo "lint-changed:" $$files; $(BIN)/sqlfluff lint $$files --processes 2; fi

# Benchmark harness: wall time, CPU and peak memory per stage at 1x and 10x one national year, the
# hand-written baseline and one new month on a built 1x warehouse (bench/run_benchmarks.py),
# and the monthly cycle (load one month + `flsdb refresh` against a full rebuild: the share).
# 100x: make bench BENCH_SCALES=1,10,100 (long). Scratch: FLSDB_BENCH_DIR (default /tmp/flsdb-bench).
BENCH_SCALES ?= 1,10
BENCH_ARGS ?= --repeats 3 --incremental --monthly-cycle --write-summary
bench: $(STAMP)
	$(BIN)/python bench/run_benchmarks.py --scales $(BENCH_SCALES) $(BENCH_ARGS)

# The same project on Apache Spark (docs/spark.md): a separate environment from
# requirements-spark.lock (dbt-spark[session] + pyspark; Java 17), so .venv stays untouched.
# Not part of `make test`: it starts Spark and takes a few minutes.
.PHONY: test-spark
SPARK_VENV := .venv-spark
SPARK_STAMP := $(SPARK_VENV)/.installed

$(SPARK_STAMP): requirements-spark.lock
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	@command -v java >/dev/null || { echo "Java 17 is required for Spark (java not found)"; exit 1; }
	$(PYTHON) -m venv $(SPARK_VENV)
	$(SPARK_VENV)/bin/pip install --quiet --upgrade pip==24.3.1
	$(SPARK_VENV)/bin/pip install --quiet --no-deps -r requirements-spark.lock
	$(SPARK_VENV)/bin/pip check
	touch $(SPARK_STAMP)

test-spark: $(STAMP) $(SPARK_STAMP)
	time $(BIN)/pytest tests/spark -p no:cacheprovider -s -ra

# Apache Superset over the published tier (docs/bi.md): a separate environment from
# requirements-bi.lock (.venv-bi), so .venv stays untouched. `make bi` needs a published tier
# (`make run` first), builds Superset's metadata database from scratch in .bi/, imports the
# dashboard of bi/superset/bundle/ and serves it on 127.0.0.1:8088 until Ctrl-C.
.PHONY: bi bi-export test-bi
BI_VENV := .venv-bi
BI_STAMP := $(BI_VENV)/.installed

$(BI_STAMP): requirements-bi.lock
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(BI_VENV)
	$(BI_VENV)/bin/pip install --quiet --upgrade pip==24.3.1
	$(BI_VENV)/bin/pip install --quiet --no-deps -r requirements-bi.lock
	$(BI_VENV)/bin/pip check
	touch $(BI_STAMP)

bi: $(BI_STAMP)
	$(BI_VENV)/bin/python bi/superset/flsdb_superset.py setup
	$(BI_VENV)/bin/python bi/superset/flsdb_superset.py serve

# The dashboard as changed in Superset, back to bi/superset/bundle/ (docs/bi.md).
bi-export: $(BI_STAMP)
	$(BI_VENV)/bin/python bi/superset/flsdb_superset.py export

# Builds its own small published tier (or copies output/published), starts Superset on a free
# port and opens the dashboard in headless Chromium: a few minutes (tests/bi/).
test-bi: $(STAMP) $(BI_STAMP) browser
	time $(BIN)/pytest tests/bi -p no:cacheprovider -s -ra

clean:
	rm -rf target logs warehouse .pytest_cache
