"""The publication schedule: the published tier changes at most once per publication period.

Two publications a few records apart give those records away. Publish extract 1, add one record
to one service, publish extract 2: the national rows of the two, side by side, show that patient's
age band, deprivation quintile and KPI outcomes, and a cell withheld in extract 1 but published in
extract 2 is worked out exactly by subtracting the one record. Suppression protects each
publication on its own; it cannot protect the difference between two.

The rule (docs/bi.md, "Two extracts in a row"): publication follows a fixed schedule, not every
refresh. Each extract date falls in a publication period (var `publication_period`: a calendar
`month`, `quarter` or `year`). A new extract is published only when its period is later than the
period of the extract published now. The extract published now may be published again (a re-run
that changes no published number). Anything else, in particular a second, different publication
in the same period, is not published: `flsdb publish` says so and leaves the published tier, its
history and the site as they are (the quality gate and the warehouse are not affected: the next
scheduled publication carries the changes). flsdb.publish.release checks it after the gate and
the sign-off, under the publication lock, on every path to publication (publish, run, refresh).
So a reader can only compare publications a whole period apart, which together differ by a
period's submissions, not by one record.

What the rule does not cover: an audit so small that a whole period brings a handful of records
should publish less often (a longer `publication_period`).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import yaml

from flsdb import paths
from flsdb.publish.marts import PUBLICATION_SCHEMA, duckdb_literal, published_db_path

PERIODS = ("month", "quarter", "year")
#: The tables whose numbers a re-run must leave unchanged.
COMPARED_TABLES = ("published_kpi_results", "published_kpi_monthly", "published_records_submitted")


def publication_period_unit() -> str:
    """var publication_period of dbt_project.yml."""
    project = yaml.safe_load((paths.PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
    unit = str(project.get("publication_period", "month"))
    if unit not in PERIODS:
        raise ValueError(f"var publication_period is {unit!r}; it must be one of {', '.join(PERIODS)}")
    return unit


def period(date: dt.date, unit: str) -> tuple[int, int]:
    """(year, number of the period in the year): (2025, 6) for June 2025 by month, (2025, 2) by quarter."""
    return (date.year, {"month": date.month, "quarter": (date.month - 1) // 3 + 1, "year": 1}[unit])


def period_name(date: dt.date, unit: str) -> str:
    year, number = period(date, unit)
    return {"month": f"{year}-{number:02d}", "quarter": f"{year} Q{number}", "year": f"{year}"}[unit]


def _extract_date(con: duckdb.DuckDBPyConnection, catalog: str) -> dt.date | None:
    row = con.execute(f"select max(extract_date) from {catalog}.{PUBLICATION_SCHEMA}.published_records_submitted"
                      ).fetchone()
    return row[0] if row else None


def _same_numbers(con: duckdb.DuckDBPyConnection) -> bool:
    for table in COMPARED_TABLES:
        new, old = f"new.{PUBLICATION_SCHEMA}.{table}", f"old.{PUBLICATION_SCHEMA}.{table}"
        (differ,) = con.execute(f"select (select count(*) from (select * from {new} except all select * from {old}))"
                                f" + (select count(*) from (select * from {old} except all select * from {new}))"
                                ).fetchone()
        if differ:
            return False
    return True


def refusal(warehouse: Path, out_dir: Path) -> str | None:
    """Why the extract in `warehouse` may not be published to `out_dir` now, or None when it may."""
    current = published_db_path(out_dir)
    if not current.exists():
        return None
    unit = publication_period_unit()
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach {duckdb_literal(Path(warehouse))} as new (read_only)")
        con.execute(f"attach {duckdb_literal(current)} as old (read_only)")
        new_date, old_date = _extract_date(con, "new"), _extract_date(con, "old")
        if new_date is None or old_date is None or period(new_date, unit) > period(old_date, unit):
            return None
        if new_date == old_date and _same_numbers(con):
            return None
    finally:
        con.close()
    return (f"extract {new_date} is in publication period {period_name(new_date, unit)}, which already has its "
            f"publication (extract {old_date}); the published tier changes once per {unit} "
            f"(var publication_period, docs/bi.md \"Two extracts in a row\"). The next publication can be of an "
            f"extract dated in a later {unit}.")
