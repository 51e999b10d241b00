"""Every setting flsdb reads from the environment, checked once at start-up.

The `flsdb` command group calls `check_all()` before any subcommand does anything (cli.main): a
setting it cannot use ends the command with one line naming the setting, the value and what it
accepts, and exit code 8 (failures.ConfigurationError; docs/reliability.md), instead of a
ValueError deep inside a step, a value spliced into SQL, or a path setting that makes one step
destroy another's files. The readers below (gx_sample_rows, lock_timeout, ...) are what the rest
of the package calls, so a value is parsed by one rule only.

What is checked:
- numbers: FLSDB_GX_SAMPLE_ROWS (a whole number of rows, at least 1), FLSDB_THREADS (1-64),
  FLSDB_LOCK_TIMEOUT (seconds, 0 or more), FLSDB_DUCKDB_MEMORY_LIMIT (a size such as 4GB, at
  least 256MB); FLSDB_PSEUDONYM_KEY (dbt_duckdb_plugin.check_pseudonym_key);
- the project: FLSDB_PROJECT_DIR and DBT_PROFILES_DIR, when set, are folders holding
  dbt_project.yml and profiles.yml; the flsdb code that runs is the project's own (a project
  copied with its .venv still runs the original's code: check_project);
- paths that must not overlap (check_paths), because one step would destroy or read another's
  files: the output folder is not the landing folder nor inside it (the next load would read the
  outputs as submissions), the landing folder is not inside the output folder, the warehouse is
  not inside the landing folder, and the extract history (append-only, not rebuildable) is not
  inside the output folder, the landing folder, the project's build folders (target/, logs/,
  warehouse/: what `make clean` deletes), $DBT_TARGET_PATH or $DBT_LOG_PATH, and is not the
  warehouse file. A path setting that names an existing folder where a file is expected (or the
  reverse) is refused too.
An empty value means "not set" (the default) for every setting.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from flsdb import paths
from flsdb.failures import ConfigurationError

GX_SAMPLE_ROWS = "FLSDB_GX_SAMPLE_ROWS"
THREADS = "FLSDB_THREADS"
LOCK_TIMEOUT = "FLSDB_LOCK_TIMEOUT"
MEMORY_LIMIT = "FLSDB_DUCKDB_MEMORY_LIMIT"
MAX_THREADS = 64
MIN_MEMORY_BYTES = 256 * 1000 ** 2   # 256MB (DuckDB: MB = 1000^2 bytes)

DEFAULTS = {GX_SAMPLE_ROWS: "50000", THREADS: "2", LOCK_TIMEOUT: "0", MEMORY_LIMIT: "4GB"}


def _value(name: str) -> tuple[str, bool]:
    """(the value in force, whether it was set)."""
    given = os.environ.get(name)
    if given is None or given.strip() == "":
        return DEFAULTS[name], False
    return given, True


def _refuse(name: str, given: str, accepts: str) -> ConfigurationError:
    shown = given if len(given) <= 60 else given[:57] + "..."
    return ConfigurationError(f"{name} is {shown!r}: it must be {accepts}. Change or unset it "
                              "(the README lists every setting).")


def _whole_number(name: str, low: int, high: int | None, accepts: str) -> int:
    given, _ = _value(name)
    text = given.strip()
    if not re.fullmatch(r"[0-9]+", text) or int(text) < low or (high is not None and int(text) > high):
        raise _refuse(name, given, accepts)
    return int(text)


def gx_sample_rows() -> int:
    """FLSDB_GX_SAMPLE_ROWS: how many rows of each big table Great Expectations samples."""
    return _whole_number(GX_SAMPLE_ROWS, 1, None,
                         "a whole number of rows, at least 1, written with digits only (for "
                         "example 50000; no commas, spaces or signs)")


def threads() -> int:
    """FLSDB_THREADS: dbt threads (profiles.yml reads the same variable)."""
    return _whole_number(THREADS, 1, MAX_THREADS,
                         f"a whole number of dbt threads from 1 to {MAX_THREADS}, digits only "
                         "(for example 2)")


def lock_timeout() -> float:
    """FLSDB_LOCK_TIMEOUT: seconds `flsdb load` waits for a busy warehouse (0: not at all)."""
    given, _ = _value(LOCK_TIMEOUT)
    try:
        seconds = float(given.strip())
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0 or not re.fullmatch(r"[0-9.]+", given.strip()):
        raise _refuse(LOCK_TIMEOUT, given, "a number of seconds, 0 or more (for example 0, 30 or "
                                           "2.5)")
    return seconds


_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*(b|bytes|kb|mb|gb|tb|kib|mib|gib|tib)\s*",
                   re.IGNORECASE)
_UNIT = {"b": 1, "bytes": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "tb": 1000 ** 4,
         "kib": 1024, "mib": 1024 ** 2, "gib": 1024 ** 3, "tib": 1024 ** 4}


def memory_limit() -> str:
    """FLSDB_DUCKDB_MEMORY_LIMIT: DuckDB's memory cap during `dbt build` (profiles.yml)."""
    given, _ = _value(MEMORY_LIMIT)
    match = _SIZE.fullmatch(given)
    if not match or float(match.group(1)) * _UNIT[match.group(2).lower()] < MIN_MEMORY_BYTES:
        raise _refuse(MEMORY_LIMIT, given, "a memory size of at least 256MB, a number and a unit "
                                           "(B, KB, MB, GB, TB, KiB, MiB, GiB or TiB), for example "
                                           "4GB")
    return given.strip()


