"""`flsdb load`: land every submission file of the landing folder in the DuckDB ``raw`` schema.

The contract is ../shared/fls-db/dataset.md and the table layout is docs/raw-schema.md.

How a file is landed
--------------------
1. Every file under the landing folder is a candidate (any extension), except paths with a
   component starting with ``_`` or ``.``. Files are taken in sorted relative-path order.
2. The bytes are hashed (sha256). Content already in ``raw.load_files`` (under any path) is
   skipped: loading the same bytes twice changes nothing. A changed file at the same path has a
   new sha256 and is loaded as a new version.
3. File-level checks, in Python on the bytes (cheap, whole-file): binary content (NUL bytes,
   zip/PDF magic), empty file, encoding, header. Encoding: a UTF-8 BOM -> ``utf-8-sig``; valid
   UTF-8 -> ``utf-8``; otherwise, if the bytes decode as Windows-1252 -> ``windows-1252`` and the
   text is transcoded to UTF-8 before DuckDB sees it (so nothing is ever stored as mojibake);
   anything else (UTF-16, bytes undefined in Windows-1252) rejects the file. The header must be
   exactly the contract columns in any order (names are trimmed and compared case-insensitively;
   they are stored under the contract spelling): a missing, duplicated or unexpected column
   rejects the file, naming the columns.
4. DuckDB's own CSV reader parses the (UTF-8) text: ``read_csv`` with explicit columns (the
   header's order), every column VARCHAR, RFC 4180 quoting, ``strict_mode`` and
   ``store_rejects``. Structural faults (a truncated or over-long line, a broken quoted value)
   come from DuckDB's ``reject_errors`` table and become ``wrong_column_count`` rejects.
5. The contract checks run as one vectorised SQL statement over the file's rows. A row is
   rejected once, under the first rule it breaks, in this order (the order of dataset.md):
   wrong_column_count, missing_required_value, invalid_date, invalid_nhs_number,
   unknown_fls_code, fracture_after_extract, fracture_before_2016, birth_after_fracture,
   age_over_110, invalid_fracture_site.
6. Records, rejects and the ``raw.load_files`` row are written in one transaction per file: a
   crash mid-file leaves nothing of that file, and the next run loads it completely.

Line numbers
------------
``_line_number`` is the 1-based *physical* line of the file on which the row starts (the header
is line 1; a quoted value with an embedded newline makes a row span several lines; blank lines
are not rows but still count as lines). DuckDB's ``reject_errors.line`` is *not* that: it counts
records (a quoted embedded newline does not advance it), it can report the same line twice, and
DuckDB gives accepted rows no line number at all. So the loader works out the record layout of the
file itself (a vectorised numpy scan: a newline ends a record when an even number of double quotes
precede it), maps DuckDB's record numbers to physical lines, and gives the accepted rows, in
file order (DuckDB preserves insertion order), the line numbers of the records DuckDB did not
reject. If the scan and DuckDB disagree (unusual quoting, such as a stray quote inside an unquoted
value), the layout is recomputed with Python's csv module, which splits records the way DuckDB
does; if they still disagree the file is rejected rather than risk wrong line numbers. A quoted
value never closed before the end of the file (which DuckDB's strict mode drops silently) is
caught by the same bookkeeping and rejected as a broken row. In every case
rows read = rows accepted + rows rejected is asserted per file.

``raw_line`` is the physical line(s) of the row as read (after transcoding to UTF-8), CR removed.

Interpretations
---------------
- Extract date: a file's extract date is the date part of the latest *parseable* ``Last Updated``
  among its structurally sound rows (``raw.load_files.file_extract_date``). A row whose index
  fracture date is after it is rejected as ``fracture_after_extract``.
- Dates must be ISO ``YYYY-MM-DD`` or UK ``DD/MM/YYYY`` (two-digit day and month, four-digit year
  from 1000); ``Last Updated`` must be ``YYYY-MM-DDTHH:MM:SS`` or ``YYYY-MM-DD HH:MM:SS``. Values
  are trimmed before parsing. Only the required date columns (Last Updated, 1.02, 1.09) are
  checked here; optional dates are left to staging, which warns.
- Age at the fracture is in completed years; over 110 means 111 or more.
- FLS codes are matched against ``fls_code`` of the registry after trimming, case-sensitively.
- ``1.11 SiteFirstFrac`` is matched after trimming, case-insensitively.
- Empty cells are stored as NULL; other values are stored exactly as sent (untrimmed).
- Reject reasons name the offending value, except for identifiers (NHS number, date of birth),
  whose values stay only in ``raw_line`` so that a report showing reasons cannot leak them.
- Rows read counts data records after the header; blank lines are not records. A rejected file
  records 0 read, 0 accepted, 0 rejected (nothing in it was read as rows).
- ``loaded_at`` is UTC.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import signal
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import click
import duckdb
import numpy as np
import pyarrow as pa
from tqdm import tqdm

from flsdb import contract, paths

CONTRACT_COLUMNS: list[str] = list(contract.COLUMNS)
FRACTURE = "1.09 Date Index Frac Diagnosed"
BIRTH = "1.02 Date of Birth"
LAST_UPDATED = "Last Updated"
NHS = "1.01 NHS Number"
FLS = "FLS Code"
SITE = "1.11 SiteFirstFrac"
REQUIRED_DATES = (LAST_UPDATED, BIRTH, FRACTURE)

REJECT_CODES = (
    "wrong_column_count", "missing_required_value", "invalid_date", "invalid_nhs_number",
    "unknown_fls_code", "fracture_after_extract", "fracture_before_2016",
    "birth_after_fracture", "age_over_110", "invalid_fracture_site",
)

# Test hook: called (with the connection and source file) after a file's records are inserted
# and before its transaction commits. Used by the tests to simulate a crash mid-file.
_after_records_hook = None
_CRASH_ENV = "FLSDB_LOAD_TEST_CRASH_AFTER_RECORDS"


class LoadError(click.ClickException):
    """A problem that stops the whole load (landing missing, warehouse locked, no registry)."""


class WarehouseLockedError(LoadError):
    pass


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

@dataclass
class FileOutcome:
    source_file: str
    file_sha256: str
    status: str  # loaded | rejected | unchanged
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    reason: str | None = None
    load_order: int | None = None
    previously_rejected: bool = False


@dataclass
class LoadResult:
    warehouse: Path
    landing: Path
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def files_loaded(self) -> int:
        return sum(f.status == "loaded" for f in self.files)

    @property
    def files_rejected(self) -> int:
        """Files in the landing folder whose content is rejected (in this run or an earlier one)."""
        return sum(f.status == "rejected" or f.previously_rejected for f in self.files)

    @property
    def files_unchanged(self) -> int:
        return sum(f.status == "unchanged" for f in self.files)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_accepted(self) -> int:
        return sum(f.rows_accepted for f in self.files)

    @property
    def rows_rejected(self) -> int:
        return sum(f.rows_rejected for f in self.files)

    def summary_table(self) -> str:
        headers = ("file", "read", "accepted", "rejected", "status / reason")
        rows = []
        for f in self.files:
            if f.status == "loaded":
                status = "loaded"
            elif f.status == "rejected":
                status = f"REJECTED: {f.reason}"
            else:
                status = f"unchanged ({f.reason})" if f.reason else "unchanged"
            counts = (str(f.rows_read), str(f.rows_accepted), str(f.rows_rejected))
            if f.status != "loaded":
                counts = ("-", "-", "-")
            rows.append((f.source_file, *counts, status))
        rows.append(("TOTAL (this run)", str(self.rows_read), str(self.rows_accepted),
                     str(self.rows_rejected),
                     f"{self.files_loaded} loaded, {sum(f.status == 'rejected' for f in self.files)}"
                     f" rejected, {self.files_unchanged} unchanged in {self.seconds:.1f}s"))
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(4)]
        lines = []
        for i, r in enumerate([headers, *rows]):
            if i == 1 or i == len(rows):
                lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 15)
            lines.append(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  "
                         f"{r[3]:>{widths[3]}}  {r[4]}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary_table()


# --------------------------------------------------------------------------------------------
# DDL
# --------------------------------------------------------------------------------------------

def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


DDL = [
    "CREATE SCHEMA IF NOT EXISTS raw",
    """CREATE TABLE IF NOT EXISTS raw.load_files (
        file_sha256 VARCHAR PRIMARY KEY,
        source_file VARCHAR NOT NULL,
        file_size_bytes BIGINT,
        detected_encoding VARCHAR,
        status VARCHAR NOT NULL,
        rejection_reason VARCHAR,
        rows_read BIGINT NOT NULL,
        rows_accepted BIGINT NOT NULL,
        rows_rejected BIGINT NOT NULL,
        file_extract_date DATE,
        load_order BIGINT NOT NULL,
        loaded_at TIMESTAMP NOT NULL,
        CHECK (rows_read = rows_accepted + rows_rejected)
    )""",
    "CREATE TABLE IF NOT EXISTS raw.submission_records ("
    + ", ".join(f"{_q(c)} VARCHAR" for c in CONTRACT_COLUMNS)
    + ", _file_sha256 VARCHAR, _source_file VARCHAR, _line_number BIGINT, _load_order BIGINT,"
      " _loaded_at TIMESTAMP)",
    """CREATE TABLE IF NOT EXISTS raw.submission_rejects (
        _file_sha256 VARCHAR, _source_file VARCHAR, _line_number BIGINT, _load_order BIGINT,
        _loaded_at TIMESTAMP, reject_code VARCHAR, column_name VARCHAR, reject_reason VARCHAR,
        raw_line VARCHAR, fls_code VARCHAR, record_id VARCHAR
    )""",
    """CREATE OR REPLACE VIEW raw.load_file_rejects AS
        SELECT source_file, file_sha256, rejection_reason, file_size_bytes, detected_encoding,
               load_order, loaded_at
        FROM raw.load_files WHERE status = 'rejected'""",
]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in DDL:
        con.execute(stmt)


# --------------------------------------------------------------------------------------------
# Discovery, bytes, encoding, header
# --------------------------------------------------------------------------------------------

def discover(landing: Path) -> list[tuple[str, Path]]:
    """(relative posix path, absolute path) of every candidate submission, sorted."""
    out = []
    for p in landing.rglob("*"):
        rel = p.relative_to(landing)
        if any(part.startswith(("_", ".")) for part in rel.parts):
            continue
        if p.is_file():
            out.append((rel.as_posix(), p))
    return sorted(out)


class FileRejected(Exception):
    """The whole file is refused; the message is the plain-English reason."""


_MAGIC = [
    (b"PK\x03\x04", "a zip archive or Excel workbook (.xlsx)"),
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0", "an old-style Office document (.xls/.doc)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
]


def decode(data: bytes) -> tuple[str, str]:
    """Return (text, detected_encoding) or raise FileRejected."""
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise FileRejected(f"Not a CSV file: the content is {what}, not comma-separated text.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRejected("Unsupported encoding: the file is UTF-16; export it as UTF-8 "
                           "(or Windows-1252) CSV.")
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise FileRejected("The file is empty." if not data else
                           "The file is empty (it contains only blank lines or spaces).")
    if b"\x00" in data:
        raise FileRejected("Not a CSV file: it contains binary data (NUL bytes), not text.")
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as e:
            raise FileRejected(
                f"Unreadable encoding: the file starts with a UTF-8 byte-order mark but byte "
                f"0x{data[3 + e.start]:02X} at offset {3 + e.start} is not valid UTF-8.") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf_err:
        try:
            return data.decode("cp1252"), "windows-1252"
        except UnicodeDecodeError as e:
            raise FileRejected(
                f"Unreadable encoding: the file is neither UTF-8 (byte 0x{data[utf_err.start]:02X}"
                f" at offset {utf_err.start}) nor Windows-1252 (byte 0x{data[e.start]:02X} at "
                f"offset {e.start} is undefined there).") from None


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


_CONTRACT_BY_NORM = {_norm(c): c for c in CONTRACT_COLUMNS}


def _names(names) -> str:
    names = list(names)
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def check_header(text: str) -> list[str]:
    """The contract column names in the file's header order, or raise FileRejected."""
    try:
        header = next(csv.reader(io.StringIO(text, newline="")))
    except (StopIteration, csv.Error):
        header = []
    stripped = [h.strip() for h in header]
    matched = [_CONTRACT_BY_NORM.get(_norm(h)) for h in stripped]
    if not any(matched):
        first = text.split("\n", 1)[0].strip()[:80]
        raise FileRejected(
            "No header row: the first line does not contain the FLS-DB column names "
            f"(it reads '{first}'), so this is not a FLS-DB CSV export.")
    problems = []
    seen: dict[str, int] = {}
    for m in matched:
        if m:
            seen[m] = seen.get(m, 0) + 1
    dups = [c for c, n in seen.items() if n > 1]
    missing_req = [c for c in contract.REQUIRED_COLUMNS if c not in seen]
    missing_opt = [c for c in CONTRACT_COLUMNS if c not in seen and c not in contract.REQUIRED_COLUMNS]
    unknown = [h for h, m in zip(stripped, matched) if not m]
    if missing_req:
        problems.append(f"missing required column{'s' if len(missing_req) > 1 else ''} "
                        f"{_names(missing_req)}")
    if dups:
        problems.append(f"duplicate header name{'s' if len(dups) > 1 else ''} {_names(dups)}")
    if unknown:
        problems.append(f"unexpected column{'s' if len(unknown) > 1 else ''} {_names(unknown)}")
    if missing_opt:
        problems.append(f"missing column{'s' if len(missing_opt) > 1 else ''} "
                        f"{_names(missing_opt)}")
    if problems:
        raise FileRejected("Bad header: " + "; ".join(problems)
                           + ". The header must be exactly the FLS-DB contract columns, in any order.")
    return matched  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------
