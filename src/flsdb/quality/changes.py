"""What changed since the last approved extract, for the data-quality report.

The warehouse being validated is compared with the latest publication in the extract history
(`FLSDB_HISTORY`, default history/flsdb_history.duckdb; flsdb.publish.history): problems new and
resolved, services whose cohort moved by more than the share of seeds/dq_thresholds.csv
(`volume_change_since_approved`), and KPI values restated. The rules are the named queries of
changes.sql beside this file; Python only runs them. Both files are opened read-only: a validation
never writes to the history.

No history file, or one with no publication: `Changes.approved` is None and the report says there
is no earlier approved extract to compare with. A history that cannot be read (busy, damaged) is
said in `Changes.unavailable`, and the report carries on without the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from flsdb.publish.history import history_path, named_queries

SQL_PATH = Path(__file__).with_name("changes.sql")


@dataclass
class Changes:
    history: str
    approved: dict | None = None            # publication_id, extract_date, published_at, has_problems
    unavailable: str | None = None          # why the history could not be read
    problems_by_service: list[dict] = field(default_factory=list)
    problems: list[dict] = field(default_factory=list)
    volumes: list[dict] = field(default_factory=list)
    kpis: list[dict] = field(default_factory=list)

    @property
    def compared(self) -> bool:
        return self.approved is not None

    def count(self, rows: list[dict], key: str, value: str) -> int:
        return sum(1 for r in rows if r.get(key) == value)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _unreadable(history: Path, exc: Exception) -> str:
    return f"the extract history {history} could not be read ({' '.join(str(exc).split())})"


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def since_last_approved(warehouse: Path, history: Path | None = None) -> Changes:
    """Compare `warehouse` with the latest publication of `history` (both opened read-only)."""
    history = Path(history or history_path())
    changes = Changes(history=str(history))
    if not history.exists():
        return changes
    queries = named_queries(SQL_PATH)
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute(f"attach {_literal(history)} as history (read_only)")
        except duckdb.Error as exc:
            changes.unavailable = _unreadable(history, exc)
            return changes
        (has_extracts,) = con.execute(
            "select count(*) from information_schema.tables where table_catalog = 'history' "
            "and table_name = 'extracts'").fetchone()
        if not has_extracts:
            return changes
        con.execute(f"attach {_literal(warehouse)} as warehouse (read_only)")
        con.execute(queries["approved_extract"])
        approved = _rows(con, "select * from approved")
        if not approved:
            return changes
        changes.approved = approved[0]
        con.execute(queries["problem_changes"])
        changes.problems_by_service = _rows(con, queries["problem_changes_by_service"])
        changes.problems = _rows(con, queries["problem_changes_listed"])
        changes.volumes = _rows(con, queries["volume_changes"])
        changes.kpis = _rows(con, queries["kpi_changes"])
        return changes
    except duckdb.Error as exc:
        changes.approved = None
        changes.unavailable = _unreadable(history, exc)
        return changes
    finally:
        con.close()


__all__ = ["Changes", "since_last_approved", "SQL_PATH"]
