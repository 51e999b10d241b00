"""The extract history: every approved publication, kept outside the rebuildable warehouse.

docs/specification/monitoring.md section 5. After the quality gate approves an extract and the marts are
published, `record_published_extract` appends that publication's results to the history, a DuckDB
file of its own (default `history/flsdb_history.duckdb`, setting `FLSDB_HISTORY`): neither
`dbt build`, a deleted warehouse nor a new publication touches it. `changes_since_last_extract`
then lists what changed between the latest publication and the one before it.

The rules (tables, the restatement threshold, what counts as an outlier or a problem appearing)
live in `history.sql` beside this file; Python only moves rows and computes nothing.

- **Append-only.** Rows are only ever inserted, each stamped with its publication's id, extract
  date and publication time (UTC).
- **Idempotent.** Publishing the same extract twice adds nothing: when the latest publication of
  the same extract date holds the same rows (text exactly, numbers to 1 part in 10^9, so two
  builds of the same data agree), the call returns with `appended` False.
- **Same extract date, different content** (a fix re-published the same day's data): a new
  publication, appended under a new publication id; being later, it becomes the "latest" and is
  compared with the one it replaces.
- **Atomic.** Everything is staged from the warehouse (attached read-only) into memory first; the
  history file is then attached only for one transaction that appends every table, or nothing.
- **Which tables.** `HISTORY_SOURCES` maps each history table to the warehouse relations it can
  come from, in order of preference (the first that exists is used); adding a source is one line
  plus its named query in history.sql.
- **Who signed it off.** Each publication's row of `extracts` carries its sign-off (reviewer,
  when, note, verdict, warnings acknowledged, checks skipped, and the hashes of the warehouse,
  validation and report it was given for; flsdb.quality.signoff). Older histories gain these
  columns, empty for the publications recorded before them, the next time they are appended to.
- **Never lost, never half-made.** `check_history` looks at the file before anything is written
  or read: a folder, an empty (0-byte) file, a file shorter than its own header says (truncated),
  one that DuckDB cannot open (corrupt), one another process holds (busy) or one that cannot be
  written (read-only) is refused with one line that says what to do; a damaged history is
  restored from a backup, never rebuilt. A new history is created whole (schema in a temporary
  file, then linked into place), so a kill never leaves a history file without its tables; a
  DuckDB file with no tables at all (left by an older version) holds nothing and is read as
  empty.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import duckdb

from flsdb import paths
from flsdb.atomic import fsync_path
from flsdb.failures import OperationalError

SQL_PATH = Path(__file__).with_name("history.sql")


def history_path() -> Path:
    """The history file: $FLSDB_HISTORY, default history/flsdb_history.duckdb in the project."""
    return paths._path("FLSDB_HISTORY", "history/flsdb_history.duckdb")


@dataclass(frozen=True)
class Source:
    """A warehouse relation a history table can be filled from, and the history.sql query doing it."""

    relation: str
    query: str


#: history table -> its sources, in order of preference. A table with no source in the warehouse
#: is not recorded for that publication (its source column in `extracts` stays null, and the
#: change views compare it only between publications that both recorded it).
HISTORY_SOURCES: dict[str, tuple[Source, ...]] = {
    # the published tier's suppression flag (primary or complementary) when the warehouse has it,
    # so that a public page built from the history hides what was hidden when published
    "kpi_result_history": (Source("publication.published_kpi_results", "kpi_results_with_published_suppression"),
                           Source("marts.kpi_results", "kpi_results_from_marts")),
    "outlier_history": (Source("marts.outlier_register", "outliers_from_register"),
                        Source("marts.kpi_results", "outliers_from_kpi_results")),
    "dq_problem_history": (Source("quality.dq_problems", "dq_problems_from_quality"),),
}
#: history table -> (source column, row-count column) of `extracts`
EXTRACT_COLUMNS = {
    "kpi_result_history": ("kpi_result_source", "kpi_result_rows"),
    "outlier_history": ("outlier_source", "outlier_rows"),
    "dq_problem_history": ("dq_problem_source", "dq_problem_rows"),
}
#: decimals of doubles in the content fingerprint. The fingerprint identifies what was published;
#: it is not what decides idempotence (a value such as 1397.6661005 rounds differently from
#: 1397.6661004999999, its twin from another build), `_same_content` is.
FINGERPRINT_DECIMALS = 6


#: The tables of a complete history (history.sql, block create_history).
HISTORY_TABLES = ("extracts", *HISTORY_SOURCES)
#: A DuckDB 1.x file starts with three 4 KiB headers, then its blocks (pragma_database_size).
DUCKDB_HEADER_BYTES = 3 * 4096
#: What to do about a history that is lost or damaged: it cannot be rebuilt from anything else.
RESTORE = ("Restore it from your backup of the history; it cannot be rebuilt from the landing "
           "folder or the warehouse, because it holds what was published at the time.")
#: The columns of `extracts` that carry the sign-off, from the sign-off record (signoff.json).
SIGNOFF_COLUMNS = {
    "signed_off_by": "reviewer", "sign_off_kind": "kind", "signed_off_at": "decided_at",
    "sign_off_note": "note", "verdict": "verdict",
    "warnings_acknowledged": "warnings_acknowledged", "checks_skipped": "checks_skipped",
}


class HistoryError(OperationalError):
    """The history cannot be read or appended to; the message is one line, and `kind` (busy,
    read-only, unreadable, a setting, other) gives the exit code (flsdb.failures.EXIT_CODES)."""

    def __init__(self, message: str, kind: str = "history_error"):
        super().__init__(message, kind)


@dataclass(frozen=True)
class RecordedExtract:
    """What `record_published_extract` did."""

    history: Path
    publication_id: int
    extract_date: dt.date
    published_at: dt.datetime
    appended: bool
    content_fingerprint: str
    rows: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str | None] = field(default_factory=dict)

    def __str__(self) -> str:
        if not self.appended:
            return (f"History: extract {self.extract_date} already recorded as publication "
                    f"{self.publication_id} with the same content; nothing appended ({self.history})")
        counts = ", ".join(f"{table} {self.rows[table]:,}" if self.sources.get(table)
                           else f"{table} not recorded (no source in the warehouse)"
                           for table in HISTORY_SOURCES)
        return (f"History: publication {self.publication_id}, extract {self.extract_date}, "
                f"published {self.published_at.isoformat(timespec='seconds')}Z appended: {counts} "
                f"({self.history})")


def named_queries(sql_path: Path | None = None) -> dict[str, str]:
    """The blocks of history.sql, by their `-- name:` line."""
    sql_path = sql_path or SQL_PATH
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in Path(sql_path).read_text(encoding="utf-8").splitlines():
        match = re.match(r"--\s*name:\s*(\w+)\s*$", line)
        if match:
            current = blocks.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines).strip() for name, lines in blocks.items()}


def _statements(block: str) -> list[str]:
    """Split a block on a ';' that ends a line (no statement of history.sql has one inside)."""
    parts = re.split(r";[ \t]*$", block, flags=re.MULTILINE)
    return [p.strip() for p in parts if p.strip() and not _only_comments(p)]


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def _query(name: str) -> str:
    (statement,) = _statements(named_queries()[name])
    return statement


def _utc(moment: dt.datetime) -> dt.datetime:
    """A naive UTC timestamp (the history stores UTC); a naive input is taken to be UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