# Record layout (physical line numbers)
# --------------------------------------------------------------------------------------------

@dataclass
class Layout:
    """Per record (index 0 is the header): physical start/end line and whether it is blank.

    Record i is DuckDB's "line" i + 1.
    """
    start_line: np.ndarray
    end_line: np.ndarray
    blank: np.ndarray
    unterminated_last: bool  # the last record opens a quoted value that is never closed


def layout_numpy(data: bytes) -> Layout:
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    quotes = np.flatnonzero(arr == 34)
    even = (np.searchsorted(quotes, nl) % 2) == 0
    term_rank = np.flatnonzero(even)  # rank of each terminating newline among all newlines
    term_pos = nl[term_rank]
    starts = np.concatenate(([0], term_pos + 1))
    ends = np.concatenate((term_pos, [len(arr)]))
    start_line = np.concatenate(([1], term_rank + 2))
    end_line = np.concatenate((term_rank + 1, [len(nl) + 1]))
    if starts[-1] >= len(arr):  # file ends with a newline: no record after it
        starts, ends, start_line, end_line = starts[:-1], ends[:-1], start_line[:-1], end_line[:-1]
    length = ends - starts
    cr_only = np.zeros(len(starts), dtype=bool)
    one = length == 1
    cr_only[one] = arr[starts[one]] == 13
    blank = (length == 0) | cr_only
    return Layout(start_line, end_line, blank, unterminated_last=len(quotes) % 2 == 1)


