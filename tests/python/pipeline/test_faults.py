"""Fault tests: processes killed mid-run (SIGKILL), and two loaders at once.

- `flsdb load` killed at 20 seeded-random moments: each time the warehouse left behind is
  consistent (every recorded file has exactly its rows), and a rerun makes the raw tables equal
  to a clean single load, exactly (every column but the load timestamps).
- `dbt build` killed mid-run: the published marts (publish_marts, a separate file) are untouched
  and readable, and the next build completes.
- Two `flsdb load` at once: the second fails at once with "Warehouse busy" (or, with
  FLSDB_LOCK_TIMEOUT, waits and then finds nothing left to do); nothing is corrupted.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from flsdb.ingest import load_landing

import tiny_build
from shared_builds import copy_build

SEED = 20250607
KILLS = 20
LANDING_FILES = 24


def raw_snapshot(warehouse: Path) -> dict[str, list]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {
            "load_files": con.execute(
                "SELECT * EXCLUDE (loaded_at) FROM raw.load_files ORDER BY load_order").fetchall(),
            "records": con.execute("SELECT * EXCLUDE (_loaded_at) FROM raw.submission_records "
                                   "ORDER BY _load_order, _line_number").fetchall(),
            "rejects": con.execute("SELECT * EXCLUDE (_loaded_at) FROM raw.submission_rejects "
                                   "ORDER BY _load_order, _line_number").fetchall(),
        }
    finally:
        con.close()


def assert_consistent(warehouse: Path) -> int:
    """Every recorded file has exactly its accepted and rejected rows; no orphan rows.
    Returns the number of files recorded."""
    con = duckdb.connect(str(warehouse))      # read-write: replays the WAL the kill left
    try:
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE "
                           "table_schema = 'raw' AND table_name = 'load_files'").fetchone()[0]:
            return 0
        bad = con.execute("""
            SELECT f.source_file FROM raw.load_files f
            WHERE rows_read <> rows_accepted + rows_rejected
               OR rows_accepted <> (SELECT count(*) FROM raw.submission_records r
                                    WHERE r._file_sha256 = f.file_sha256)
               OR rows_rejected <> (SELECT count(*) FROM raw.submission_rejects r
                                    WHERE r._file_sha256 = f.file_sha256)""").fetchall()
        assert bad == []
        orphans = con.execute("""
            SELECT count(*) FROM raw.submission_records r WHERE r._file_sha256 NOT IN
              (SELECT file_sha256 FROM raw.load_files)""").fetchone()[0]
        assert orphans == 0
        return con.execute("SELECT count(*) FROM raw.load_files").fetchone()[0]
    finally:
        con.close()


CHILD = textwrap.dedent("""
    import sys
    from flsdb.ingest import loader
    loader._Loader.BATCH_FILES = 6         # many batches and commits: many places to die in
    print("READY", flush=True)
    loader.load_landing(sys.argv[1], sys.argv[2], progress=False)
    print("DONE", flush=True)