_CORRUPT = re.compile(r"not a valid DuckDB database file|Could not read enough bytes|corrupt|"
                      r"checksum|Failure while replaying WAL|Serialization Error", re.IGNORECASE)


def _history_error(history: Path, exc: BaseException, action: str) -> HistoryError:
    text = _one_line(exc)
    nothing = "Nothing was published or changed." if action == "append" else "Nothing was changed."
    if "lock" in text.lower():
        pid = re.search(r"PID (\d+)", text)
        holder = f" (PID {pid.group(1)})" if pid else ""
        return HistoryError(f"History {history} is busy: another process{holder} has it open; "
                            f"{nothing} Run the command again when it has finished.", "history_busy")
    if "permission denied" in text.lower() or "read-only" in text.lower() or "read only" in text.lower():
        return _read_only(history, text)
    if _CORRUPT.search(text):
        return HistoryError(f"History {history} is unreadable, truncated or corrupt ({text[:200]}). "
                            f"{nothing} {RESTORE}", "history_corrupt")
    return HistoryError(f"History {history}: cannot {action}: {text}")


def _read_only(history: Path, detail: str) -> HistoryError:
    return HistoryError(
        f"History {history} cannot be written ({detail}). Nothing was published. Make the file "
        "and its folder writable (or copy the history to a writable place and point "
        "FLSDB_HISTORY at it), then run the command again.", "history_read_only")


