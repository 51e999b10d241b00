"""Where things live. Every path can be overridden by an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(os.environ.get("FLSDB_PROJECT_DIR", Path(__file__).resolve().parents[2]))


def _path(env: str, default: str) -> Path:
    value = Path(os.environ.get(env, default))
    return value if value.is_absolute() else PROJECT_DIR / value


def warehouse_path() -> Path:
    """The DuckDB warehouse file that `flsdb load` and `dbt build` write."""
    return _path("FLSDB_WAREHOUSE", "warehouse/flsdb.duckdb")


def landing_dir() -> Path:
    """The folder FLS submission files are dropped into."""
    return _path("FLSDB_LANDING", "landing")


def seeds_dir() -> Path:
    return PROJECT_DIR / "seeds"


def reference_dir() -> Path:
    return PROJECT_DIR / "data" / "reference"


def postcode_lookup_path() -> Path:
    """The postcode -> LSOA 2011 lookup (ONS NSPL layout). Defaults to the synthetic one that
    `flsdb generate` writes beside its submissions."""
    return _path("FLSDB_POSTCODE_LOOKUP",
                 str(landing_dir() / "_reference" / "synthetic_nspl_postcode_lookup.csv"))