def layout_csv(text: str) -> Layout:
    """Slow path: Python's csv module splits records the way DuckDB does on odd quoting."""
    starts, ends, blank = [], [], []
    reader = csv.reader(io.StringIO(text, newline=""))
    prev = 0
    unterminated = False
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error:  # unexpected end of data inside a quoted value
            unterminated = True
            starts.append(prev + 1)
            ends.append(text.count("\n") + 1)
            blank.append(False)
            break
        starts.append(prev + 1)
        ends.append(max(reader.line_num, prev + 1))
        blank.append(rec == [])
        prev = reader.line_num
    return Layout(np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64),
                  np.array(blank, dtype=bool), unterminated)


# --------------------------------------------------------------------------------------------
# The contract checks (vectorised SQL)
# --------------------------------------------------------------------------------------------

ISO_DATE = r"[1-9]\d{3}-\d{2}-\d{2}"
UK_DATE = r"\d{2}/\d{2}/[1-9]\d{3}"
ISO_TS = r"[1-9]\d{3}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}"

MACROS = [
    f"""CREATE OR REPLACE TEMP MACRO _parse_date(v) AS CASE
        WHEN regexp_full_match(trim(v), '{ISO_DATE}') THEN try_strptime(trim(v), '%Y-%m-%d')::DATE
        WHEN regexp_full_match(trim(v), '{UK_DATE}') THEN try_strptime(trim(v), '%d/%m/%Y')::DATE
        END""",
    f"""CREATE OR REPLACE TEMP MACRO _parse_ts(v) AS CASE
        WHEN regexp_full_match(trim(v), '{ISO_TS}')
        THEN try_strptime(replace(trim(v), 'T', ' '), '%Y-%m-%d %H:%M:%S') END""",
    "CREATE OR REPLACE TEMP MACRO _blank(v) AS (v IS NULL OR trim(v) = '')",
    "CREATE OR REPLACE TEMP MACRO _show(v) AS '''' || replace(v, '''', '''''') || ''''",
]

