"""Issue 19, "Settings and paths": every setting is checked once at start-up (src/flsdb/settings.py)
and a bad one ends the command with exit code 8 and one line naming the setting and what it
accepts; paths that would make one step read or destroy another's files are refused before
anything is written; a copied project follows the copy, and a .venv copied with it is refused
(and replaced by `make install`). Paths with an apostrophe, spaces and non-ASCII letters run end
to end in test_withdraw.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from flsdb import paths, settings
from flsdb.cli import main as cli
from flsdb.failures import ConfigurationError


def _invoke(monkeypatch, env: dict[str, str], args=("history",)):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(cli, list(args))


def _one_error_line(out, needle: str) -> str:
    assert out.exit_code == 8, (out.exit_code, out.output)
    lines = [ln for ln in out.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), out.output
    assert "Traceback" not in out.output and needle in lines[0], out.output
    return lines[0]


# --- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,value,accepts", [
    ("FLSDB_GX_SAMPLE_ROWS", "50,000", "digits only"),      # the issue: ValueError, exit 70
    ("FLSDB_GX_SAMPLE_ROWS", "-1", "at least 1"),           # the issue: put into SQL text
    ("FLSDB_GX_SAMPLE_ROWS", "0", "at least 1"),            # the issue: "a random sample of 0 rows"
    ("FLSDB_GX_SAMPLE_ROWS", "5e4", "digits only"),
    ("FLSDB_GX_SAMPLE_ROWS", "50000 rows", "digits only"),
    ("FLSDB_THREADS", "0", "from 1 to 64"),
    ("FLSDB_THREADS", "two", "from 1 to 64"),
    ("FLSDB_THREADS", "2.5", "from 1 to 64"),
    ("FLSDB_THREADS", "1000", "from 1 to 64"),
    ("FLSDB_LOCK_TIMEOUT", "-5", "0 or more"),
    ("FLSDB_LOCK_TIMEOUT", "ten", "0 or more"),
    ("FLSDB_LOCK_TIMEOUT", "inf", "0 or more"),
    ("FLSDB_LOCK_TIMEOUT", "nan", "0 or more"),
    ("FLSDB_DUCKDB_MEMORY_LIMIT", "4", "a number and a unit"),
    ("FLSDB_DUCKDB_MEMORY_LIMIT", "4 gigabytes", "a number and a unit"),
    ("FLSDB_DUCKDB_MEMORY_LIMIT", "1MB", "at least 256MB"),
    ("FLSDB_DUCKDB_MEMORY_LIMIT", "-1GB", "a number and a unit"),
])
def test_a_bad_number_setting_ends_with_exit_8_naming_it(monkeypatch, name, value, accepts):
    for command in (["history"], ["load"], ["validate"], ["build", "--select", "nothing"]):
        line = _one_error_line(_invoke(monkeypatch, {name: value}, command), name)
        assert repr(value) in line and accepts in line and "Nothing was changed" in line


@pytest.mark.parametrize("name,value,parsed", [
    ("FLSDB_GX_SAMPLE_ROWS", "1", 1), ("FLSDB_GX_SAMPLE_ROWS", " 50000 ", 50000),
    ("FLSDB_GX_SAMPLE_ROWS", "", 50000),                    # empty = the default
    ("FLSDB_THREADS", "1", 1), ("FLSDB_THREADS", "64", 64), ("FLSDB_THREADS", "", 2),
    ("FLSDB_LOCK_TIMEOUT", "0", 0.0), ("FLSDB_LOCK_TIMEOUT", "2.5", 2.5),
    ("FLSDB_LOCK_TIMEOUT", "120", 120.0),
    ("FLSDB_DUCKDB_MEMORY_LIMIT", "4GB", "4GB"), ("FLSDB_DUCKDB_MEMORY_LIMIT", "500 MiB", "500 MiB"),
    ("FLSDB_DUCKDB_MEMORY_LIMIT", "0.5gb", "0.5gb"), ("FLSDB_DUCKDB_MEMORY_LIMIT", "256MB", "256MB"),
])
def test_good_number_settings_are_read_by_one_rule(monkeypatch, name, value, parsed):
    monkeypatch.setenv(name, value)
    reader = {"FLSDB_GX_SAMPLE_ROWS": settings.gx_sample_rows, "FLSDB_THREADS": settings.threads,
              "FLSDB_LOCK_TIMEOUT": settings.lock_timeout,
              "FLSDB_DUCKDB_MEMORY_LIMIT": settings.memory_limit}[name]
    assert reader() == parsed
    settings.check_all()


def test_the_gx_suites_read_the_sample_size_through_settings(monkeypatch):
    import duckdb

    from flsdb.quality import expectations

    con = duckdb.connect()
    con.execute("create schema reference; create table reference.kpi_definitions (kpi_number int, "
                "value_type varchar, key_field_threshold_pct double); create table "
                "reference.fls_registry (fls_code varchar)")
    monkeypatch.setattr(expectations, "extract_date", lambda con: None)
    monkeypatch.setenv("FLSDB_GX_SAMPLE_ROWS", "1234")
    assert expectations.read_context(con).sample_rows == 1234
    monkeypatch.setenv("FLSDB_GX_SAMPLE_ROWS", "-1")
    with pytest.raises(ConfigurationError, match="FLSDB_GX_SAMPLE_ROWS"):
        expectations.read_context(con)


def test_help_works_whatever_the_settings(monkeypatch):
    out = _invoke(monkeypatch, {"FLSDB_THREADS": "x"}, ["withdraw", "--help"])
    assert out.exit_code == 0 and "--record" in out.output


def test_the_pseudonym_key_is_checked_at_start_up_for_every_command(monkeypatch):
    _one_error_line(_invoke(monkeypatch, {"FLSDB_PSEUDONYM_KEY": "short"}, ["history"]),
                    "at least 32 bytes")


# --- paths that must not overlap -------------------------------------------------------------------

def _path_env(tmp_path: Path, **over: str) -> dict[str, str]:
    env = {"FLSDB_LANDING": str(tmp_path / "landing"), "FLSDB_OUTPUT": str(tmp_path / "output"),
           "FLSDB_WAREHOUSE": str(tmp_path / "warehouse" / "w.duckdb"),
           "FLSDB_HISTORY": str(tmp_path / "history" / "h.duckdb")}
    env.update({k: (str(tmp_path / v) if v and not v.startswith("/") else v) for k, v in over.items()})
    return env


@pytest.mark.parametrize("over,needle", [
    ({"FLSDB_OUTPUT": "landing"}, "is the landing folder"),                  # the case
    ({"FLSDB_OUTPUT": "landing/out"}, "is inside the landing folder"),       # ... and inside it
    ({"FLSDB_LANDING": "output/landing"}, "is inside the output folder"),
    ({"FLSDB_WAREHOUSE": "landing/w.duckdb"}, "would read the warehouse as a submission"),
    ({"FLSDB_HISTORY": "output/site/h.duckdb"}, "FLSDB_HISTORY"),           # `report` deleted it
    ({"FLSDB_HISTORY": "output/h.duckdb"}, "the output folder"),
    ({"FLSDB_HISTORY": "landing/h.duckdb"}, "the landing folder"),
    ({"FLSDB_HISTORY": "dbt-target/h.duckdb", "DBT_TARGET_PATH": "dbt-target"}, "DBT_TARGET_PATH"),
    ({"FLSDB_HISTORY": "dbt-logs/h.duckdb", "DBT_LOG_PATH": "dbt-logs"}, "DBT_LOG_PATH"),
    ({"FLSDB_HISTORY": "warehouse/w.duckdb"}, "is the warehouse file"),
    ({"FLSDB_HISTORY": "history"}, "is a folder"),
    ({"FLSDB_WAREHOUSE": "landing"}, "is a folder"),
])
def test_overlapping_paths_are_refused_before_anything_is_written(monkeypatch, tmp_path, over,
                                                                 needle):
    (tmp_path / "landing").mkdir()
    (tmp_path / "history").mkdir()
    (tmp_path / "output" / "site").mkdir(parents=True)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for command in (["load"], ["report"], ["publish"], ["history"], ["run"]):
        _one_error_line(_invoke(monkeypatch, _path_env(tmp_path, **over), command), needle)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("folder", ["target", "logs", "warehouse"])
def test_the_history_is_refused_in_the_projects_build_folders(monkeypatch, tmp_path, folder):
    env = _path_env(tmp_path, FLSDB_HISTORY=str(paths.PROJECT_DIR / folder / "h.duckdb"))
    _one_error_line(_invoke(monkeypatch, env), f"the project's {folder}/")


def test_a_link_cannot_hide_an_overlap(monkeypatch, tmp_path):
    (tmp_path / "landing").mkdir()
    (tmp_path / "elsewhere").symlink_to(tmp_path / "landing")
    _one_error_line(_invoke(monkeypatch, _path_env(tmp_path, FLSDB_OUTPUT="elsewhere/out")),
                    "inside the landing folder")


def test_command_options_are_checked_like_settings(monkeypatch, tmp_path):
    (tmp_path / "landing").mkdir()
    env = _path_env(tmp_path)
    _one_error_line(_invoke(monkeypatch, env, ["publish", "--output", str(tmp_path / "landing")]),
                    "--output")
    _one_error_line(_invoke(monkeypatch, env, ["history", "--history",
                                               str(tmp_path / "output" / "h.duckdb")]), "--history")
    _one_error_line(_invoke(monkeypatch, env, ["load", "--landing", str(tmp_path / "output" / "l")]),
                    "--landing")


@pytest.mark.parametrize("over", [
    {},                                                          # defaults beside each other
    {"FLSDB_HISTORY": "history.duckdb", "FLSDB_WAREHOUSE": "w.duckdb"},   # one folder, side by side
    {"FLSDB_OUTPUT": "out", "FLSDB_LANDING": "in"},
    {"FLSDB_LANDING": "data/landing", "FLSDB_OUTPUT": "data/output"},     # siblings
])
def test_separate_paths_are_accepted(monkeypatch, tmp_path, over):
    out = _invoke(monkeypatch, _path_env(tmp_path, **over))
    assert out.exit_code == 0, out.output


def test_the_project_and_profiles_settings_must_name_the_project(monkeypatch, tmp_path):
    # the project directory is found once, when flsdb starts: a process of its own
    proc = subprocess.run([str(Path(sys.executable).with_name("flsdb")), "history"],
                          env={**os.environ, "FLSDB_PROJECT_DIR": str(tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 8 and proc.stderr.startswith("Error: FLSDB_PROJECT_DIR is "), proc.stderr
    assert "holds no dbt_project.yml" in proc.stderr and len(proc.stderr.splitlines()) == 1
    _one_error_line(_invoke(monkeypatch, {"DBT_PROFILES_DIR": str(tmp_path)}),
                    "holds no profiles.yml")


# --- a copied project -------------------------------------------------------------------------------

def _fake_project(folder: Path, with_code: bool) -> Path:
    folder.mkdir(parents=True)
    (folder / "dbt_project.yml").write_text("name: flsdb\n")
    (folder / "profiles.yml").write_text("flsdb: {}\n")
    if with_code:
        (folder / "src" / "flsdb").mkdir(parents=True)
    return folder


def test_the_project_directory_follows_the_command_run(monkeypatch, tmp_path):
    """FLSDB_PROJECT_DIR, else the folder of the .venv whose command was run (so a copy's
    .venv/bin/flsdb names the copy even though its first line starts the original's Python), else
    the working directory when it holds a dbt project."""
    copy = _fake_project(tmp_path / "copy", with_code=True)
    (copy / ".venv" / "bin").mkdir(parents=True)
    (copy / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    monkeypatch.delenv("FLSDB_PROJECT_DIR", raising=False)
    monkeypatch.setattr(sys, "argv", [str(copy / ".venv" / "bin" / "flsdb"), "run"])
    assert paths.find_project_dir() == copy
    monkeypatch.setenv("FLSDB_PROJECT_DIR", str(tmp_path / "given"))
    assert paths.find_project_dir() == tmp_path / "given"
    monkeypatch.delenv("FLSDB_PROJECT_DIR")
    monkeypatch.setattr(sys, "argv", ["flsdb"])
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)          # not in a virtual environment
    other = _fake_project(tmp_path / "other", with_code=False)
    monkeypatch.chdir(other)
    assert paths.find_project_dir() == other


def test_a_copied_project_running_the_originals_code_is_refused(tmp_path):
    """`cp -a` of the project with its .venv: the copy's .venv/bin/flsdb still starts the
    original's Python and imports the original's src/flsdb. It must say so (exit 8) and say
    `make install`, instead of reading and writing the original's history and folders."""
    copy = _fake_project(tmp_path / "copy of project", with_code=True)
    bin_dir = copy / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (copy / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    script = Path(sys.executable).with_name("flsdb")
    shutil.copy2(script, bin_dir / "flsdb")                      # as cp -a copies it
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLSDB_PROJECT_DIR", "DBT_PROFILES_DIR")}
    proc = subprocess.run([str(bin_dir / "flsdb"), "history"], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 8, (proc.stdout, proc.stderr)
    assert "the virtual environment belongs to another folder" in proc.stderr
    assert "make install" in proc.stderr and str(copy) in proc.stderr
    assert not (copy / "history").exists() and "Traceback" not in proc.stderr
    # a dbt project without code of its own (FLSDB_PROJECT_DIR at it) is served by this flsdb
    (copy / "src" / "flsdb").rmdir()
    proc = subprocess.run([str(bin_dir / "flsdb"), "history"], cwd=copy, env={
        **env, "FLSDB_HISTORY": str(tmp_path / "h.duckdb")}, capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 0 and "No publication recorded" in proc.stdout, proc.stderr


def test_make_replaces_a_venv_copied_from_another_folder(tmp_path):
    """The Makefile's install target rebuilds a .venv that pyvenv.cfg says was made elsewhere."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("Makefile", "requirements.lock", "pyproject.toml"):
        shutil.copy2(paths.PROJECT_DIR / name, copy / name)
    venv = copy / ".venv"
    venv.mkdir()
    (venv / ".installed").touch()
    for made_in, rebuilt in ((paths.PROJECT_DIR / ".venv", True), (venv, False)):
        (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\ncommand = /usr/bin/python3.11 -m venv "
                                         f"{made_in}\n")
        os.utime(venv / ".installed")                            # newer than the lock files
        dry = subprocess.run(["make", "-n", "install"], cwd=copy, capture_output=True, text=True,
                             timeout=60)
        assert ("rm -rf .venv" in dry.stdout) == rebuilt, dry.stdout + dry.stderr
