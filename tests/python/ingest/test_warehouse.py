"""Opening the warehouse and reading the FLS registry (src/flsdb/ingest/warehouse.py): one writer
at a time, clear errors. Helpers: ingest_env.py."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flsdb import ingest
from flsdb.ingest import load_landing

from ingest_env import csv_text, good_row, load_env  # noqa: F401  (load_env: a fixture)


# ---------------------------------------------------------------------------------------------
# Locking, the registry
# ---------------------------------------------------------------------------------------------

def test_locked_warehouse_clear_error(load_env):
    load_env.write("a.csv", csv_text([good_row(0)]))
    load_env.warehouse.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); "
          "print('ok', flush=True); time.sleep(30)"), str(load_env.warehouse)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(ingest.WarehouseLockedError, match="in use by another process"):
            load_env.load()
    finally:
        holder.kill()
        holder.wait()


def test_missing_registry_is_clear_error(load_env, tmp_path):
    with pytest.raises(ingest.LoadError, match="registry"):
        load_landing(load_env.landing, load_env.warehouse, registry_path=tmp_path / "none.csv")


# ---------------------------------------------------------------------------------------------
# Creating the raw schema
# ---------------------------------------------------------------------------------------------

def test_schema_is_created_whole_or_not_at_all(tmp_path, monkeypatch):
    """A failure (or a kill) part-way through creating the raw schema leaves no table behind:
    never raw.load_files without raw.submission_rejects (found by the SIGKILL fault test)."""
    import duckdb

    from flsdb.ingest import warehouse

    failing = warehouse.DDL[:3] + ["CREATE TABLE raw.broken (x NOT_A_TYPE)"] + warehouse.DDL[3:]
    monkeypatch.setattr(warehouse, "DDL", failing)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    try:
        with pytest.raises(duckdb.Error):
            warehouse.ensure_schema(con)
        assert con.execute("SELECT count(*) FROM information_schema.tables "
                           "WHERE table_schema = 'raw'").fetchone()[0] == 0
        monkeypatch.setattr(warehouse, "DDL", failing[:3] + failing[4:])
        warehouse.ensure_schema(con)
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                            "WHERE table_schema = 'raw'").fetchall()}
        assert {"load_files", "submission_records", "submission_rejects"} <= tables
    finally:
        con.close()