IDENTIFIER_NOTE = "(the value is not repeated here because it is an identifier; see raw_line)"


def _check_sql() -> tuple[str, str, str, str]:
    """SQL for the rule a row breaks first (_rule: 1-based index or NULL), and lists/CASE giving
    the reject code, column and reason of a rule."""
    q = _q

    def msg(*parts: str) -> str:
        # parts alternate: literal text, SQL expression, literal text, ...
        return " || ".join(_lit(p) if i % 2 == 0 else p for i, p in enumerate(parts))

    rules: list[tuple[str, str, str, str]] = []  # (condition, code, column, reason expression)
    for c in contract.REQUIRED_COLUMNS:
        rules.append((f"_blank({q(c)})", "missing_required_value", c,
                      msg(f"Required value '{c}' is missing (blank).")))
    date_fmt = "a date YYYY-MM-DD or DD/MM/YYYY"
    rules.append(("_lu IS NULL", "invalid_date", LAST_UPDATED,
                  msg(f"'{LAST_UPDATED}' value ", f"_show({q(LAST_UPDATED)})",
                      " is not a valid existing timestamp, expected YYYY-MM-DDTHH:MM:SS or "
                      "YYYY-MM-DD HH:MM:SS.")))
    rules.append(("_dob IS NULL", "invalid_date", BIRTH,
                  msg(f"'{BIRTH}' is not a valid existing date, expected {date_fmt} "
                      f"{IDENTIFIER_NOTE}.")))
    rules.append(("_frac IS NULL", "invalid_date", FRACTURE,
                  msg(f"'{FRACTURE}' value ", f"_show({q(FRACTURE)})",
                      f" is not a valid existing date, expected {date_fmt}.")))
    # dataset.md: "a date or timestamp can't be parsed, or doesn't exist" rejects the record,
    # whichever date column it is in.
    for c, kind in contract.COLUMNS.items():
        if kind == "date" and c not in (BIRTH, FRACTURE):
            rules.append((f"NOT _blank({q(c)}) AND _parse_date({q(c)}) IS NULL", "invalid_date", c,
                          msg(f"'{c}' value ", f"_show({q(c)})",
                              f" is not a valid existing date, expected {date_fmt}.")))
    rules.append(("NOT _nhs_ok", "invalid_nhs_number", NHS,
                  msg(f"'{NHS}' is not a valid NHS number: it must be 10 digits (spaces or "
                      f"hyphens allowed) with a correct modulus-11 check digit "
                      f"{IDENTIFIER_NOTE}.")))
    rules.append((f"upper(trim({q(FLS)})) NOT IN (SELECT upper(fls_code) FROM _registry)",
                  "unknown_fls_code", FLS,
                  msg("FLS code ", f"_show({q(FLS)})", " is not in the FLS registry.")))
    rules.append(("_frac > _extract", "fracture_after_extract", FRACTURE,
                  msg("Index fracture date ", f"_show({q(FRACTURE)})",
                      " is after the file's extract date ", "strftime(_extract, '%Y-%m-%d')",
                      " (the date of the latest Last Updated in the file).")))
    rules.append((f"_frac < DATE '{contract.EARLIEST_FRACTURE_DATE}'", "fracture_before_2016",
                  FRACTURE,
                  msg("Index fracture date ", f"_show({q(FRACTURE)})",
                      f" is before {contract.EARLIEST_FRACTURE_DATE}, the start of the audit.")))
    rules.append(("_dob > _frac", "birth_after_fracture", BIRTH,
                  msg("Date of birth is after the index fracture date ",
                      f"_show({q(FRACTURE)})", f" {IDENTIFIER_NOTE}.")))
    rules.append((f"_age > {contract.MAX_AGE_YEARS}", "age_over_110", BIRTH,
                  msg("Age at the index fracture (", f"_show({q(FRACTURE)})", ") is ",
                      "_age::VARCHAR", f" years, over the maximum of {contract.MAX_AGE_YEARS} "
                      f"{IDENTIFIER_NOTE}.")))
    site_list = ", ".join(_lit(s.lower()) for s in contract.SITES)
    rules.append((f"lower(trim({q(SITE)})) NOT IN ({site_list})", "invalid_fracture_site", SITE,
                  msg(f"'{SITE}' value ", f"_show({q(SITE)})",
                      f" is not one of {', '.join(contract.SITES)}.")))
    assert [r[1] for r in rules][-1] == REJECT_CODES[-1]

    rule = "CASE " + " ".join(f"WHEN {r[0]} THEN {i}" for i, r in enumerate(rules, 1)) + " END"
    codes = "[" + ", ".join(_lit(r[1]) for r in rules) + "]"
    columns = "[" + ", ".join(_lit(r[2]) for r in rules) + "]"
    reason = ("CASE _rule " + " ".join(f"WHEN {i} THEN {r[3]}" for i, r in enumerate(rules, 1))
              + " END")
    return rule, codes, columns, reason


