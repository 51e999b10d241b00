"""A tiny end-to-end warehouse (one audit year at 2% of national volume), shared by the fault and
privacy tests: generated, loaded and built once per test session with a distinctive
FLSDB_PSEUDONYM_KEY, and dbt's target and log folders kept apart from the project's.

Not a fixture module: pytest would run a session fixture imported into two test modules twice,
so the build is cached here, in the module, and both test modules call tiny_build().
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flsdb import paths

KEY = "Zq7-tiny-build-PSEUDONYM-KEY-4f1c9e2b-never-on-disk"
_CACHE: dict[str, object] = {}


def dbt_env(warehouse: Path, landing: Path, key: str | None = KEY) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FLSDB_PSEUDONYM_KEY", None)
    env.update({
        "DBT_PROFILES_DIR": str(paths.PROJECT_DIR),
        "FLSDB_WAREHOUSE": str(warehouse),
        "FLSDB_POSTCODE_LOOKUP": str(landing / "_reference" / "synthetic_nspl_postcode_lookup.csv"),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    })
    if key is not None:
        env["FLSDB_PSEUDONYM_KEY"] = key
    return env


def dbt_command(args: list[str], target: Path, logs: Path) -> list[str]:
    dbt = Path(sys.executable).with_name("dbt")
    return [str(dbt), *args, "--project-dir", str(paths.PROJECT_DIR), "--target-path", str(target),
            "--log-path", str(logs)]


def run_dbt(build: dict, args: list[str], key: str | None = KEY) -> subprocess.CompletedProcess:
    return subprocess.run(dbt_command(args, build["target"], build["logs"]),
                          env=dbt_env(build["warehouse"], build["landing"], key),
                          cwd=paths.PROJECT_DIR, capture_output=True, text=True, timeout=600)


def assert_built(build: dict, result: subprocess.CompletedProcess) -> None:
    """Every seed and model of the last dbt invocation was built. (Data-test results are the
    quality gate's business and are asserted on the national build in conftest; a failing data
    test elsewhere must not hide a fault here.)"""
    import json

    results = json.loads((build["target"] / "run_results.json").read_text())["results"]
    kind = {r["unique_id"]: r["unique_id"].split(".")[0] for r in results}
    failed = [r["unique_id"] for r in results
              if kind[r["unique_id"]] in ("model", "seed", "snapshot")
              and r["status"] not in ("success", "skipped")]
    # a model may be skipped only below a failing data test, never because a unit test or an
    # upstream model errored
    skipped = [r["unique_id"] for r in results
               if kind[r["unique_id"]] in ("model", "seed", "snapshot") and r["status"] == "skipped"]
    failing_data_tests = [r["unique_id"] for r in results
                          if kind[r["unique_id"]] == "test" and r["status"] in ("fail", "error")]
    broken_unit_tests = [r["unique_id"] for r in results
                         if kind[r["unique_id"]] == "unit_test" and r["status"] != "pass"]
    assert failed == [] and results, result.stdout[-5000:]
    assert broken_unit_tests == [], result.stdout[-5000:]
    assert not skipped or failing_data_tests, result.stdout[-5000:]


def copy_dbt_project(destination: Path, name: str = "project") -> Path:
    """The dbt project as a developer would check it out (no tests/python, no src/, no warehouse),
    in destination/name: flsdb runs it with FLSDB_PROJECT_DIR pointing at the copy."""
    import shutil

    root = paths.PROJECT_DIR
    project = destination / name
    project.mkdir()
    for item in ["dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests", "analyses",
                 "data"]:
        source = root / item
        if source.is_dir():
            shutil.copytree(source, project / item,
                            ignore=shutil.ignore_patterns("python", "spark", "__pycache__"))
        elif source.exists():
            shutil.copy2(source, project / item)
    return project


def tiny_build(tmp_path_factory) -> dict:
    """{root, landing, warehouse, target, logs, load_output, build_output}: built once."""
    if "build" in _CACHE:
        return _CACHE["build"]  # type: ignore[return-value]
    from flsdb.synthetic import generate

    root = tmp_path_factory.mktemp("tiny")
    build = {"root": root, "landing": root / "landing", "warehouse": root / "tiny.duckdb",
             "target": root / "target", "logs": root / "logs"}
    generate(years=[2024], scale=0.02, out_dir=build["landing"], seed=7, clean=False)
    flsdb = Path(sys.executable).with_name("flsdb")
    load = subprocess.run([str(flsdb), "load", "--landing", str(build["landing"]),
                           "--warehouse", str(build["warehouse"])],
                          env=dbt_env(build["warehouse"], build["landing"]), capture_output=True,
                          text=True, timeout=600)
    assert load.returncode == 0, load.stderr
    build["load_output"] = load.stdout + load.stderr
    result = run_dbt(build, ["build"])
    assert_built(build, result)
    build["build_output"] = result.stdout + result.stderr
    _CACHE["build"] = build
    return build
