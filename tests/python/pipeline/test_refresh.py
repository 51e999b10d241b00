"""`flsdb refresh`, the monthly cycle (flsdb.cli.refresh): after new files arrive, it loads them,
builds only what the submissions feed, runs every data test, validates, signs off (synthetic data:
automatically), publishes and writes the report; its marts.kpi_results equal those of a full
rebuild of the same landing set (the session's tiny build, conftest.py: the same files and
pseudonym key, built from scratch).

The tiny landing set's later extract (the files dated 2025-06-30) is the data that arrives: the
warehouse is first built from the earlier files only.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

import tiny_build

LATER = "_2025-06-30"
KPI_ROWS = ("select * exclude (is_synthetic_data) from marts.kpi_results order by audit_year, "
            "geography_level, geography_code, kpi_number, breakdown, breakdown_value")


def _kpi_rows(warehouse: Path) -> list:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(KPI_ROWS).fetchall()


def _same(a: list, b: list) -> bool:
    def same(x, y) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)
        return x == y
    return len(a) == len(b) and all(len(r) == len(q) and all(map(same, r, q)) for r, q in zip(a, b))


def test_refresh_builds_only_what_the_data_feeds_and_matches_a_full_rebuild(tiny, tmp_path):
    later = sorted(p for p in tiny["landing"].glob("*.csv") if p.stem.endswith(LATER))
    assert later, "the tiny landing set has no later extract to hold back"
    landing = tmp_path / "landing"
    shutil.copytree(tiny["landing"], landing, ignore=lambda folder, names: [
        n for n in names if Path(folder) == tiny["landing"] and n.endswith(LATER + ".csv")])
    build = {**tiny, "landing": landing, "warehouse": tmp_path / "w.duckdb",
             "target": tmp_path / "target", "logs": tmp_path / "logs"}
    env = {**tiny_build.dbt_env(build["warehouse"], landing),
           "FLSDB_LANDING": str(landing), "FLSDB_OUTPUT": str(tmp_path / "output"),
           "FLSDB_HISTORY": str(tmp_path / "history.duckdb"),
           "DBT_TARGET_PATH": str(build["target"]), "DBT_LOG_PATH": str(build["logs"])}
    flsdb = str(Path(sys.executable).with_name("flsdb"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([flsdb, *args], env=env, capture_output=True, text=True, timeout=900)

    # last month: the earlier files, built in full
    assert cli("load").returncode == 0
    tiny_build.assert_built(build, tiny_build.run_dbt(build, ["build"]))
    before = _kpi_rows(build["warehouse"])

    # the later extract arrives; one command refreshes everything
    for path in later:
        shutil.copy(path, landing / path.name)
    done = cli("refresh")
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    results = json.loads((build["target"] / "run_results.json").read_text())["results"]
    kinds = {r["unique_id"].split(".")[0] for r in results}
    assert "seed" not in kinds, kinds
    # ... but every data test ran: the gate approves only a validation of every check of the data;
    # unit tests check the code and are left to make test and CI, as in every production build
    manifest = json.loads((build["target"] / "manifest.json").read_text())
    tests = {u for u, n in manifest["nodes"].items() if n["resource_type"] == "test"}
    assert tests <= {r["unique_id"] for r in results}
    assert "unit_test" not in kinds, kinds
    assert "model.flsdb.stg_fls_db__submission_records" in {r["unique_id"] for r in results}
    assert "model.flsdb.stg_reference__postcode_lookups" not in {r["unique_id"] for r in results}
    validation = json.loads((tmp_path / "output" / "quality" / "validation.json").read_text())
    assert validation["checks_skipped"] == []
    approval = json.loads((tmp_path / "output" / "approval.json").read_text())
    assert approval["status"] == "approved" and approval["extract_date"] == validation["extract_date"]
    assert approval["reviewer"] == "automatic (synthetic data)" and approval["sign_off_kind"] == "automatic"
    assert "Signed off automatically as 'automatic (synthetic data)'" in done.stdout
    assert (tmp_path / "output" / "site" / "index.html").exists()
    refreshed = _kpi_rows(build["warehouse"])
    assert not _same(before, refreshed), "the new files changed nothing: not a test of a refresh"

    # the same landing set built from scratch (the shared tiny build) gives the same results
    assert _same(refreshed, _kpi_rows(tiny["warehouse"]))
