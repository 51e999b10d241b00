"""Incremental staging: stg_fls_db__submission_records stages only the files loaded since its last
build, and restages everything when the pseudonym key changes (macros/staging_inputs_fingerprint.sql).
Each check compares the incrementally built table with a --full-refresh of the same raw rows.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import tiny_build

STAGED = "staging.stg_fls_db__submission_records"


@pytest.fixture
def copy_of_tiny(tiny, tmp_path) -> dict:
    """The tiny built warehouse, copied so that this test may change it."""
    build = {**tiny, "warehouse": tmp_path / "copy.duckdb", "target": tmp_path / "target",
             "logs": tmp_path / "logs"}
    shutil.copyfile(tiny["warehouse"], build["warehouse"])
    return build


def stage(build: dict, *extra: str, key: str | None = tiny_build.KEY) -> None:
    result = tiny_build.run_dbt(build, ["run", "--select", "stg_fls_db__submission_records", *extra],
                                key=key)
    assert result.returncode == 0, result.stdout[-3000:]


def snapshot(build: dict, name: str) -> int:
    """Copy the staged table aside (fingerprint excluded: it is what differs by design)."""
    with duckdb.connect(str(build["warehouse"])) as con:
        con.execute(f"CREATE OR REPLACE TABLE main.{name} AS "
                    f"SELECT * EXCLUDE (staging_inputs_fingerprint) FROM {STAGED}")
        return con.execute(f"SELECT count(*) FROM main.{name}").fetchone()[0]


def differing_rows(build: dict, a: str, b: str) -> int:
    with duckdb.connect(str(build["warehouse"]), read_only=True) as con:
        return con.execute(
            f"SELECT (SELECT count(*) FROM (FROM main.{a} EXCEPT ALL FROM main.{b})) "
            f"+ (SELECT count(*) FROM (FROM main.{b} EXCEPT ALL FROM main.{a}))").fetchone()[0]


def accepted_rows(build: dict) -> int:
    with duckdb.connect(str(build["warehouse"]), read_only=True) as con:
        return con.execute("SELECT count(*) FROM raw.submission_records").fetchone()[0]


def test_new_files_are_appended_and_match_a_full_refresh(copy_of_tiny, tmp_path):
    from flsdb.synthetic import generate

    build = copy_of_tiny
    before = snapshot(build, "before")
    # a new batch of files arrives (another year, another seed) and is loaded
    generate(years=[2023], scale=0.01, out_dir=tmp_path / "more", seed=11, clean=False)
    flsdb = Path(sys.executable).with_name("flsdb")
    load = subprocess.run([str(flsdb), "load", "--landing", str(tmp_path / "more"),
                           "--warehouse", str(build["warehouse"])],
                          env=tiny_build.dbt_env(build["warehouse"], build["landing"]),
                          capture_output=True, text=True, timeout=600)
    assert load.returncode == 0, load.stderr
    assert accepted_rows(build) > before

    stage(build)
    incremental = snapshot(build, "incremental")
    assert incremental == accepted_rows(build)
    assert differing_rows(build, "before", "incremental") == incremental - before  # only appended

    stage(build, "--full-refresh")
    assert snapshot(build, "full") == incremental
    assert differing_rows(build, "incremental", "full") == 0


def test_a_new_pseudonym_key_restages_every_row(copy_of_tiny):
    build = copy_of_tiny
    rows = snapshot(build, "old_key")
    stage(build, key="another-key-for-this-test-only-32-bytes+")
    assert snapshot(build, "new_key_incremental") == rows
    with duckdb.connect(str(build["warehouse"]), read_only=True) as con:
        unchanged = con.execute(
            "SELECT count(*) FROM main.old_key JOIN main.new_key_incremental USING "
            "(load_order, line_number) WHERE old_key.patient_pseudonym "
            "= new_key_incremental.patient_pseudonym").fetchone()[0]
        fingerprints = con.execute(
            f"SELECT count(DISTINCT staging_inputs_fingerprint) FROM {STAGED}").fetchone()[0]
    assert unchanged == 0
    assert fingerprints == 1

    stage(build, "--full-refresh", key="another-key-for-this-test-only-32-bytes+")
    snapshot(build, "new_key_full")
    assert differing_rows(build, "new_key_incremental", "new_key_full") == 0