def _check_pseudonym_key() -> None:
    from flsdb.pseudonym_key import check_pseudonym_key

    try:
        check_pseudonym_key()
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None


# --- the project and the code that runs ---------------------------------------------------------

def check_project() -> None:
    """The project directory holds a dbt project, and the flsdb code running is its own: a project
    copied with its .venv (``cp -a``) still imports the original's src/flsdb (the copied
    scripts start the original's Python, and the editable install points at the original's
    src/), so it would run the original's code against the copy. A project without its own
    src/flsdb (a dbt project only) is served by any installed flsdb."""
    project = paths.PROJECT_DIR
    if not (project / paths.PROJECT_FILE).is_file():
        origin = ("FLSDB_PROJECT_DIR" if os.environ.get("FLSDB_PROJECT_DIR")
                  else "the project directory (found from the working directory)")
        raise ConfigurationError(
            f"{origin} is {str(project)!r}, which holds no {paths.PROJECT_FILE}: it must be the "
            "flsdb project folder. Point FLSDB_PROJECT_DIR at it, or run flsdb from it.")
    own_code = project / "src" / "flsdb"
    code = paths.CODE_CHECKOUT
    if own_code.is_dir() and code is not None and not _same(code, project):
        raise ConfigurationError(
            f"The project is {str(project)!r} but the flsdb code running is the one in "
            f"{str(code / 'src' / 'flsdb')!r}: the virtual environment belongs to another folder "
            "(a project copied with its .venv still runs the original's code, and would read and "
            f"write the original's files). Make one for this folder: cd {_shell(project)} && "
            "make install (it replaces a copied .venv), then run .venv/bin/flsdb from there.")
    profiles = os.environ.get("DBT_PROFILES_DIR")
    if profiles and not (Path(profiles) / "profiles.yml").is_file():
        raise ConfigurationError(
            f"DBT_PROFILES_DIR is {profiles!r}, which holds no profiles.yml: it must be the folder "
            f"holding the project's profiles.yml (normally the project folder, {str(project)!r}), "
            "or unset.")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _shell(path: Path) -> str:
    import shlex
    return shlex.quote(str(path))


# --- paths that must not overlap ------------------------------------------------------------------

@dataclass(frozen=True)
class Place:
    """A path setting in force: its name (the environment variable or option) and where it is."""
    setting: str
    path: Path

    def words(self) -> str:
        return f"{self.setting} ({self.path})"


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(path: Path, folder: Path) -> bool:
    """path is folder or below it (symbolic links resolved, so a link cannot hide an overlap)."""
    p, f = _resolved(path), _resolved(folder)
    return p == f or f in p.parents