_RULE_SQL, _CODES_SQL, _COLUMNS_SQL, _REASON_SQL = _check_sql()


def _final_sql() -> str:
    """Check every staged row of the batch at once (one vectorised statement).

    Needs _stage (the rows) and _linemap (the physical lines and file extract date of each staged
    row, in the same order:
    a POSITIONAL JOIN, which also keeps _final in file and line order so that the per-file
    inserts read only their own row groups)."""
    q = _q
    return f"""
    CREATE OR REPLACE TEMP TABLE _final AS
    SELECT *, {_RULE_SQL} AS _rule FROM (
        SELECT *, date_diff('year', _dob, _frac)
                  - CASE WHEN strftime(_frac, '%m%d') < strftime(_dob, '%m%d') THEN 1 ELSE 0 END
                  AS _age
        FROM (
            SELECT *,
                   _parse_ts({q(LAST_UPDATED)}) AS _lu, _parse_date({q(BIRTH)}) AS _dob,
                   _parse_date({q(FRACTURE)}) AS _frac,
                   coalesce(_nhs_valid(regexp_replace({q(NHS)}, '[ \\-]', '', 'g')), false)
                     AS _nhs_ok
            FROM _stage POSITIONAL JOIN _linemap
        )
    )
    """


EXTRACTS_SQL = f"""
    SELECT _fid, max(_parse_ts({_q(LAST_UPDATED)}))::DATE AS _extract FROM _stage GROUP BY _fid
"""


REJECTS_SQL = f"""
    SELECT _fid, _line_number, _end_line, {_CODES_SQL}[_rule] AS _code,
           {_COLUMNS_SQL}[_rule] AS _column, {_REASON_SQL} AS _reason, {_q(FLS)}, {_q('Record ID')}
    FROM _final WHERE _rule IS NOT NULL AND _line_number > 0
"""


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------

def _connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(warehouse))
    except duckdb.IOException as e:
        msg = str(e)
        if "lock" in msg.lower():
            m = re.search(r"PID (\d+)", msg)
            who = f" (process {m.group(1)})" if m else ""
            raise WarehouseLockedError(
                f"The warehouse {warehouse} is in use by another process{who}: DuckDB allows one "
                "writer at a time. Close the other connection (dbt, a notebook, a BI tool or "
                "another `flsdb load`) and try again.") from None
        raise


def _nhs_valid(value: str) -> bool:
    return contract.nhs_number_is_valid(value)


