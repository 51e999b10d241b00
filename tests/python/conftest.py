"""Shared fixtures: one warehouse built end to end from the default synthetic data.

The build is the real pipeline (generate -> load -> dbt build, with every unit and data test),
run once per test session into a temporary folder, so that the integration tests below can
query the marts the way an analyst would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from flsdb import paths


def run_dbt(args: list[str], warehouse: Path, landing: Path, target_dir: Path,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update({
        "DBT_PROFILES_DIR": str(paths.PROJECT_DIR),
        "FLSDB_WAREHOUSE": str(warehouse),
        "FLSDB_POSTCODE_LOOKUP": str(landing / "_reference" / "synthetic_nspl_postcode_lookup.csv"),
        "DO_NOT_TRACK": "1",
    })
    env.update(extra_env or {})
    dbt = Path(sys.executable).with_name("dbt")
    return subprocess.run(
        [str(dbt), *args, "--project-dir", str(paths.PROJECT_DIR), "--target-path", str(target_dir)],
        env=env, cwd=paths.PROJECT_DIR, capture_output=True, text=True,
    )


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory) -> dict[str, Path]:
    """The default synthetic national data (2023 and 2024 at 1x), loaded and built."""
    from flsdb.synthetic import generate
    from flsdb.ingest import load_landing

    root = tmp_path_factory.mktemp("national")
    landing = root / "landing"
    warehouse = root / "warehouse.duckdb"
    target = root / "target"
    generate(years=[2023, 2024], scale=1.0, out_dir=landing, seed=20240101, clean=False)
    load_landing(landing, warehouse)
    result = run_dbt(["build"], warehouse, landing, target)
    assert result.returncode == 0, result.stdout[-20000:]
    return {"root": root, "landing": landing, "warehouse": warehouse, "target": target}


@pytest.fixture(scope="session")
def marts(built_warehouse):
    """A read-only connection to the built warehouse."""
    connection = duckdb.connect(str(built_warehouse["warehouse"]), read_only=True)
    yield connection
    connection.close()
