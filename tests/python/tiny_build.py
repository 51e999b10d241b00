"""A tiny end-to-end warehouse (one audit year at 2% of national volume), shared by the fault,
privacy, refresh, incremental-staging and add-a-KPI tests: generated, loaded and built once per test
session with a distinctive FLSDB_PSEUDONYM_KEY, and dbt's target and log folders kept apart from the
project's. conftest.py's `tiny` fixture is this build, started in the background when a selected
test needs it (shared_builds.py); tiny_build() returns the same build.

Not a fixture module: pytest would run a session fixture imported into two test modules twice,
so the build is kept here, in the module (BUILD), and conftest and the tests call tiny_build().
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flsdb import paths
from shared_builds import SharedBuild

KEY = "Zq7-tiny-build-PSEUDONYM-KEY-4f1c9e2b-never-on-disk"


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


def _make(shared: SharedBuild, root: Path) -> dict:
    build = {"root": root, "landing": root / "landing", "warehouse": root / "tiny.duckdb",
             "target": root / "target", "logs": root / "logs"}
    steps = root / "steps"
    steps.mkdir()
    env = dbt_env(build["warehouse"], build["landing"])
    flsdb = str(Path(sys.executable).with_name("flsdb"))
    generate = shared.run("generate", [flsdb, "generate", "--years", "2024", "--scale", "0.02",
                                       "--seed", "7", "--out", str(build["landing"])],
                          env, paths.PROJECT_DIR, steps / "generate.log")
    assert generate.returncode == 0, generate.stdout[-5000:]
    load = shared.run("load", [flsdb, "load", "--landing", str(build["landing"]),
                               "--warehouse", str(build["warehouse"])],
                      env, paths.PROJECT_DIR, steps / "load.log")
    assert load.returncode == 0, load.stdout[-5000:]
    build["load_output"] = load.stdout
    result = shared.run("dbt build", dbt_command(["build"], build["target"], build["logs"]), env,
                        paths.PROJECT_DIR, steps / "dbt_build.log")
    assert_built(build, result)
    build["build_output"] = result.stdout
    return build


BUILD = SharedBuild("tiny (2024 at 2%)", _make, fixture="tiny")


def tiny_build(tmp_path_factory) -> dict:
    """{root, landing, warehouse, target, logs, load_output, build_output}: built once. A test that
    changes it works on shared_builds.copy_build(tiny_build(...), folder)."""
    return BUILD.get(lambda: tmp_path_factory.mktemp("tiny"))