def _read_registry(con: duckdb.DuckDBPyConnection, registry: Path) -> None:
    if not registry.exists():
        raise LoadError(f"FLS registry not found at {registry}: it is needed to check FLS codes "
                        "(run `flsdb generate`, or pass the registry path).")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _registry AS SELECT DISTINCT trim(fls_code) AS fls_code "
        f"FROM read_csv({_lit(str(registry))}, header=true, all_varchar=true) "
        f"WHERE fls_code IS NOT NULL")


@dataclass
class _Pending:
    """A file examined and staged, waiting for its batch to be checked and committed."""
    rel: str
    sha: str
    size: int
    encoding: str | None
    reason: str | None = None          # set when the whole file is rejected
    fid: int | None = None
    n_read: int = 0
    n_staged: int = 0                  # structurally sound rows, staged for the contract checks
    struct_rejects: list = field(default_factory=list)
    text: str | None = None


REJECT_COLUMNS = ["_line_number", "reject_code", "column_name", "reject_reason", "raw_line",
                  "fls_code", "record_id"]


def _raw_lines(text: str) -> list[str]:
    return [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]


class _Loader:
    """Stages files one by one (DuckDB read_csv into a temp table), checks a whole batch of files
    with one SQL statement, then commits each file in its own transaction, in order."""

    BATCH_ROWS = 250_000

    def __init__(self, con: duckdb.DuckDBPyConnection, tmpdir: Path):
        self.con = con
        self.tmpdir = tmpdir
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET enable_progress_bar = false")
        # Commit each file to the WAL only; checkpoint once at the end (see load_landing).
        con.execute("SET checkpoint_threshold = '16GB'")
        for m in MACROS:
            con.execute(m)
        con.create_function("_nhs_valid", _nhs_valid, ["VARCHAR"], "BOOLEAN",
                            side_effects=False)
        self.next_order = con.execute(
            "SELECT coalesce(max(load_order), 0) + 1 FROM raw.load_files").fetchone()[0]
        self.pending: list[_Pending] = []
        self.outcomes: list[FileOutcome] = []
        self.staged_rows = 0
        self.linemaps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.next_fid = 0
        self._new_stage()

    def _new_stage(self) -> None:
        self.con.execute("CREATE OR REPLACE TEMP TABLE _stage (_fid INTEGER, "
                         + ", ".join(f"{_q(c)} VARCHAR" for c in CONTRACT_COLUMNS) + ")")
        self.staged_rows = 0
        self.linemaps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    # -- staging -------------------------------------------------------------------------------
    def add(self, rel: str, data: bytes, sha: str) -> None:
        p = _Pending(rel, sha, len(data), None)
        try:
            text, p.encoding = decode(data)
            header = check_header(text)
            self._stage(p, text, header)
        except FileRejected as e:
            p.reason = str(e)
            p.n_read = p.n_staged = 0
            p.struct_rejects = []
            p.text = None
        self.pending.append(p)
        if self.staged_rows >= self.BATCH_ROWS:
            self.flush()

    def _stage(self, p: _Pending, text: str, header: list[str]) -> None:
        con = self.con
        utf8 = text.encode("utf-8")
        tmp = self.tmpdir / "current.csv"
        tmp.write_bytes(utf8)
        fid = p.fid = self.next_fid
        self.next_fid += 1
        columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in header) + "}"
        con.execute("DROP TABLE IF EXISTS _rej_errors; DROP TABLE IF EXISTS _rej_scans")
        try:
            con.execute(
                f"INSERT INTO _stage SELECT {fid} AS _fid, "
                + ", ".join(_q(c) for c in CONTRACT_COLUMNS)
                + f" FROM read_csv({_lit(str(tmp))}, auto_detect=false, header=true, delim=',', "
                  f"quote='\"', escape='\"', strict_mode=true, columns={columns}, "
                  f"store_rejects=true, rejects_table='_rej_errors', rejects_scan='_rej_scans', "
                  f"max_line_size=10000000)")
        except duckdb.Error as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise FileRejected(f"Not readable as CSV: {first}") from None
        n_rows = con.execute("SELECT count(*) FROM _stage").fetchone()[0] - self.staged_rows
        self.staged_rows += n_rows
        errs = con.execute(
            "SELECT line, any_value(error_type ORDER BY byte_position)::VARCHAR "
            "FROM _rej_errors GROUP BY line ORDER BY line").fetchall()
        err_lines = {int(r[0]): r[1] for r in errs}

        layout = acc_idx = None
        for make in (lambda: layout_numpy(utf8), lambda: layout_csv(text)):
            lay = make()
            idx = self._match(lay, err_lines, n_rows)
            if idx is not None:
                layout, acc_idx = lay, idx
                break
        if layout is None:
            dead = np.full(n_rows, -1, dtype=np.int64)  # staged but never used
            self.linemaps.append((dead, dead, np.full(n_rows, fid, dtype=np.int64)))
            raise FileRejected(
                "Not readable as CSV: its quoting is malformed (an unbalanced double quote), so "
                "its rows cannot be told apart reliably. Check for a stray '\"' in the data.")
        self.linemaps.append((layout.start_line[acc_idx].astype(np.int64),
                              layout.end_line[acc_idx].astype(np.int64),
                              np.full(n_rows, fid, dtype=np.int64)))
        p.n_staged = n_rows
        p.n_read = int((~layout.blank[1:]).sum())
        p.text = text

        # Structural rejects: DuckDB's record line L is our record index L - 1.
        struct_idx = sorted(i - 1 for i in err_lines)
        last = len(layout.blank) - 1
        if layout.unterminated_last and last not in struct_idx:
            struct_idx.append(last)
        if not struct_idx:
            return
        lines = _raw_lines(text)
        n_cols = len(header)
        fls_i, rid_i = header.index(FLS), header.index("Record ID")
        for i in struct_idx:
            s, e = int(layout.start_line[i]), int(layout.end_line[i])
            raw_line = "\n".join(lines[s - 1:e])
            err = err_lines.get(i + 1)
            try:
                fields = next(csv.reader(io.StringIO(raw_line, newline="")), [])
            except csv.Error:
                fields = None
            if err == "UNQUOTED VALUE" or fields is None or (
                    i == last and layout.unterminated_last):
                reason = ("The row could not be split into columns: a quoted value is not "
                          "closed properly (a stray or unbalanced double quote).")
            elif len(fields) < n_cols:
                reason = (f"The row has {len(fields)} values but the header has {n_cols} "
                          "columns (a truncated line).")
            elif len(fields) > n_cols:
                reason = (f"The row has {len(fields)} values but the header has {n_cols} "
                          "columns (an over-long line).")
            else:
                reason = f"The row could not be read as {n_cols} columns ({err})."
            fls = fields[fls_i] if fields and len(fields) > fls_i else None
            rid = fields[rid_i] if fields and len(fields) > rid_i else None
            p.struct_rejects.append((s, "wrong_column_count", None, reason, raw_line, fls, rid))

    @staticmethod
    def _match(lay: Layout, err_lines: dict[int, str], n_rows: int):
        """Indexes of the layout records DuckDB accepted, in order; None if they disagree."""
        n = len(lay.blank)
        if n == 0:
            return None
        data_idx = np.arange(1, n)[~lay.blank[1:]]
        rejected = np.array(sorted(i - 1 for i in err_lines), dtype=np.int64)
        if len(rejected) and not np.isin(rejected, data_idx).all():
            return None
        acc = data_idx[~np.isin(data_idx, rejected)]
        if lay.unterminated_last and len(acc) and acc[-1] == n - 1:
            acc = acc[:-1]  # DuckDB drops a never-closed quoted value at the end of the file
        if len(acc) != n_rows:
            return None
        return acc

    # -- checking and committing ---------------------------------------------------------------
    def flush(self) -> None:
        if not self.pending:
            return
        con = self.con
        staged = [p for p in self.pending if p.reason is None]
        contract_rejects: dict[int, list] = {}
        extracts: dict[int, object] = {}
        if staged:
            extracts = dict(con.execute(EXTRACTS_SQL).fetchall())
            fids = np.concatenate([m[2] for m in self.linemaps])
            by_fid = np.array([extracts.get(i) or np.datetime64("NaT")
                               for i in range(int(fids.max()) + 2 if len(fids) else 1)],
                              dtype="datetime64[D]")
            linemap = pa.table({
                "_line_number": np.concatenate([m[0] for m in self.linemaps]),
                "_end_line": np.concatenate([m[1] for m in self.linemaps]),
                "_extract": pa.array(by_fid[fids], type=pa.date32(), from_pandas=True),
            })
            if len(linemap) != self.staged_rows:
                raise AssertionError("line map and staged rows differ in length")
            con.register("_linemap", linemap)
            try:
                con.execute(_final_sql())
            finally:
                con.unregister("_linemap")
            for fid, *rest in con.execute(REJECTS_SQL).fetchall():
                contract_rejects.setdefault(fid, []).append(rest)
        for p in self.pending:
            if p.reason is not None:
                self._commit_rejected_file(p)
            else:
                self._commit_file(p, contract_rejects.get(p.fid, []), extracts.get(p.fid))
        self.pending = []
        self._new_stage()
        con.execute("DROP TABLE IF EXISTS _final")

    def _commit_rejected_file(self, p: _Pending) -> None:
        order = self.next_order
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        self.con.execute(
            "INSERT INTO raw.load_files VALUES (?, ?, ?, ?, 'rejected', ?, 0, 0, 0, NULL, ?, ?)",
            [p.sha, p.rel, p.size, p.encoding, p.reason, order, loaded_at])
        self.next_order += 1
        self.outcomes.append(FileOutcome(p.rel, p.sha, "rejected", reason=p.reason,
                                         load_order=order))

    def _commit_file(self, p: _Pending, contract_rej: list, extract) -> None:
        con = self.con
        order = self.next_order
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        rows = list(p.struct_rejects)
        if contract_rej:
            lines = _raw_lines(p.text)
            for s, e, code, col, reason, fls, rid in contract_rej:
                rows.append((s, code, col, reason, "\n".join(lines[s - 1:e]), fls, rid))
        rows.sort(key=lambda r: r[0])
        n_rej = len(rows)
        n_acc = p.n_staged - len(contract_rej)
        if p.n_read != n_acc + n_rej:
            raise AssertionError(f"{p.rel}: rows read {p.n_read} != accepted {n_acc} + "
                                 f"rejected {n_rej}")
        con.execute("BEGIN TRANSACTION")
        try:
            lineage = (f"{_lit(p.sha)} AS _file_sha256, {_lit(p.rel)} AS _source_file, "
                       f"_line_number, {order} AS _load_order, "
                       f"TIMESTAMP '{loaded_at.isoformat(sep=' ')}' AS _loaded_at")
            cols = ", ".join(_q(c) for c in CONTRACT_COLUMNS)
            con.execute(f"INSERT INTO raw.submission_records SELECT {cols}, {lineage} "
                        f"FROM _final WHERE _fid = {p.fid} AND _rule IS NULL "
                        f"ORDER BY _line_number")
            if _after_records_hook is not None:
                _after_records_hook(con, p.rel)
            if os.environ.get(_CRASH_ENV) == p.rel:
                os.kill(os.getpid(), signal.SIGKILL)
            if rows:
                cols_ = list(zip(*rows))
                rej = pa.table({name: pa.array(vals, type=pa.int64() if i == 0 else pa.string())
                                for i, (name, vals) in enumerate(zip(REJECT_COLUMNS, cols_))})
                con.register("_rej_df", rej)
                try:
                    con.execute(
                        "INSERT INTO raw.submission_rejects SELECT ? AS _file_sha256, "
                        "? AS _source_file, _line_number, ? AS _load_order, "
                        "?::TIMESTAMP AS _loaded_at, reject_code, column_name, reject_reason, "
                        "raw_line, fls_code, record_id FROM _rej_df ORDER BY _line_number",
                        [p.sha, p.rel, order, loaded_at])
                finally:
                    con.unregister("_rej_df")
            con.execute(
                "INSERT INTO raw.load_files VALUES (?, ?, ?, ?, 'loaded', NULL, ?, ?, ?, ?, ?, ?)",
                [p.sha, p.rel, p.size, p.encoding, p.n_read, n_acc, n_rej, extract, order,
                 loaded_at])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self.next_order += 1
        self.outcomes.append(FileOutcome(p.rel, p.sha, "loaded", p.n_read, n_acc, n_rej,
                                         load_order=order))
        p.text = None