""")


def _start_child(landing: Path, warehouse: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(landing), str(warehouse)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "READY", proc.stderr.read()
    return proc


@pytest.fixture(scope="module")
def fault_landing(tmp_path_factory) -> dict:
    """A small landing set (24 generated files, with the generator's realistic defects) and
    its clean single-load reference."""
    from flsdb.synthetic import generate

    root = tmp_path_factory.mktemp("faults")
    generated, landing = root / "generated", root / "landing"
    generate(years=[2024], scale=0.02, out_dir=generated, seed=11, clean=False)
    landing.mkdir()
    for source in sorted(generated.glob("*.csv"))[:LANDING_FILES]:      # keep the test quick
        (landing / source.name).write_bytes(source.read_bytes())
    reference = root / "reference.duckdb"
    load_landing(landing, reference, progress=False)
    return {"root": root, "landing": landing, "reference": raw_snapshot(reference)}


@pytest.mark.slow
def test_loader_killed_at_random_moments_then_rerun_equals_clean_load(fault_landing):
    root, landing, reference = (fault_landing[k] for k in ("root", "landing", "reference"))
    # How long a whole load takes in a child process (after its imports).
    timing = root / "timing.duckdb"
    proc = _start_child(landing, timing)
    t0 = time.perf_counter()
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    span = time.perf_counter() - t0
    rng = random.Random(SEED)
    died_mid_load = 0
    partial_states = set()
    for i in range(KILLS):
        warehouse = root / f"killed_{i:02d}.duckdb"
        delay = rng.uniform(0.0, span)
        proc = _start_child(landing, warehouse)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait(timeout=60)
        if code == -signal.SIGKILL:
            died_mid_load += 1
        files_before = assert_consistent(warehouse) if warehouse.exists() else 0
        partial_states.add(files_before)
        load_landing(landing, warehouse, progress=False)         # the rerun
        assert assert_consistent(warehouse) > 0
        assert raw_snapshot(warehouse) == reference, f"kill {i} after {delay:.2f}s"
        for suffix in ("", ".wal"):
            Path(f"{warehouse}{suffix}").unlink(missing_ok=True)
    print(f"\n{died_mid_load}/{KILLS} kills landed mid-load (load span {span:.2f}s); files "
          f"already committed when killed: {sorted(partial_states)}")
    assert died_mid_load >= KILLS // 2
    assert len(partial_states) >= 3          # the kills hit different points of the load


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dbt_build_killed_mid_run_then_next_build_completes(tiny, tmp_path):
    build = copy_build(tiny, tmp_path / "tiny_copy")          # this test kills a build on it
    from flsdb.publish.marts import publish_marts

    out = build["root"] / "output"
    published = publish_marts(build["warehouse"], out)
    before = {p: _sha(p) for p in sorted((out / "published").rglob("*")) if p.is_file()}
    rows_before = duckdb.connect(str(published), read_only=True).execute(
        "SELECT count(*) FROM publication.published_kpi_results").fetchone()[0]

    proc = subprocess.Popen(
        tiny_build.dbt_command(["build"], build["target"], build["logs"]),
        env=tiny_build.dbt_env(build["warehouse"], build["landing"]),
        cwd=str(Path(build["warehouse"]).parent), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    created, deadline = 0, time.monotonic() + 300
    for line in proc.stdout:                       # kill once models are being written
        if "OK created" in line:
            created += 1
            if created >= 6:
                break
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert created >= 6

    after = {p: _sha(p) for p in sorted((out / "published").rglob("*")) if p.is_file()}
    assert after == before                         # the published version is untouched
    con = duckdb.connect(str(published), read_only=True)
    assert con.execute("SELECT count(*) FROM publication.published_kpi_results").fetchone()[0] == rows_before
    con.close()

    result = tiny_build.run_dbt(build, ["build"])
    tiny_build.assert_built(build, result)
    assert "Finished running" in result.stdout


# ---------------------------------------------------------------------------------------------
# Two loads at once
# ---------------------------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys, time
    from flsdb.ingest import loader
    from flsdb.cli import main
    def hold():
        print("LOCKED", flush=True)
        time.sleep(float(sys.argv[3]))
    loader._after_connect_hook = hold
    main(["load", "--landing", sys.argv[1], "--warehouse", sys.argv[2]])
""")


def _flsdb(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    flsdb = Path(sys.executable).with_name("flsdb")
    return subprocess.run([str(flsdb), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_two_loads_at_once_one_is_told_warehouse_busy(fault_landing, tmp_path):
    landing = fault_landing["landing"]
    warehouse = tmp_path / "busy.duckdb"
    first = subprocess.Popen([sys.executable, "-c", HOLDER, str(landing), str(warehouse), "4"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "LOCKED", first.stderr.read()
        t0 = time.perf_counter()
        second = _flsdb("load", "--landing", str(landing), "--warehouse", str(warehouse),
                        env={"FLSDB_LOCK_TIMEOUT": "0"})
        assert time.perf_counter() - t0 < 15                 # it fails at once, not hanging
        assert second.returncode == 4
        assert "Warehouse busy" in second.stderr and "in use by another process" in second.stderr
        assert "FLSDB_LOCK_TIMEOUT" in second.stderr
        assert "Traceback" not in second.stderr
        _out, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert raw_snapshot(warehouse) == fault_landing["reference"]


def test_second_load_with_lock_timeout_waits_then_finds_nothing_to_do(fault_landing, tmp_path):
    landing = fault_landing["landing"]
    warehouse = tmp_path / "wait.duckdb"
    first = subprocess.Popen([sys.executable, "-c", HOLDER, str(landing), str(warehouse), "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "LOCKED", first.stderr.read()
        second = _flsdb("load", "--landing", str(landing), "--warehouse", str(warehouse),
                        env={"FLSDB_LOCK_TIMEOUT": "120"})
        assert second.returncode == 0, second.stderr
        assert first.wait(timeout=300) == 0
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # The waiting load ran after the first finished: every file was already there.
    assert f" 0 loaded, 0 rejected, {LANDING_FILES} unchanged" in second.stdout
    assert raw_snapshot(warehouse) == fault_landing["reference"]
