"""Shared fixtures: the warehouse builds a test session shares, and the `warehouse` marker.

`built_warehouse` is the default synthetic national data (2023 and 2024 at 1x) built end to end by
the real pipeline (generate -> load -> dbt build, with every unit and data test), so that the
integration tests can query the marts the way an analyst would; `marts` is a read-only connection
to it. `tiny` is one audit year at 2% (tiny_build.py). Each is built once per test run, into a
temporary folder: started in the background when the session begins if a selected test needs it
(shared_builds.py), and the modules that need them run last. A test that changes a shared build
works on a copy (shared_builds.copy_build).

Every test that uses a shared build is marked `warehouse` here; tests that make a build of their
own carry the mark themselves. `make test-fast` runs the rest (`-m "not warehouse"`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import tiny_build
from flsdb import paths
import shared_builds
from shared_builds import SharedBuild

def dbt_env(warehouse: Path, landing: Path, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DBT_PROFILES_DIR": str(paths.PROJECT_DIR),
        "FLSDB_WAREHOUSE": str(warehouse),
        "FLSDB_POSTCODE_LOOKUP": str(landing / "_reference" / "synthetic_nspl_postcode_lookup.csv"),
        "DO_NOT_TRACK": "1",
    })
    env.update(extra_env or {})
    return env


def dbt_command(args: list[str], target_dir: Path) -> list[str]:
    dbt = Path(sys.executable).with_name("dbt")
    return [str(dbt), *args, "--project-dir", str(paths.PROJECT_DIR), "--target-path", str(target_dir)]


def run_dbt(args: list[str], warehouse: Path, landing: Path, target_dir: Path,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(dbt_command(args, target_dir), env=dbt_env(warehouse, landing, extra_env),
                          cwd=paths.PROJECT_DIR, capture_output=True, text=True)


def _make_national(shared: SharedBuild, root: Path) -> dict[str, Path]:
    landing, warehouse, target, steps = root / "landing", root / "warehouse.duckdb", root / "target", root / "steps"
    steps.mkdir()
    env = dbt_env(warehouse, landing)
    flsdb = str(Path(sys.executable).with_name("flsdb"))
    generate = shared.run("generate", [flsdb, "generate", "--years", "2023,2024", "--scale", "1.0",
                                       "--seed", "20240101", "--out", str(landing)],
                          env, paths.PROJECT_DIR, steps / "generate.log")
    assert generate.returncode == 0, generate.stdout[-5000:]
    load = shared.run("load", [flsdb, "load", "--landing", str(landing), "--warehouse", str(warehouse)],
                      env, paths.PROJECT_DIR, steps / "load.log")
    assert load.returncode == 0, load.stdout[-5000:]
    result = shared.run("dbt build", dbt_command(["build"], target), env, paths.PROJECT_DIR,
                        steps / "dbt_build.log")
    assert result.returncode == 0, result.stdout[-20000:]
    return {"root": root, "landing": landing, "warehouse": warehouse, "target": target}


NATIONAL = SharedBuild("national (2023-2024 at 1x)", _make_national, fixture="built_warehouse")
SHARED = (NATIONAL, tiny_build.BUILD)


def _needs(item: pytest.Item) -> set[str]:
    return {build.fixture for build in SHARED if build.needed_by(item)}


def pytest_collection_modifyitems(config, items):
    """Mark the users of a shared build `warehouse`; run the modules that need no shared build
    first, then those that need only the tiny one, then those that need the national one (module by
    module, in their own order, so module fixtures are made once), while the builds are made."""
    rank: dict[str, int] = {}
    for item in items:
        needs = _needs(item)
        if needs:
            item.add_marker(pytest.mark.warehouse)
        module = item.nodeid.split("::")[0]
        rank[module] = max(rank.get(module, 0), 2 if NATIONAL.fixture in needs else 1 if needs else 0)
    items.sort(key=lambda item: rank[item.nodeid.split("::")[0]])


@pytest.fixture(scope="session", autouse=True)
def _queue_builds(request, tmp_path_factory):
    """Queue, for the background thread, every build that a selected test needs: the two shared
    ones first, then the modules' own, the last needed first (the tests reach the first ones)."""
    needed = []
    for item in request.session.items:
        needed += [build for build in shared_builds.REGISTRY if build.needed_by(item) and build not in needed]
    own = [build for build in needed if build not in SHARED]
    for build in [b for b in SHARED if b in needed] + own[::-1]:
        build.queue(tmp_path_factory.mktemp(build.fixture))
    yield
    shared_builds.stop_all()


def pytest_terminal_summary(terminalreporter):
    made = [build.summary() for build in shared_builds.REGISTRY if build.steps]
    if made:
        terminalreporter.write_sep("=", "warehouse builds (tests/python/shared_builds.py)")
        for line in made:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory) -> dict[str, Path]:
    """The default synthetic national data (2023 and 2024 at 1x), loaded and built."""
    return NATIONAL.get(lambda: tmp_path_factory.mktemp("national"))


@pytest.fixture(scope="session")
def marts(built_warehouse):
    """A read-only connection to the built warehouse."""
    connection = duckdb.connect(str(built_warehouse["warehouse"]), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict:
    """The tiny build (tiny_build.py): one audit year at 2%, with its own pseudonym key."""
    return tiny_build.tiny_build(tmp_path_factory)