def check_history(history: Path, writing: bool) -> str:
    """Look at the history before anything is read or written. Returns "absent" (no file yet),
    "empty" (a DuckDB file with no history table in it, or only empty ones) or "ready"; raises
    HistoryError with what to do for a folder, an empty (0-byte), truncated, corrupt, busy or
    (when `writing`) read-only history."""
    history = Path(history)
    nothing = "Nothing was published or changed." if writing else "Nothing was changed."
    if history.is_dir():
        raise HistoryError(f"History {history} is a folder, not a history file: point FLSDB_HISTORY "
                           f"at the history file (default history/flsdb_history.duckdb). {nothing}",
                           "configuration")
    if not history.exists():
        if writing:
            folder = history.parent
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            if not os.access(folder, os.W_OK):
                raise _read_only(history, f"its folder {folder} is not writable")
        return "absent"
    size = history.stat().st_size
    if size == 0:
        raise HistoryError(f"History {history} is an empty file (0 bytes): whatever it recorded "
                           f"is gone. {nothing} {RESTORE} If it never recorded a publication, "
                           "delete the empty file.", "history_corrupt")
    if writing and not (os.access(history, os.W_OK) and os.access(history.parent, os.W_OK)):
        raise _read_only(history, "read-only file or folder")
    try:
        con = duckdb.connect(str(history), read_only=not writing)
    except duckdb.Error as exc:
        raise _history_error(history, exc, "append" if writing else "read it") from exc
    try:
        wal = Path(f"{history}.wal")
        (blocks, block_size) = con.execute(
            "select total_blocks, block_size from pragma_database_size() "
            "where database_name = current_database()").fetchone()
        expected = DUCKDB_HEADER_BYTES + blocks * block_size
        if not wal.exists() and size < expected:
            raise HistoryError(f"History {history} is truncated: the file is {size:,} bytes, its "
                               f"own header says {expected:,}. {nothing} {RESTORE}", "history_corrupt")
        tables = {name for (name,) in con.execute(
            "select table_name from duckdb_tables() "
            "where database_name = current_database() and schema_name = 'main'").fetchall()}
        present = [t for t in HISTORY_TABLES if t in tables]
        if not present:
            return "empty"
        counts = {t: con.execute(f"select count(*) from {t}").fetchone()[0] for t in present}
        if not any(counts.values()):
            return "empty"
        missing = [t for t in HISTORY_TABLES if t not in tables]
        if missing:
            raise HistoryError(f"History {history} is incomplete: it has no table "
                               f"{', '.join(missing)} but holds {sum(counts.values()):,} rows. "
                               f"{nothing} {RESTORE}", "history_corrupt")
        return "ready"
    except duckdb.Error as exc:
        raise _history_error(history, exc, "append" if writing else "read it") from exc
    finally:
        con.close()


