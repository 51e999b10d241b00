"""Tests of `flsdb load` as a whole (src/flsdb/ingest/loader.py): lineage, idempotency, versions,
atomicity. Every test writes its own small CSV files (no generator). Helpers: ingest_env.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from flsdb.ingest import loader

from ingest_env import (  # noqa: F401  (load_env is a fixture)
    assert_counts_balance, csv_text, good_row, load_env)


# ---------------------------------------------------------------------------------------------
# Happy path, lineage
# ---------------------------------------------------------------------------------------------

def test_clean_file_loads_with_lineage(load_env):
    load_env.write("sub/a.csv", csv_text([good_row(i) for i in range(5)]))
    res = load_env.load()
    assert res.files_rejected == 0
    assert load_env.file_row("sub/a.csv") == ("loaded", None, 5, 5, 0, "utf-8")
    recs = load_env.q('SELECT "Record ID", _line_number, _load_order, _source_file, '
                      "length(_file_sha256) FROM raw.submission_records ORDER BY _line_number")
    assert [r[:2] for r in recs] == [(f"R{i:05d}", i + 2) for i in range(5)]
    assert {r[2:] for r in recs} == {(1, "sub/a.csv", 64)}
    assert load_env.q("SELECT file_extract_date::VARCHAR FROM raw.load_files") == [("2024-12-01",)]
    table = res.summary_table()
    assert "sub/a.csv" in table and "loaded" in table
    assert_counts_balance(load_env)


# ---------------------------------------------------------------------------------------------
# Idempotency, versions, atomicity
# ---------------------------------------------------------------------------------------------

def test_idempotent_double_load_and_copy_under_other_path(load_env):
    load_env.write("a.csv", csv_text([good_row(0), good_row(1, **{"FLS Code": "X"})]))
    load_env.write("bad.csv", b"")
    load_env.load()
    first = load_env.snapshot()
    load_env.write("copy/a_again.csv", (load_env.landing / "a.csv").read_bytes())
    res = load_env.load()
    assert load_env.snapshot() == first
    assert {f.status for f in res.files} == {"unchanged"}
    assert res.files_rejected == 1
    assert "same content as a.csv" in res.summary_table()


def test_changed_file_loads_as_new_version(load_env):
    load_env.write("a.csv", csv_text([good_row(0)]))
    load_env.load()
    load_env.write("a.csv", csv_text([good_row(0, **{"Last Updated": "2024-12-05T09:00:00"}),
                                      good_row(1)]))
    load_env.load()
    files = load_env.q("SELECT source_file, load_order, rows_read FROM raw.load_files "
                       "ORDER BY load_order")
    assert files == [("a.csv", 1, 1), ("a.csv", 2, 2)]
    assert load_env.q('SELECT "Record ID", "Last Updated", _load_order FROM '
                      "raw.submission_records ORDER BY _load_order, _line_number") == [
        ("R00000", "2024-12-01T10:00:00", 1), ("R00000", "2024-12-05T09:00:00", 2),
        ("R00001", "2024-12-01T10:00:00", 2)]
    assert_counts_balance(load_env)


def test_exception_mid_file_rolls_back(load_env, monkeypatch):
    load_env.write("a.csv", csv_text([good_row(0)]))
    load_env.write("b.csv", csv_text([good_row(1), good_row(2, **{"FLS Code": "X"})]))

    def boom(con, rel):
        if rel == "b.csv":
            assert con.execute("SELECT count(*) FROM raw.submission_records").fetchone()[0] == 2
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(loader, "_after_records_hook", boom)
    with pytest.raises(RuntimeError):
        load_env.load()
    assert load_env.q("SELECT source_file FROM raw.load_files") == [("a.csv",)]
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(1,)]
    assert load_env.q("SELECT count(*) FROM raw.submission_rejects") == [(0,)]
    monkeypatch.setattr(loader, "_after_records_hook", None)
    load_env.load()
    assert load_env.file_row("b.csv")[:5] == ("loaded", None, 2, 1, 1)
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(2,)]
    assert_counts_balance(load_env)


def _run_load_subprocess(env, extra_env=None):
    code = textwrap.dedent(f"""
        from flsdb.ingest import load_landing
        load_landing({str(env.landing)!r}, {str(env.warehouse)!r},
                     registry_path={str(env.registry)!r}, progress=False)
    """)
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **(extra_env or {})},
                          capture_output=True, text=True, timeout=120)


def test_killed_process_mid_file_leaves_nothing(load_env):
    load_env.write("a.csv", csv_text([good_row(0)]))
    load_env.write("b.csv", csv_text([good_row(i) for i in range(1, 200)]))
    proc = _run_load_subprocess(load_env, {loader._CRASH_ENV: "b.csv"})
    assert proc.returncode == -9, proc.stderr
    assert load_env.q("SELECT source_file FROM raw.load_files") == [("a.csv",)]
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(1,)]
    proc = _run_load_subprocess(load_env)
    assert proc.returncode == 0, proc.stderr
    assert load_env.file_row("b.csv")[:5] == ("loaded", None, 199, 199, 0)
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(200,)]
