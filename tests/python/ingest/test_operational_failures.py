"""Operational failures around a load (round 2 of the hostile input): one line, a documented exit
code (src/flsdb/failures.py), data intact; the pseudonym key; `flsdb run` never generates into a
folder that holds anything. Helpers: test_hostile_input.py and ingest_env.py."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from ingest_env import (  # noqa: F401  (load_env is a fixture)
    assert_counts_balance, csv_text, good_row, load_env)


# --- 3. Operational failures: one line, a documented exit code, data intact ------------------

def _cli(args, env):
    import subprocess
    import sys
    flsdb = Path(sys.executable).with_name("flsdb")
    return subprocess.run([str(flsdb), *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


def _loaded_warehouse(load_env):
    load_env.write("a.csv", csv_text([good_row(i) for i in range(20)]))
    load_env.load()
    return load_env.warehouse


def _assert_one_line(proc, code, needle):
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout, (proc.args, proc.stderr[-3000:])
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr


def test_every_command_against_a_busy_warehouse_says_so(load_env, tmp_path):
    import subprocess
    import sys
    wh = _loaded_warehouse(load_env)
    holder = subprocess.Popen([sys.executable, "-c",
                               ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                                "print('held', flush=True); time.sleep(120)"), str(wh)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        env = {"FLSDB_WAREHOUSE": str(wh), "FLSDB_LANDING": str(load_env.landing),
               "FLSDB_OUTPUT": str(tmp_path / "out")}
        for args in (["load"], ["build"], ["validate", "--no-gx"],
                     ["recheck-rejects", "--registry", str(load_env.registry)],
                     ["publish", "--warehouse", str(wh)]):
            proc = _cli(args, env)
            if args[0] == "publish":       # refuses before opening: no validation yet
                assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
                continue
            _assert_one_line(proc, 4, "busy")
    finally:
        holder.kill()
        holder.wait()
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(20,)]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_truncated_or_corrupt_warehouse_gives_one_line(load_env, tmp_path, damage):
    wh = _loaded_warehouse(load_env)
    size = wh.stat().st_size
    if damage == "truncated":
        os.truncate(wh, size // 3)
    elif damage == "garbage":
        wh.write_bytes(os.urandom(size))
    else:
        wh.write_bytes(b"")
    before = wh.read_bytes()
    env = {"FLSDB_WAREHOUSE": str(wh), "FLSDB_LANDING": str(load_env.landing),
           "FLSDB_OUTPUT": str(tmp_path / "out")}
    for args in (["load"], ["build"], ["validate", "--no-gx"],
                 ["recheck-rejects", "--registry", str(load_env.registry)]):
        _assert_one_line(_cli(args, env), 6, "Warehouse unreadable")
    assert wh.read_bytes() == before                                # nothing made it worse


def _mount_tmpfs(path: Path, size: str) -> bool:
    import subprocess
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    import subprocess
    subprocess.run(["umount", str(path)], capture_output=True)


def test_read_only_warehouse_gives_one_line(load_env, tmp_path):
    import subprocess
    mnt = tmp_path / "ro"
    if not _mount_tmpfs(mnt, "64m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        wh = mnt / "wh.duckdb"
        load_env.warehouse = wh
        _loaded_warehouse(load_env)
        load_env.write("b.csv", csv_text([good_row(100)]))
        assert subprocess.run(["mount", "-o", "remount,ro", str(mnt)]).returncode == 0
        env = {"FLSDB_WAREHOUSE": str(wh), "FLSDB_LANDING": str(load_env.landing),
               "FLSDB_OUTPUT": str(tmp_path / "out")}
        for args in (["load"], ["build"], ["recheck-rejects", "--registry",
                                           str(load_env.registry)]):
            _assert_one_line(_cli(args, env), 5, "not writable")
        assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(20,)]
    finally:
        _umount(mnt)


def test_full_disk_during_a_load_gives_one_line_and_keeps_loaded_data(load_env, tmp_path):
    import subprocess
    mnt = tmp_path / "full"
    if not _mount_tmpfs(mnt, "3m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        wh = mnt / "wh.duckdb"
        load_env.warehouse = wh
        _loaded_warehouse(load_env)
        load_env.write("big.csv", csv_text([good_row(i, **{"Record ID": f"R{i}-" + "x" * 400})
                                            for i in range(30_000)]))
        env = {"FLSDB_WAREHOUSE": str(wh), "FLSDB_LANDING": str(load_env.landing)}
        _assert_one_line(_cli(["load"], env), 7, "Disk full")
        subprocess.run(["mount", "-o", "remount,size=256m", str(mnt)], check=True)
        assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(20,)]
        assert_counts_balance(load_env)
        proc = _cli(["load"], env)                                  # space freed: it loads
        assert proc.returncode == 0, proc.stderr
        # (the CLI checks FLS codes against the project's registry, which lacks RX1)
        assert load_env.file_row("big.csv")[:3] == ("loaded", None, 30_000)
        assert_counts_balance(load_env)
    finally:
        _umount(mnt)


def test_failure_kinds_map_to_documented_exit_codes():
    """The classification itself, for errors not easily provoked in a test (disk quota, EROFS
    raised by Python code, a lock message from DuckDB)."""
    import errno as errno_
    from flsdb import failures

    cases = [
        (OSError(errno_.ENOSPC, "No space left on device"), "disk_full", 7),
        (duckdb.IOException('IO Error: Could not write all bytes to file "/w/x.duckdb.wal": '
                            "No space left on device"), "disk_full", 7),
        (OSError(errno_.EROFS, "Read-only file system"), "warehouse_read_only", 5),
        (duckdb.IOException('IO Error: Could not set lock on file "/w/x.duckdb": Conflicting '
                            "lock is held in /usr/bin/python (PID 42)"), "warehouse_busy", 4),
        (duckdb.IOException('IO Error: The file "/w/x.duckdb" exists, but it is not a valid '
                            "DuckDB database file!"), "warehouse_corrupt", 6),
    ]
    for exc, kind, code in cases:
        failure = failures.classify(exc, "/w/x.duckdb")
        assert (failure.kind, failure.exit_code) == (kind, code)
        assert "\n" not in failure.message
    # a failed ROLLBACK after a full disk still reports the full disk
    try:
        try:
            raise OSError(errno_.ENOSPC, "No space left on device")
        except OSError:
            raise duckdb.TransactionException("cannot rollback - no transaction is active")
    except duckdb.Error as chained:
        assert failures.classify(chained, "/w").kind == "disk_full"
    assert failures.classify(ValueError("x"), "/w") is None


# --- 10. The pseudonym key -------------------------------------------------------------------

@pytest.mark.parametrize("key", ["x", " ", "\t\n", "short-key-31-bytes-long-xxxxxxx",
                                 "  " + "k" * 31 + "  "])
def test_short_pseudonym_keys_are_refused(monkeypatch, key):
    from click.testing import CliRunner
    from flsdb import dbt_duckdb_plugin
    from flsdb.cli import main as cli

    monkeypatch.setenv("FLSDB_PSEUDONYM_KEY", key)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        dbt_duckdb_plugin.pseudonym_key()
    out = CliRunner().invoke(cli, ["build", "--select", "nothing"])
    assert out.exit_code == 8 and "at least 32 bytes" in out.output, out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1
    if len(key.strip()) > 3:
        assert key.strip() not in out.output                       # the key is never echoed


def test_pseudonym_key_of_32_bytes_and_development_mode_are_accepted(monkeypatch):
    from flsdb import dbt_duckdb_plugin

    monkeypatch.setenv("FLSDB_PSEUDONYM_KEY", "k" * 32)
    assert dbt_duckdb_plugin.pseudonym_key() == "k" * 32
    monkeypatch.delenv("FLSDB_PSEUDONYM_KEY")
    assert dbt_duckdb_plugin.pseudonym_key() == dbt_duckdb_plugin.DEVELOPMENT_KEY


# --- 11. `flsdb run` never generates into a folder that holds anything -----------------------

@pytest.mark.parametrize("entry", ["EXPORT.CSV", "export.txt", ".hidden", "_reference/x.csv",
                                   "sub/", "data.csv.gz"])
def test_run_generates_only_into_an_absent_or_empty_landing_folder(tmp_path, monkeypatch, entry):
    from click.testing import CliRunner
    from flsdb import cli as cli_module

    landing = tmp_path / "landing"
    assert cli_module.landing_is_empty(landing)                     # absent
    landing.mkdir()
    assert cli_module.landing_is_empty(landing)                     # empty
    target = landing / entry
    if entry.endswith("/"):
        target.mkdir(parents=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")
    assert not cli_module.landing_is_empty(landing)
    generated, loaded = [], []
    monkeypatch.setenv("FLSDB_LANDING", str(landing))
    monkeypatch.setenv("FLSDB_WAREHOUSE", str(tmp_path / "wh.duckdb"))
    monkeypatch.setattr("flsdb.synthetic.generate", lambda **kw: generated.append(kw) or "")
    monkeypatch.setattr("flsdb.ingest.load_landing",
                        lambda *a, **k: loaded.append(a) or (_ for _ in ()).throw(SystemExit(9)))
    out = CliRunner().invoke(cli_module.main, ["run"])
    assert generated == [] and loaded, out.output
    assert "not empty: loading what is there" in out.output