def _remove_stale_creations(history: Path) -> None:
    """Remove the temporary files of a creation whose process has died (killed part-way)."""
    for stale in history.parent.glob(f".{history.name}.new-*"):
        pid = stale.name.split(".new-", 1)[1].split("-", 1)[0]
        try:
            os.kill(int(pid), 0)
            continue                          # its creator is still running
        except (ValueError, ProcessLookupError):
            stale.unlink(missing_ok=True)
        except PermissionError:
            continue


def _create_history(history: Path) -> None:
    """Create a new history whole: its schema is made in a temporary file beside it, which is then
    linked into place, so that no kill leaves a history file without its tables."""
    history.parent.mkdir(parents=True, exist_ok=True)
    tmp = history.with_name(f".{history.name}.new-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute("begin transaction")
            for statement in _statements(named_queries()["create_history"]):
                con.execute(statement)
            con.execute("commit")
            con.execute("checkpoint")
        finally:
            con.close()
        fsync_path(tmp)
        try:
            os.link(tmp, history)        # fails if another process made it meanwhile: keep that one
        except FileExistsError:
            pass
        fsync_path(history.parent)
    finally:
        for leftover in (tmp, Path(f"{tmp}.wal")):
            leftover.unlink(missing_ok=True)


def _relation_exists(con: duckdb.DuckDBPyConnection, relation: str) -> bool:
    schema, table = relation.split(".")
    (found,) = con.execute(
        "select count(*) from information_schema.tables where table_catalog = 'warehouse' "
        "and table_schema = ? and table_name = ?", [schema, table]).fetchone()
    return bool(found)


def _fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """md5 of every row of a staged table, sorted, doubles rounded to FINGERPRINT_DECIMALS."""
    columns = con.execute(f"describe memory.main.{table}").fetchall()
    expressions = [f"round({name}, {FINGERPRINT_DECIMALS})" if kind in ("DOUBLE", "FLOAT")
                   else name for name, kind, *_ in columns]
    (digest,) = con.execute(
        f"select md5(coalesce(string_agg(row_text, chr(10) order by row_text), '')) "
        f"from (select cast(row({', '.join(expressions)}) as varchar) as row_text "
        f"from memory.main.{table})").fetchone()
    return digest


def _same_content(con: duckdb.DuckDBPyConnection, recorded: tuple, sources: dict[str, str | None],
                  rows: dict[str, int]) -> bool:
    """Whether the staged tables hold what publication `recorded` (its extracts row: id, then the
    source and row count of each table) holds: same sources, same row counts, and every row
    matched both ways, text exactly and numbers by the history's own `number_changed` (two builds
    of the same data differ in the last bit of the KPI 2/3 expected counts)."""
    publication_id, *facts = recorded
    for index, table in enumerate(EXTRACT_COLUMNS):
        recorded_source, recorded_rows = facts[2 * index], facts[2 * index + 1]
        if recorded_source != sources[table] or (sources[table] and recorded_rows != rows[table]):
            return False
    for table in EXTRACT_COLUMNS:
        if not sources[table]:
            continue
        columns = con.execute(f"describe memory.main.staged_{table}").fetchall()
        match = " and ".join(
            f"not number_changed(stored.{name}, staged.{name})" if kind in ("DOUBLE", "FLOAT")
            else f"stored.{name} is not distinct from staged.{name}" for name, kind, *_ in columns)
        stored = f"(select * from {table} where publication_id = {int(publication_id)}) as stored"
        staged = f"memory.main.staged_{table} as staged"
        (unmatched,) = con.execute(
            f"select (select count(*) from {staged} anti join {stored} on {match}) "
            f"+ (select count(*) from {stored} anti join {staged} on {match})").fetchone()
        if unmatched:
            return False
    return True


def record_published_extract(warehouse: Path, history: Path | None = None,
                             published_at: dt.datetime | None = None, *,
                             extract_date: dt.date | None = None, signoff: dict | None = None,
                             before_commit: Callable[[], None] | None = None) -> RecordedExtract:
    """Append the published results of `warehouse` (read-only) to `history`.

    Call as part of an approved publication (flsdb.publish.release). `published_at` is the
    publication time (default now); `extract_date` defaults to the warehouse's extract date (max
    extract_date of fct_episodes); `signoff` is the sign-off record the publication was made
    under (flsdb.quality.signoff), kept in `extracts`. `before_commit`, when given, is called
    once everything is staged and inserted, inside the history's transaction: an exception
    there leaves the history as it was. Returns what was appended, or `appended=False` when the
    same extract is already recorded.
    """
    history = Path(history or history_path())
    published_at = _utc(published_at or dt.datetime.now(dt.timezone.utc))
    warehouse = Path(warehouse)
    if not warehouse.exists():
        raise HistoryError(f"Warehouse {warehouse} not found: nothing to record in the history.")
    state = check_history(history, writing=True)
    if history.parent.is_dir():
        _remove_stale_creations(history)
    if state == "absent":
        _create_history(history)
    queries = named_queries()
    con = duckdb.connect(":memory:")
    try:
        try:
            con.execute(f"attach {_literal(warehouse)} as warehouse (read_only)")
        except duckdb.Error as exc:
            raise HistoryError(f"Warehouse {warehouse} cannot be read: {_one_line(exc)}") from exc
        if extract_date is None:
            (extract_date,) = con.execute(_query("extract_date")).fetchone()
            if extract_date is None:
                raise HistoryError(f"Warehouse {warehouse} has no extract date (no episodes): "
                                   "nothing to record.")
        # ---- stage every table in memory, before the history is opened
        sources: dict[str, str | None] = {}
        rows: dict[str, int] = {}
        for table, candidates in HISTORY_SOURCES.items():
            source = next((s for s in candidates if _relation_exists(con, s.relation)), None)
            if table == "kpi_result_history" and source is None:
                raise HistoryError(f"Warehouse {warehouse} has no marts.kpi_results: run `dbt build` "
                                   "first.")
            sources[table] = source.relation if source else None
            select = _query(source.query) if source else None
            if select is not None:
                con.execute(f"create table memory.main.staged_{table} as {select}")
                (rows[table],) = con.execute(
                    f"select count(*) from memory.main.staged_{table}").fetchone()
        digest = hashlib.sha256(str(extract_date).encode())
        for table in HISTORY_SOURCES:
            digest.update(f"|{table}={sources[table]}:".encode())
            if sources[table]:
                digest.update(_fingerprint(con, f"staged_{table}").encode())
        fingerprint = digest.hexdigest()
        (is_synthetic,) = con.execute(
            "select bool_and(is_synthetic_data) from memory.main.staged_kpi_result_history").fetchone()
        con.execute("detach warehouse")

        # ---- one transaction on the history: create if new, check, append
        try:
            con.execute(f"attach {_literal(history)} as history")
        except (duckdb.Error, OSError) as exc:
            raise _history_error(history, exc, "append") from exc
        try:
            con.execute("use history")
            con.execute("begin transaction")
            for statement in _statements(queries["create_history"]):
                con.execute(statement)
            same = con.execute(
                f"""
                select publication_id, {', '.join(c for pair in EXTRACT_COLUMNS.values() for c in pair)}
                from extracts
                where extract_date = ?
                order by published_at desc, publication_id desc
                limit 1
                """, [extract_date]).fetchone()
            if same is not None and _same_content(con, same, sources, rows):
                if before_commit is not None:
                    before_commit()
                con.execute("rollback")
                return RecordedExtract(history, same[0], extract_date, published_at, False,
                                       fingerprint, rows, sources)
            (publication_id,) = con.execute(
                "select coalesce(max(publication_id), 0) + 1 from extracts").fetchone()
            stamp = [publication_id, extract_date, published_at]
            for table in HISTORY_SOURCES:
                if sources[table]:
                    columns = [r[0] for r in con.execute(
                        f"describe memory.main.staged_{table}").fetchall()]
                    column_list = ", ".join(columns)
                    con.execute(
                        f"insert into {table} (publication_id, extract_date, published_at, "
                        f"{column_list}) select ?, ?, ?, {column_list} from memory.main.staged_{table}",
                        stamp)
            extract_columns = {"publication_id": publication_id, "extract_date": extract_date,
                               "published_at": published_at,
                               "recorded_at": _utc(dt.datetime.now(dt.timezone.utc)),
                               "warehouse_path": str(warehouse.resolve()),
                               "content_fingerprint": fingerprint,
                               "is_synthetic_data": is_synthetic}
            for table, (source_column, rows_column) in EXTRACT_COLUMNS.items():
                extract_columns[source_column] = sources[table]
                extract_columns[rows_column] = rows.get(table) if sources[table] else None
            extract_columns.update(_signoff_columns(signoff))
            con.execute(
                f"insert into extracts ({', '.join(extract_columns)}) "
                f"values ({', '.join('?' for _ in extract_columns)})", list(extract_columns.values()))
            if before_commit is not None:
                before_commit()
            con.execute("commit")
        except Exception as exc:
            try:
                con.execute("rollback")
            except duckdb.Error:
                pass
            if isinstance(exc, duckdb.Error):
                raise _history_error(history, exc, "append") from exc
            raise
        finally:
            con.execute("use memory")
            con.execute("detach history")
        return RecordedExtract(history, publication_id, extract_date, published_at, True,
                               fingerprint, rows, sources)
    finally:
        con.close()


def _signoff_columns(signoff: dict | None) -> dict:
    """The sign-off columns of `extracts` for one publication (nulls without a sign-off)."""
    signoff = signoff or {}
    columns = {column: signoff.get(key) for column, key in SIGNOFF_COLUMNS.items()}
    if columns["signed_off_at"]:
        columns["signed_off_at"] = _utc(dt.datetime.fromisoformat(columns["signed_off_at"]))
    for column in ("warnings_acknowledged", "checks_skipped"):
        if columns[column] is not None:
            columns[column] = [str(item) for item in columns[column]]
    for column, part in (("warehouse_sha256", "warehouse"), ("validation_sha256", "validation"),
                         ("report_sha256", "report")):
        columns[column] = (signoff.get(part) or {}).get("sha256")
    return columns


def forget_publication(history: Path, publication_id: int) -> None:
    """Remove a publication that was recorded but never went live (the published tier could not
    be swapped in after the history's commit): every row of that publication, in one transaction.
    The only delete the history ever does."""
    con = duckdb.connect(str(history))
    try:
        con.execute("begin transaction")
        for table in reversed(HISTORY_TABLES):
            con.execute(f"delete from {table} where publication_id = ?", [publication_id])
        con.execute("commit")
    except duckdb.Error as exc:
        raise _history_error(history, exc, "append") from exc
    finally:
        con.close()


def _read(history: Path | None, sql: str) -> list[dict]:
    """Rows of a query on the history; [] when there is no history yet or it holds nothing."""
    history = Path(history or history_path())
    if check_history(history, writing=False) != "ready":
        return []
    try:
        con = duckdb.connect(str(history), read_only=True)
    except duckdb.Error as exc:
        raise _history_error(history, exc, "read it") from exc
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    except duckdb.Error as exc:
        raise _history_error(history, exc, "read it") from exc
    finally:
        con.close()


def changes_since_last_extract(history: Path | None = None) -> list[dict]:
    """Every change between the latest publication and the one before it (the view of the same
    name in history.sql), results first; [] when the history holds fewer than two publications."""
    return _read(history, """
        select * from changes_since_last_extract
        order by
            case change_section when 'result' then 1 when 'outlier' then 2 else 3 end,
            change_kind, audit_year, kpi_number, geography_level, geography_code, breakdown,
            breakdown_value, source_file, line_number, field_name
    """)


def list_extracts(history: Path | None = None) -> list[dict]:
    """Every publication in the history, oldest first."""
    return _read(history, "select * from extracts order by extract_date, published_at, publication_id")