def _env_path(name: str) -> Path | None:
    given = os.environ.get(name)
    if not given:
        return None
    path = Path(given)
    return path if path.is_absolute() else paths.PROJECT_DIR / path


def check_paths(landing: Path | None = None, warehouse: Path | None = None,
                output: Path | None = None, history: Path | None = None) -> None:
    """Refuse path settings that overlap (module docstring). Arguments override the environment
    (a command's --landing, --warehouse, --output or --history option)."""
    from flsdb.publish.history import history_path

    land = Place("--landing" if landing else "FLSDB_LANDING", landing or paths.landing_dir())
    wh = Place("--warehouse" if warehouse else "FLSDB_WAREHOUSE",
               warehouse or paths.warehouse_path())
    out = Place("--output" if output else "FLSDB_OUTPUT", output or paths.output_dir())
    hist = Place("--history" if history else "FLSDB_HISTORY", history or history_path())

    for place, kind in ((land, "folder"), (out, "folder"), (wh, "file"), (hist, "file")):
        if kind == "file" and place.path.is_dir():
            raise ConfigurationError(f"{place.words()} is a folder: it must name a DuckDB file "
                                     "(a file in an existing or new folder).")
        if kind == "folder" and place.path.exists() and not place.path.is_dir():
            raise ConfigurationError(f"{place.words()} is a file: it must name a folder.")
    lookup = _env_path("FLSDB_POSTCODE_LOOKUP")
    if lookup is not None and lookup.is_dir():
        raise ConfigurationError(f"FLSDB_POSTCODE_LOOKUP ({lookup}) is a folder: it must name the "
                                 "postcode lookup CSV file.")

    if _inside(out.path, land.path):
        raise ConfigurationError(
            f"{out.words()} is {'the landing folder' if _same(out.path, land.path) else 'inside the landing folder'} "
            f"{land.words()}: the next flsdb load would read the reports and extracts as "
            "submissions. Point the output folder outside the landing folder.")
    if _inside(land.path, out.path):
        raise ConfigurationError(
            f"{land.words()} is inside the output folder {out.words()}, where flsdb validate, "
            "publish and report write and replace folders: submissions must not share it. Keep "
            "the landing folder outside the output folder.")
    if _inside(wh.path, land.path):
        raise ConfigurationError(
            f"{wh.words()} is inside the landing folder {land.words()}: the next flsdb load would "
            "read the warehouse as a submission. Keep the warehouse outside the landing folder.")

    # The extract history is append-only and cannot be rebuilt: never where a step deletes or
    # reads files.
    project = paths.PROJECT_DIR
    unsafe = [(out, "the output folder, whose folders flsdb publish and flsdb report replace"),
              (land, "the landing folder, which flsdb load reads as submissions"),
              (Place("the project's target/", project / "target"), "a build folder (make clean deletes it)"),
              (Place("the project's logs/", project / "logs"), "a build folder (make clean deletes it)"),
              (Place("the project's warehouse/", project / "warehouse"),
               "the warehouse folder (make clean deletes it)")]
    for name in ("DBT_TARGET_PATH", "DBT_LOG_PATH"):
        folder = _env_path(name)
        if folder is not None:
            unsafe.append((Place(name, folder), "dbt's build folder"))
    for place, what in unsafe:
        if _inside(hist.path, place.path):
            raise ConfigurationError(
                f"{hist.words()} is inside {place.words()}, {what}: the extract history is "
                "append-only and cannot be rebuilt, so it must live where no step deletes or reads "
                "files. Move it (and the file, if it exists) to its own folder, such as the "
                "project's history/, and set FLSDB_HISTORY there.")
    if _same(hist.path, wh.path):
        raise ConfigurationError(f"{hist.words()} is the warehouse file {wh.words()}: the "
                                 "extract history must be a file of its own.")


def check_all() -> None:
    """Every setting, in a fixed order; the first that is wrong raises ConfigurationError."""
    check_project()
    gx_sample_rows()
    threads()
    lock_timeout()
    memory_limit()
    _check_pseudonym_key()
    check_paths()
