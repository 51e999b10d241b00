"""Where things live. Every path can be overridden by an environment variable.

The project directory (the dbt project: dbt_project.yml, models/, seeds/; the default landing/,
warehouse/, output/ and history/ are relative to it) is, in this order:

1. ``$FLSDB_PROJECT_DIR`` (the Makefile sets it to the folder it runs in);
2. the folder holding the virtual environment of the command that was run (``<project>/.venv``),
   when that folder holds a dbt_project.yml: found from the command's own path first, so that
   ``<copy>/.venv/bin/flsdb`` names the copy even when the copied script still starts the
   original's Python (a ``cp -a`` keeps the original's path in every script's first line);
3. the working directory, when it holds a dbt_project.yml;
4. the source checkout the flsdb package is imported from (an editable install), when it holds
   a dbt_project.yml; otherwise the working directory.

Which code runs is a separate question: a project copied with its ``.venv`` still imports the
original's ``src/flsdb``. `flsdb.settings.check_project` refuses that at start-up (exit 8) and says
to run ``make install`` in the copy.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_FILE = "dbt_project.yml"

#: The source checkout of the code that is running (``<checkout>/src/flsdb/paths.py``), or None
#: when the package is installed from a wheel (then it serves whichever project it is pointed at).
CODE_CHECKOUT: Path | None = (Path(__file__).resolve().parents[2]
                              if (Path(__file__).resolve().parents[2] / PROJECT_FILE).is_file()
                              else None)


def _venv_of_command() -> Path | None:
    """The virtual environment (a folder holding pyvenv.cfg) of the command that was run: the
    folder above the bin/ folder of sys.argv[0] (``<venv>/bin/flsdb``), else sys.prefix."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    candidates = []
    if argv0 and os.sep in argv0:
        candidates.append(Path(os.path.abspath(argv0)).parent.parent)
    if sys.prefix != sys.base_prefix:
        candidates.append(Path(sys.prefix))
    for venv in candidates:
        if (venv / "pyvenv.cfg").is_file():
            return venv
    return None


def find_project_dir() -> Path:
    """The project directory, by the rules of the module docstring."""
    given = os.environ.get("FLSDB_PROJECT_DIR")
    if given:
        return Path(os.path.abspath(given))
    venv = _venv_of_command()
    if venv is not None and (venv.parent / PROJECT_FILE).is_file():
        return venv.parent
    cwd = Path.cwd()
    if (cwd / PROJECT_FILE).is_file():
        return cwd
    return CODE_CHECKOUT or cwd


PROJECT_DIR = find_project_dir()


def _path(env: str, default: str) -> Path:
    value = Path(os.environ.get(env) or default)
    return value if value.is_absolute() else PROJECT_DIR / value


def warehouse_path() -> Path:
    """The DuckDB warehouse file that `flsdb load` and `dbt build` write."""
    return _path("FLSDB_WAREHOUSE", "warehouse/flsdb.duckdb")


def landing_dir() -> Path:
    """The folder FLS submission files are dropped into."""
    return _path("FLSDB_LANDING", "landing")


def output_dir() -> Path:
    """Where the quality report, approval, published tier and site go: $FLSDB_OUTPUT or output/."""
    return _path("FLSDB_OUTPUT", "output")


def seeds_dir() -> Path:
    return PROJECT_DIR / "seeds"


def reference_dir() -> Path:
    return PROJECT_DIR / "data" / "reference"


def postcode_lookup_path() -> Path:
    """The postcode -> LSOA 2011 lookup (ONS NSPL layout). Defaults to the synthetic one that
    `flsdb generate` writes beside its submissions."""
    return _path("FLSDB_POSTCODE_LOOKUP",
                 str(landing_dir() / "_reference" / "synthetic_nspl_postcode_lookup.csv"))