def load_landing(landing_dir: Path | str, warehouse_path: Path | str,
                 registry_path: Path | str | None = None, progress: bool | None = None
                 ) -> LoadResult:
    """Load every new submission file of ``landing_dir`` into ``warehouse_path``'s raw schema.

    ``registry_path`` defaults to seeds/fls_registry.csv; ``progress`` None shows the tqdm bar
    only on a terminal.
    """
    t0 = time.perf_counter()
    landing = Path(landing_dir)
    warehouse = Path(warehouse_path)
    registry = Path(registry_path) if registry_path else paths.seeds_dir() / "fls_registry.csv"
    if not landing.is_dir():
        raise LoadError(f"Landing folder {landing} does not exist.")
    files = discover(landing)
    result = LoadResult(warehouse=warehouse, landing=landing)
    con = _connect(warehouse)
    try:
        ensure_schema(con)
        _read_registry(con, registry)
        known = {sha: (src, status) for sha, src, status in con.execute(
            "SELECT file_sha256, source_file, status FROM raw.load_files").fetchall()}
        with tempfile.TemporaryDirectory(prefix="flsdb-load-") as tmp:
            loader = _Loader(con, Path(tmp))
            order: list[tuple[str, FileOutcome | None]] = []
            disable = None if progress is None else not progress
            for rel, path in tqdm(files, desc="Loading", unit="file", disable=disable):
                data = path.read_bytes()
                sha = hashlib.sha256(data).hexdigest()
                if sha in known:
                    src, status = known[sha]
                    note = "already loaded" if src == rel else f"same content as {src}"
                    if status == "rejected":
                        note += ", rejected"
                    order.append((rel, FileOutcome(rel, sha, "unchanged", reason=note,
                                                   previously_rejected=status == "rejected")))
                    continue
                known[sha] = (rel, "pending")
                loader.add(rel, data, sha)
                order.append((rel, None))
            loader.flush()
            con.execute("CHECKPOINT")
            done = iter(loader.outcomes)
            for rel, outcome in order:
                result.files.append(outcome if outcome is not None else next(done))
    finally:
        con.close()
    result.seconds = time.perf_counter() - t0
    return result
