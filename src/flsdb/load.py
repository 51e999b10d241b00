"""`flsdb load`: land every submission file of the landing folder in the DuckDB ``raw`` schema.

The contract is ../shared/fls-db/dataset.md and the table layout is docs/raw-schema.md.

How a file is landed
--------------------
1. Every file under the landing folder is a candidate (any extension), except paths with a
   component starting with ``_`` or ``.`` (so a file can be written as ``.name.part`` and renamed
   when complete): those are *skipped*, and each is listed and recorded with its reason (the
   top-level ``_reference/`` folder, the project's own, is exempt and not listed). Files are taken
   in sorted relative-path order. Links to folders are never followed; a link to a file outside
   the landing folder, to nothing or in a loop, an unreadable file and a folder that cannot be
   listed are *refused*, never read, and recorded with the reason (discover_all). Names are
   stored exactly as given (``source_file``) and in an unambiguous escaped form
   (``source_file_escaped``, _escaped); bytes that are not UTF-8 become ``\\xNN``.
2. The file is read once, while its size, modification time and inode stay the same (retried
   while it is still being written, then refused for this run); the loader works on those bytes
   only (its own staged copy), and re-checks the file just before committing: a file changed
   meanwhile is not committed, and is loaded by the next run. The bytes are hashed (sha256). Content already in ``raw.load_files`` (under any path) is
   skipped: loading the same bytes twice changes nothing. A changed file at the same path has a
   new sha256 and is loaded as a new version.
3. File-level checks, in Python on the bytes (cheap, whole-file): binary content (NUL bytes,
   zip/PDF magic), empty file, encoding, header. Encoding: a UTF-8 BOM -> ``utf-8-sig``; valid
   UTF-8 -> ``utf-8``; otherwise ``windows-1252`` only when that reading is certain
   (_decode_single_byte: not UTF-8 with stray bytes, plausible as Windows-1252 and implausible as
   MacRoman), and the text is transcoded to UTF-8 before DuckDB sees it; anything else (mixed
   UTF-8, MacRoman, UTF-16, uncertain) rejects the file naming the line and byte, so decoding
   never silently alters a value. The header must be
   exactly the contract columns in any order (names are trimmed and compared case-insensitively;
   they are stored under the contract spelling): a missing, duplicated or unexpected column
   rejects the file, naming the columns.
4. DuckDB's own CSV reader parses the (UTF-8) text: ``read_csv`` with explicit columns (the
   header's order), every column VARCHAR, RFC 4180 quoting, ``strict_mode`` and
   ``store_rejects``, once per batch for all files with the same header order (small files whose
   record layout is unambiguous are joined into one CSV first: DuckDB's fixed cost per file
   would otherwise dominate 10,000 one-row files). Mixed CRLF/LF line ends are read as line
   ends; a lone CR between LF line ends refuses the file. A row over 10 MB is a reject. Structural faults (a truncated or over-long line, a broken quoted value)
   come from DuckDB's ``reject_errors`` table and become ``wrong_column_count`` rejects.
5. The contract checks run as one vectorised SQL statement over the file's rows. A row is
   rejected once, under the first rule it breaks, in this order (the order of dataset.md):
   wrong_column_count, missing_required_value, invalid_date, last_updated_after_load,
   invalid_nhs_number,
   unknown_fls_code, fracture_after_extract, fracture_before_2016, birth_after_fracture,
   age_over_110, invalid_fracture_site.
6. Records, rejects and the ``raw.load_files`` row are written in one transaction per file (a
   batch of more than 32 files commits consecutive files in groups of up to 500, to save an
   fsync per file): a crash leaves nothing of an uncommitted file, and the next run loads it
   completely. Nothing from a file is ever spliced into SQL text: values travel through the CSV
   reader, parameters and registered Arrow tables.
7. A second writer is refused with "Warehouse busy" (or waits up to ``$FLSDB_LOCK_TIMEOUT``
   seconds). Messages never repeat an NHS number, date or postcode from a file.

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
  at or before the time of the load (UK time) among its structurally sound rows
  (``raw.load_files.file_extract_date``); a later one is a ``last_updated_after_load`` reject, so
  the extract date is never after the load.
- NHS numbers: whitespace of any kind and hyphens are removed; the rest must be 10 ASCII digits
  0-9 with a correct modulus-11 check digit and not one digit repeated
  (contract.nhs_number_problem).
- Coded answers (FLS code, 1.11) are read as staging reads them: whitespace of any kind trimmed
  and collapsed, documented wordings accepted (the coded-answer vars of dbt_project.yml). A row whose index
  fracture date is after it is rejected as ``fracture_after_extract``.
- Dates must be ISO ``YYYY-MM-DD`` or UK ``DD/MM/YYYY`` (two-digit day and month, four-digit year
  from 1000); ``Last Updated`` must be ``YYYY-MM-DDTHH:MM:SS`` or ``YYYY-MM-DD HH:MM:SS``. Values
  are trimmed before parsing. Only the required date columns (Last Updated, 1.02, 1.09) are
  checked here; optional dates are left to staging, which warns.
- Age at the fracture is in completed years; over 110 means 111 or more.
- FLS codes are matched against ``fls_code`` of the registry after trimming (any whitespace),
  case-insensitively.
  A file whose rows carry several FLS codes is loaded row by row (each row checked against the
  registry under its own code), with a warning in the load summary.
- ``1.11 SiteFirstFrac`` is matched after trimming, case-insensitively.
- Empty cells are stored as NULL; other values are stored exactly as sent (untrimmed).
- Reject reasons name the offending value, except for identifiers (NHS number, date of birth),
  whose values stay only in ``raw_line`` so that a report showing reasons cannot leak them.
- Rows read counts data records after the header; blank lines are not records. A rejected file
  records 0 read, 0 accepted, 0 rejected (nothing in it was read as rows).
- ``loaded_at`` is UTC.
"""

from __future__ import annotations

import bisect
import csv
import errno
import hashlib
import io
import json
import os
import re
import signal
import stat
import sys
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

# A 50 MB free-text value must not make Python's csv module give up (its default limit is 128 KB).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

CONTRACT_COLUMNS: list[str] = list(contract.COLUMNS)
FRACTURE = "1.09 Date Index Frac Diagnosed"
BIRTH = "1.02 Date of Birth"
LAST_UPDATED = "Last Updated"
NHS = "1.01 NHS Number"
FLS = "FLS Code"
SITE = "1.11 SiteFirstFrac"
REQUIRED_DATES = (LAST_UPDATED, BIRTH, FRACTURE)

REJECT_CODES = (
    "wrong_column_count", "missing_required_value", "invalid_date", "last_updated_after_load",
    "invalid_nhs_number",
    "unknown_fls_code", "fracture_after_extract", "fracture_before_2016",
    "birth_after_fracture", "age_over_110", "invalid_fracture_site",
)

# Test hook: called (with the connection and source file) after a file's records are inserted
# and before its transaction commits. Used by the tests to simulate a crash mid-file.
_after_records_hook = None
_CRASH_ENV = "FLSDB_LOAD_TEST_CRASH_AFTER_RECORDS"
# Test hook: called with no arguments once the warehouse is open (and locked) for writing.
_after_connect_hook = None
# Seconds to wait for a busy warehouse before giving up (0: fail at once). Overridden by the
# lock_timeout argument of load_landing.
LOCK_TIMEOUT_ENV = "FLSDB_LOCK_TIMEOUT"


class LoadError(click.ClickException):
    """A problem that stops the whole load (landing missing, warehouse locked, no registry)."""


class WarehouseLockedError(LoadError):
    """Another process holds the warehouse: the message starts with "Warehouse busy". Exit code 4
    (flsdb.failures.EXIT_CODES["warehouse_busy"], docs/reliability.md)."""

    exit_code = 4


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

@dataclass
class FileOutcome:
    source_file: str
    file_sha256: str
    status: str  # loaded | rejected | unchanged | skipped | refused (the last two: not loaded)
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    reason: str | None = None
    load_order: int | None = None
    previously_rejected: bool = False
    warnings: list[str] = field(default_factory=list)
    kind: str | None = None              # skipped/refused: the stable label of the reason
    rel_os: str | None = None            # the name as the OS gave it

    @property
    def display_name(self) -> str:
        """The unambiguous escaped name (raw.load_files.source_file_escaped)."""
        return _escaped(self.rel_os if self.rel_os is not None else self.source_file)


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
    def files_refused(self) -> int:
        """Files that could not be loaded (changed while being loaded, unreadable, a link out of
        the landing folder or in a loop): recorded with the reason; the next run tries again."""
        return sum(f.status == "refused" for f in self.files)

    @property
    def files_skipped(self) -> int:
        """Files not loaded by rule (a name starting with '.' or '_'): recorded with the reason."""
        return sum(f.status == "skipped" for f in self.files)

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
                status = "loaded" + "".join(f"; WARNING: {w}" for w in f.warnings)
            elif f.status == "rejected":
                status = f"REJECTED: {f.reason}"
            elif f.status == "refused":
                status = f"REFUSED (not loaded; the next run retries): {f.reason}"
            elif f.status == "skipped":
                status = f"SKIPPED (not loaded): {f.reason}"
            else:
                status = f"unchanged ({f.reason})" if f.reason else "unchanged"
            counts = (str(f.rows_read), str(f.rows_accepted), str(f.rows_rejected))
            if f.status != "loaded":
                counts = ("-", "-", "-")
            rows.append((f.display_name, *counts, status))
        rows.append(("TOTAL (this run)", str(self.rows_read), str(self.rows_accepted),
                     str(self.rows_rejected),
                     f"{self.files_loaded} loaded, {sum(f.status == 'rejected' for f in self.files)}"
                     f" rejected, {self.files_unchanged} unchanged"
                     + (f", {self.files_refused} refused" if self.files_refused else "")
                     + (f", {self.files_skipped} skipped" if self.files_skipped else "")
                     + f" in {self.seconds:.1f}s"))
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
        source_file_escaped VARCHAR,
        load_warnings VARCHAR,
        rows_accepted_on_recheck BIGINT DEFAULT 0,
        column_order VARCHAR,
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


# Columns added to raw.load_files after its first version (added in place to older warehouses):
# the unambiguous escaped name, the load's warnings, and the rows moved from rejected to accepted
# by `flsdb recheck-rejects` (part of staging's inputs fingerprint, so a recheck restages).
LOAD_FILES_ADDED = [
    ("source_file_escaped", "VARCHAR"),
    ("load_warnings", "VARCHAR"),
    ("rows_accepted_on_recheck", "BIGINT DEFAULT 0"),
    ("column_order", "VARCHAR"),   # JSON list: the file's header, as contract names, in order
]
LOAD_FILES_COLUMNS = [
    "file_sha256", "source_file", "file_size_bytes", "detected_encoding", "status",
    "rejection_reason", "rows_read", "rows_accepted", "rows_rejected", "file_extract_date",
    "load_order", "loaded_at", "source_file_escaped", "load_warnings", "column_order"]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in DDL:
        con.execute(stmt)
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'raw' AND table_name = 'load_files'").fetchall()}
    missing = [(c, k) for c, k in LOAD_FILES_ADDED if c not in have]
    for column, kind in missing:
        con.execute(f"ALTER TABLE raw.load_files ADD COLUMN {column} {kind}")
    if missing:
        # Checkpoint at once: DuckDB 1.4 cannot replay an ALTER ... DEFAULT from its WAL after a
        # crash ("no default database set").
        con.execute("CHECKPOINT")


# --------------------------------------------------------------------------------------------
# Discovery, bytes, encoding, header
# --------------------------------------------------------------------------------------------

def _printable(name: str) -> str:
    """The name stored in ``source_file``: the exact name when it is valid UTF-8 (newlines,
    backslashes and all), else the escaped form (bytes that are not UTF-8 cannot be stored
    exactly as text). ``source_file_escaped`` (_escaped) is the unambiguous one."""
    if any("\udc80" <= c <= "\udcff" for c in name):
        return _escaped(name)
    return name


def _escaped(name: str) -> str:
    r"""An unambiguous, printable form of a file name: a backslash is written ``\\``, a newline
    ``\n``, a tab ``\t``, a carriage return ``\r``, any other non-printable character
    ``\uNNNN`` (or ``\UNNNNNNNN``), and a byte that is not UTF-8 ``\xNN``. Two different names
    never share an escaped form, so a name holding a newline and one holding a literal
    backslash-n stay apart."""
    out = []
    for c in name:
        if "\udc80" <= c <= "\udcff":              # an undecodable byte (surrogateescape)
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        elif c == "\\":
            out.append("\\\\")
        elif c in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[c])
        elif not c.isprintable():
            out.append(f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}")
        else:
            out.append(c)
    return "".join(out)


# The project's own reference folder: the generator writes its synthetic postcode lookup there.
# Exempt by rule: a top-level folder with exactly this name is neither loaded nor listed.
REFERENCE_FOLDER = "_reference"


@dataclass
class NotRead:
    """An entry of the landing folder the loader does not load, and why."""
    rel: str                   # relative posix path (as the OS gave it)
    status: str                # skipped (a name the rules exclude) | refused (cannot be loaded)
    kind: str                  # short stable label of the reason (part of the record key)
    reason: str


def _hidden_reason(part: str, folder: str | None) -> str:
    what = ("a hidden or temporary name (such as .name.part while a file is copied in)"
            if part.startswith(".") else "a name starting with '_' (not a submission, by rule)")
    if folder is None:
        return (f"Not loaded: {what}. Files whose name starts with '.' or '_' are never "
                "loaded; rename it to load it.")
    return (f"Not loaded: it is inside the folder '{_escaped(folder)}', {what}. Files in folders "
            "whose name starts with '.' or '_' are never loaded; move it out to load it.")


def discover_all(landing: Path) -> tuple[list[tuple[str, Path]], list[NotRead]]:
    """Candidate submissions and the entries of the landing folder that are not loaded.

    Returns ``(files, not_read)``: ``files`` is (relative posix path, absolute path) of every
    candidate, sorted; ``not_read`` lists every other file with its reason, sorted:
    - ``skipped``: a file (or every file inside a folder) whose name starts with ``.`` or ``_``
      (the top-level ``_reference/`` folder, the project's own reference data, is exempt and not
      listed);
    - ``refused``: a symbolic link whose target is outside the landing folder, dangling, or part
      of a loop; a symbolic link to a folder (never followed: its files are loaded from their real
      place if that is inside the landing folder); anything that is not a regular file (a FIFO,
      a socket, a device); a file that cannot be examined; a folder that cannot be listed.
    The walk never follows links to folders, so nothing outside the landing folder is read.
    """
    root = Path(os.path.realpath(landing))
    files: list[tuple[str, Path]] = []
    not_read: list[NotRead] = []

    def unlistable(err: OSError) -> None:
        where = Path(err.filename) if err.filename else landing
        try:
            rel = where.relative_to(landing).as_posix()
        except ValueError:
            rel = where.as_posix()
        not_read.append(NotRead(rel, "refused", "folder_unreadable",
                                f"A folder that cannot be listed ({err.strerror}): any files in "
                                "it are not loaded. Make it readable by the loader."))

    def list_hidden_folder(folder: Path, rel_folder: str, name: str) -> None:
        for dp, dn, fn in os.walk(folder, onerror=unlistable, followlinks=False):
            here = Path(dp)
            for f in sorted([*fn, *(d for d in dn if (here / d).is_symlink())]):
                rel = (Path(rel_folder) / (here / f).relative_to(folder)).as_posix()
                not_read.append(NotRead(rel, "skipped", "hidden_folder",
                                        _hidden_reason(name, rel_folder)))

    for dirpath, dirnames, filenames in os.walk(landing, onerror=unlistable, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(landing)
        keep = []
        for d in sorted(dirnames):
            full = here / d
            rel = (rel_dir / d).as_posix()
            if full.is_symlink():
                try:
                    inside = Path(os.path.realpath(full)).is_relative_to(root)
                except (OSError, RuntimeError, ValueError):
                    inside = False
                where = ("inside the landing folder; its files are loaded from there" if inside
                         else "outside the landing folder")
                not_read.append(NotRead(rel, "refused", "folder_link",
                                        f"A symbolic link to a folder ({where}); links to folders "
                                        "are never followed."))
                continue
            if d.startswith(("_", ".")):
                if rel == REFERENCE_FOLDER:
                    continue                      # the project's own reference data: exempt
                list_hidden_folder(full, rel, d)
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in filenames:
            full = here / f
            rel = (rel_dir / f).as_posix()
            if f.startswith(("_", ".")):
                not_read.append(NotRead(rel, "skipped", "hidden_name", _hidden_reason(f, None)))
                continue
            if full.is_symlink():
                try:
                    os.stat(full)
                except OSError as e:
                    if e.errno == errno.ELOOP:
                        not_read.append(NotRead(rel, "refused", "link_loop",
                                                "A symbolic link loop (the link leads back to "
                                                "itself); it is not followed."))
                    else:
                        not_read.append(NotRead(rel, "refused", "link_dangling",
                                                "A symbolic link to nothing (its target does not "
                                                "exist)."))
                    continue
                try:
                    target = Path(os.path.realpath(full))
                except (OSError, RuntimeError, ValueError):
                    target = None
                if target is None or not target.is_relative_to(root):
                    not_read.append(NotRead(rel, "refused", "link_outside",
                                            "A symbolic link to a file outside the landing "
                                            "folder; it is not followed. Copy the file into the "
                                            "landing folder to load it."))
                    continue
            try:
                mode = full.stat().st_mode
            except OSError as e:
                not_read.append(NotRead(rel, "refused", "unexaminable",
                                        f"Cannot be examined ({e.strerror})."))
                continue
            if not stat.S_ISREG(mode):
                not_read.append(NotRead(rel, "refused", "not_regular",
                                        "Not a regular file (a pipe, socket or device); skipped."))
                continue
            files.append((rel, full))
    files.sort()
    not_read.sort(key=lambda n: (n.rel, n.kind))
    return files, not_read


def discover(landing: Path) -> list[tuple[str, Path]]:
    """(relative posix path, absolute path) of every candidate submission, sorted."""
    return discover_all(landing)[0]


class FileRefused(Exception):
    """The file could not be read consistently (it changed while being read, or is unreadable).
    It is recorded as refused (not loaded), and the next run tries it again."""

    def __init__(self, message: str, kind: str = "unreadable"):
        super().__init__(message)
        self.kind = kind


def _signature(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


READ_ATTEMPTS = 3
READ_RETRY_SECONDS = 0.2


def read_stable(path: Path) -> tuple[bytes, tuple[int, int, int, int]]:
    """The file's bytes, read while its size, modification time and inode did not change.

    Retries a few times (a file still being copied in), then raises FileRefused. The bytes
    returned are the ones hashed and loaded: the loader never reads the file again (it stages its
    own copy), and re-checks the signature just before committing (changed_since).
    """
    last = None
    for attempt in range(READ_ATTEMPTS):
        try:
            before = _signature(os.stat(path))
            with open(path, "rb") as fh:
                data = fh.read()
            after = _signature(os.stat(path))
        except FileNotFoundError:
            raise FileRefused("The file disappeared before it could be read.", "vanished") from None
        except OSError as e:
            raise FileRefused(f"The file cannot be read ({e.strerror}).") from None
        if before == after and len(data) == after[0]:
            return data, after
        last = (before, after, len(data))
        time.sleep(READ_RETRY_SECONDS * (attempt + 1))
    before, after, n = last
    raise FileRefused(
        f"The file changed while it was being read, {READ_ATTEMPTS} times in a row (size "
        f"{before[0]:,} -> {after[0]:,} bytes, {n:,} read): it is probably still being written. "
        "Nothing from it was loaded; run `flsdb load` again once it is complete.", "changing")


def changed_since(path: Path, sig: tuple[int, int, int, int]) -> str | None:
    """A plain-English reason if the file at path no longer has signature sig, else None.
    A file deleted or moved away after it was read is not a change: its bytes were read
    consistently, and they are what is loaded."""
    try:
        now = _signature(os.stat(path))
    except FileNotFoundError:
        return None
    if now == sig:
        return None
    what = (f"its size changed from {sig[0]:,} to {now[0]:,} bytes" if now[0] != sig[0] else
            "it was rewritten: its modification time or inode changed")
    return (f"The file changed while it was being loaded ({what}). Nothing from it was loaded; "
            "run `flsdb load` again once it is no longer being written.")


# Identifier-shaped text is never echoed from a file into a message: NHS numbers (10 digits,
# spaces or hyphens allowed), dates (a date of birth) and UK postcodes.
_REDACTIONS = [
    (re.compile(r"(?<![0-9])\d{3}[ -]?\d{3}[ -]?\d{4}(?![0-9])"), "<10-digit number hidden>"),
    (re.compile(r"\b\d{4}-\d{1,2}-\d{1,2}|\b\d{1,2}/\d{1,2}/\d{2,4}"), "<date hidden>"),
    (re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE), "<postcode hidden>"),
]


def redact(text: str) -> str:
    """text with anything shaped like an NHS number, a date or a postcode hidden."""
    for pattern, label in _REDACTIONS:
        text = pattern.sub(label, text)
    return text


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
                f"Unreadable encoding: the file starts with a UTF-8 byte-order mark but the byte "
                f"at {_where(data, 3 + e.start)} is not valid UTF-8 (a stray Windows-1252 "
                "byte?). Decoding it either way would alter values; re-export the file as "
                "UTF-8.") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf_err:
        bad = utf_err.start
    return _decode_single_byte(data, bad), "windows-1252"


# Windows-1252 is read only when the result is certain; see _decode_single_byte.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}"
                             rb"|[\xf0-\xf4][\x80-\xbf]{3}")


def _where(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    col = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, byte {col} of the line (0x{data[offset]:02X})"


def _implausible(data: bytes, text: str) -> tuple[int, str] | None:
    """The first non-ASCII character of a single-byte decoding that is implausible in text, as
    (byte offset, why), or None: a control character; a symbol or mark between two letters
    (other than the apostrophe U+2019); an upper-case letter right after a lower-case one."""
    for i in np.flatnonzero(np.frombuffer(data, dtype=np.uint8) >= 0x80).tolist():
        c = text[i]
        prev_c = text[i - 1] if i else " "
        next_c = text[i + 1] if i + 1 < len(text) else " "
        if not c.isprintable() and not c.isspace():
            return i, f"would be the control character U+{ord(c):04X}"
        if not c.isalpha() and c != "\u2019" and prev_c.isalpha() and next_c.isalpha():
            return i, f"would read as '{c}' between two letters"
        if c.isupper() and prev_c.islower():
            return i, f"would read as '{c}' right after a lower-case letter"
    return None


def _decode_single_byte(data: bytes, first_bad: int) -> str:
    """The text of a file that is not valid UTF-8, decoded as Windows-1252 only when that is
    certain; otherwise FileRejected naming the encoding and the line.

    Rules (decoding must never silently alter a value):
    1. A file that holds valid UTF-8 multi-byte characters *and* (no more) bytes that are not
       UTF-8 is mixed (a UTF-8 export with stray Windows-1252 bytes): decoding it whole either way would
       turn some values into mojibake, so the file is rejected, naming the first bad line.
    2. Otherwise the bytes are read as Windows-1252 only when that reading is plausible text and
       the other common single-byte export encoding, MacRoman, is not (_implausible: no control
       characters, no symbol between two letters, no capital right after a small letter). José
       in Windows-1252 (0xE9) would be JosÈ in MacRoman; José in MacRoman (0x8E) would be JosŽ
       in Windows-1252. When both readings are plausible (say, only O'Brien with a curly
       apostrophe, 0x92, which MacRoman reads as í) the file is rejected as uncertain.
    """
    multibyte = _UTF8_MULTIBYTE.findall(data)
    stray = int((np.frombuffer(data, dtype=np.uint8) >= 0x80).sum()) - sum(map(len, multibyte))
    if multibyte and len(multibyte) >= stray:
        raise FileRejected(
            "Mixed encoding: the file is UTF-8 but has a byte that is not valid UTF-8 at "
            f"{_where(data, first_bad)} (probably Windows-1252). Decoding the whole file either "
            "way would alter values; re-export the file as UTF-8.")
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as e:
        raise FileRejected(
            f"Unreadable encoding: the file is neither UTF-8 (byte 0x{data[first_bad]:02X}"
            f" at offset {first_bad}) nor Windows-1252 (byte 0x{data[e.start]:02X} at "
            f"offset {e.start} is undefined there: MacRoman?); {_where(data, e.start)}. "
            "Re-export the file as UTF-8.") from None
    doubt = _implausible(data, text)
    if doubt is not None:
        i, why = doubt
        raise FileRejected(
            "Uncertain encoding: the file is not UTF-8, and it cannot be read as Windows-1252 "
            f"with certainty: at {_where(data, i)} it {why} (MacRoman?). Nothing was loaded, so "
            "no value is altered; re-export the file as UTF-8.")
    if _implausible(data, data.decode("mac_roman")) is None:
        raise FileRejected(
            "Uncertain encoding: the file is not UTF-8, and its non-ASCII bytes (the first at "
            f"{_where(data, first_bad)}) read as plausible text in both Windows-1252 and "
            "MacRoman, so no decoding is certain. Nothing was loaded; re-export the file as "
            "UTF-8.")
    return text


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
        first = redact(text.split("\n", 1)[0].strip()[:80].replace("\ufeff", "<U+FEFF>"))
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
    unknown = [redact(h)[:80] for h, m in zip(stripped, matched) if not m]
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


def _nth_newline_end(data: bytes, n: int) -> int:
    """Byte offset just after the n-th newline of data (len(data) if there are fewer)."""
    nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    return int(nl[n - 1]) + 1 if len(nl) >= n else len(data)


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
NHS_LIKE = r"\d{3}[ \-]?\d{3}[ \-]?\d{4}"

MACROS = [
    f"""CREATE OR REPLACE TEMP MACRO _parse_date(v) AS CASE
        WHEN regexp_full_match(trim(v), '{ISO_DATE}') THEN try_strptime(trim(v), '%Y-%m-%d')::DATE
        WHEN regexp_full_match(trim(v), '{UK_DATE}') THEN try_strptime(trim(v), '%d/%m/%Y')::DATE
        END""",
    f"""CREATE OR REPLACE TEMP MACRO _parse_ts(v) AS CASE
        WHEN regexp_full_match(trim(v), '{ISO_TS}')
        THEN try_strptime(replace(trim(v), 'T', ' '), '%Y-%m-%d %H:%M:%S') END""",
    "CREATE OR REPLACE TEMP MACRO _blank(v) AS (v IS NULL OR trim(v) = '')",
    # A coded answer as staging reads it (macros/submission_fields.sql normalise_code_text):
    # whitespace of any kind removed around it, runs inside made one space.
    f"""CREATE OR REPLACE TEMP MACRO _code_text(v) AS regexp_replace(regexp_replace(v,
        {_lit('^' + contract.CODE_WHITESPACE_PATTERN + '|' + contract.CODE_WHITESPACE_PATTERN + '$')},
        '', 'g'), {_lit(contract.CODE_WHITESPACE_PATTERN)}, ' ', 'g')""",
    # A value quoted in a reason, with an invisible byte-order mark made visible; a value that
    # looks like an NHS number (whatever column it was typed into) is not repeated.
    f"""CREATE OR REPLACE TEMP MACRO _show(v) AS CASE
        WHEN regexp_full_match(trim(v), '{NHS_LIKE}')
        THEN '(a 10-digit value, not repeated here as it may be an NHS number)'
        ELSE '''' || replace(replace(v, '''', ''''''), chr(65279), '<U+FEFF>') || '''' END""",
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
    rules.append(("_lu > _load_time()", "last_updated_after_load", LAST_UPDATED,
                  msg(f"'{LAST_UPDATED}' value ", f"_show({q(LAST_UPDATED)})",
                      " is after the time of this load (", "strftime(_load_time(), '%Y-%m-%d %H:%M')",
                      " UK time): a record cannot have changed in the future, and it would move "
                      "the extract date.")))
    rules.append(("_nhs_problem IS NOT NULL", "invalid_nhs_number", NHS,
                  msg(f"'{NHS}' is not a valid NHS number: ", "_nhs_problem",
                      " (10 ASCII digits 0-9 after removing spaces and hyphens, a correct "
                      f"modulus-11 check digit, not one digit repeated) {IDENTIFIER_NOTE}.")))
    rules.append((f"upper(_code_text({q(FLS)})) NOT IN (SELECT upper(fls_code) FROM _registry)",
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
    site_list = ", ".join(_lit(s.lower()) for s in
                          [*contract.SITES, *contract.code_wordings("fracture_site")])
    rules.append((f"lower(_code_text({q(SITE)})) NOT IN ({site_list})", "invalid_fracture_site",
                  SITE,
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
                   _nhs_problem({q(NHS)}) AS _nhs_problem
            FROM _stage POSITIONAL JOIN _linemap
        )
    )
    """


EXTRACTS_SQL = f"""
    SELECT _fid, max(_parse_ts({_q(LAST_UPDATED)})) FILTER (
               WHERE _parse_ts({_q(LAST_UPDATED)}) <= _load_time())::DATE AS _extract
    FROM _stage GROUP BY _fid
"""


# A repeated header row inside the data (two exports joined into one file, often with a
# byte-order mark at the start of the second) is rejected under the first rule it breaks, with
# this explanation first.
_REPEATED_HEADER_SQL = (
    f"lower(trim(replace({_q('Record ID')}, chr(65279), ''))) = 'record id' AND "
    f"lower(trim(replace({_q(LAST_UPDATED)}, chr(65279), ''))) = 'last updated'")
_REPEATED_HEADER_NOTE = "This row repeats the header row (two exports joined into one file?). "

REJECTS_SQL = f"""
    SELECT _fid, _line_number, _end_line, {_CODES_SQL}[_rule] AS _code,
           {_COLUMNS_SQL}[_rule] AS _column,
           CASE WHEN {_REPEATED_HEADER_SQL} THEN {_lit(_REPEATED_HEADER_NOTE)} ELSE '' END
             || {_REASON_SQL} AS _reason, {_q(FLS)}, {_q('Record ID')}
    FROM _final WHERE _rule IS NOT NULL AND _line_number > 0
"""


# --------------------------------------------------------------------------------------------
# The loader
# --------------------------------------------------------------------------------------------

def _connect(warehouse: Path, lock_timeout: float = 0.0) -> duckdb.DuckDBPyConnection:
    """Open the warehouse for writing. If another process holds it, wait up to lock_timeout
    seconds (polling), then raise WarehouseLockedError ("Warehouse busy: ...")."""
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + max(lock_timeout, 0.0)
    while True:
        try:
            return duckdb.connect(str(warehouse))
        except duckdb.IOException as e:
            msg = str(e)
            if "lock" not in msg.lower():
                raise
            if time.monotonic() < deadline:
                time.sleep(0.25)
                continue
            m = re.search(r"PID (\d+)", msg)
            who = f" (process {m.group(1)})" if m else ""
            waited = (f" after waiting {lock_timeout:g}s" if lock_timeout > 0 else
                      f"; set {LOCK_TIMEOUT_ENV}=<seconds> to wait for it instead")
            raise WarehouseLockedError(
                f"Warehouse busy: {warehouse} is in use by another process{who}: DuckDB allows "
                "one writer at a time. Nothing was loaded" + waited + ". Close the other "
                "connection (dbt, a notebook, a BI tool or another `flsdb load`) and try "
                "again.") from None


def uk_now() -> datetime:
    """The time now on UK clocks (Last Updated is a UK local timestamp), without time zone. Without
    a time-zone database, UTC plus one hour (British Summer Time), the later of the two."""
    try:
        from zoneinfo import ZoneInfo
        now = datetime.now(ZoneInfo("Europe/London"))
    except Exception:  # noqa: BLE001  (no tz database: ZoneInfoNotFoundError and kin)
        from datetime import timedelta
        now = datetime.now(timezone.utc) + timedelta(hours=1)
    return now.replace(tzinfo=None, microsecond=0)


def _nhs_problem(value: str | None) -> str | None:
    """Why the NHS number is invalid (never repeating it), or None (contract.nhs_number_problem)."""
    return None if value is None else contract.nhs_number_problem(value)


def _read_registry(con: duckdb.DuckDBPyConnection, registry: Path) -> None:
    if not registry.exists():
        raise LoadError(f"FLS registry not found at {registry}: it is needed to check FLS codes "
                        "(run `flsdb generate`, or pass the registry path).")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _registry AS SELECT DISTINCT trim(fls_code) AS fls_code "
        f"FROM read_csv({_lit(str(registry))}, header=true, all_varchar=true) "
        f"WHERE fls_code IS NOT NULL")


LOAD_FILES_INSERT = (
    "INSERT INTO raw.load_files (" + ", ".join(LOAD_FILES_COLUMNS) + ") SELECT "
    + ", ".join(c if c != "loaded_at" else "?::TIMESTAMP" for c in LOAD_FILES_COLUMNS)
    + " FROM _load_files_df")


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
    header: list[str] | None = None
    tmp: Path | None = None            # the loader's own copy of the (UTF-8) bytes it read
    path: Path | None = None           # the file in the landing folder
    sig: tuple | None = None           # its size/mtime/ctime/inode when it was read
    warnings: list[str] = field(default_factory=list)
    rel_os: str = ""                   # the name as the OS gave it (for the escaped form)
    cr_placeholder: bool = False       # lone CRs in values travel as CR_PLACEHOLDER


REJECT_COLUMNS = ["_line_number", "reject_code", "column_name", "reject_reason", "raw_line",
                  "fls_code", "record_id"]

MAX_LINE_BYTES = 10_000_000


# A carriage return inside a value, outside quotes, of a file whose lines end with LF (or CRLF):
# DuckDB's reader would take it for a line end, so it travels through the reader as this
# private-use character and is put back in every value and raw line (_restore_cr).
CR_PLACEHOLDER = "\ue000"


def _even_line_ends(text: str, warnings: list[str]) -> str:
    """Line ends mixing CRLF and LF (a file edited on two systems) are read as line ends: CRLF
    becomes LF (DuckDB's reader needs one style per file). A carriage return on its own in a file
    whose lines end with LF or CRLF is data (a value padded with a CR, say), quoted or not: it is
    kept in the value, exactly, with a warning; if it was really a line break, the row then has
    the wrong number of columns and is rejected as such. A file of CR-only line ends (classic
    Mac) is read with CR as the line end."""
    if "\r" not in text:
        return text
    crlf = text.count("\r\n")
    lf = text.count("\n") - crlf
    quotes = [m.start() for m in re.finditer('"', text)]
    lone = [m.start() for m in re.finditer(r"\r(?!\n)", text)]
    unquoted = [at for at in lone if bisect.bisect_left(quotes, at) % 2 == 0]
    if unquoted and (lf or crlf):
        if CR_PLACEHOLDER in text:
            at = unquoted[0]
            raise FileRejected(
                f"Not readable as CSV: line {text.count(chr(10), 0, at) + 1} contains a carriage "
                "return (CR) on its own, outside quotes, while the file's lines end with LF: "
                "mixed or corrupted line endings. Re-export the file.")
        chars = list(text)
        for at in unquoted:
            chars[at] = CR_PLACEHOLDER
        text = "".join(chars)
        first = sorted({text.count("\n", 0, at) + 1 for at in unquoted})
        shown = ", ".join(map(str, first[:5])) + (", ..." if len(first) > 5 else "")
        warnings.append(f"{len(unquoted):,} carriage return(s) (CR) inside values on line(s) "
                        f"{shown}, kept as data (RFC 4180 asks for such values to be quoted)")
    if crlf and lf:
        warnings.append(f"mixed line endings ({crlf:,} CRLF and {lf:,} LF); all were read as "
                        "line ends")
        return text.replace("\r\n", "\n")
    return text


def _raw_lines(text: str, cr_placeholder: bool = False) -> list[str]:
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    return [ln.replace(CR_PLACEHOLDER, "\r") for ln in lines] if cr_placeholder else lines


class _Loader:
    """Collects files, stages a batch of them with DuckDB's CSV reader (one read_csv over every
    file of the batch that has the same header order), checks the whole batch with one SQL
    statement, then commits it: each file all-or-nothing, in load order."""

    BATCH_ROWS = 250_000               # lines staged before a batch is checked and committed
    BATCH_FILES = 5_000                # files staged before a batch is checked and committed
    # Commit granularity. A batch of up to SMALL_BATCH_FILES files commits each file in its own
    # transaction; a bigger batch (many small files) commits consecutive files in groups of up
    # to GROUP_FILES, because every commit costs an fsync (10,000 one-row files would otherwise
    # spend a minute syncing). Either way a file is never partly committed, and a crash loses at
    # most the uncommitted group, which the next run loads again.
    SMALL_BATCH_FILES = 32
    GROUP_FILES = 500

    def __init__(self, con: duckdb.DuckDBPyConnection, tmpdir: Path,
                 load_time: datetime | None = None):
        self.con = con
        self.tmpdir = tmpdir
        self.load_time = load_time or uk_now()
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET enable_progress_bar = false")
        # Commit to the WAL only; checkpoint once at the end (see load_landing).
        con.execute("SET checkpoint_threshold = '16GB'")
        for m in MACROS:
            con.execute(m)
        con.execute("CREATE OR REPLACE TEMP MACRO _load_time() AS "
                    f"TIMESTAMP {_lit(self.load_time.strftime('%Y-%m-%d %H:%M:%S'))}")
        con.create_function("_nhs_problem", _nhs_problem, ["VARCHAR"], "VARCHAR",
                            side_effects=False, null_handling="special")
        self.next_order = con.execute(
            "SELECT coalesce(max(load_order), 0) + 1 FROM raw.load_files").fetchone()[0]
        self.pending: list[_Pending] = []
        self.outcomes: dict[str, FileOutcome] = {}
        self.batch_lines = 0
        self.next_fid = 0
        self._new_stage()

    def _new_stage(self) -> None:
        self.con.execute("CREATE OR REPLACE TEMP TABLE _stage (_fid INTEGER, "
                         + ", ".join(f"{_q(c)} VARCHAR" for c in CONTRACT_COLUMNS) + ")")
        self.staged_rows = 0
        self.linemaps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    # -- collecting ----------------------------------------------------------------------------
    def add(self, rel: str, data: bytes, sha: str, path: Path | None = None,
            sig: tuple | None = None, rel_os: str | None = None) -> None:
        p = _Pending(rel, sha, len(data), None, path=path, sig=sig, rel_os=rel_os or rel)
        p.warnings += name_warnings(rel)
        try:
            p.text, p.encoding = decode(data)
            had_placeholder = CR_PLACEHOLDER in p.text
            p.text = _even_line_ends(p.text, p.warnings)
            p.cr_placeholder = not had_placeholder and CR_PLACEHOLDER in p.text
            p.header = check_header(p.text)
        except FileRejected as e:
            p.reason = str(e)
            p.text = None
        self.pending.append(p)
        self.batch_lines += data.count(b"\n")
        if self.batch_lines >= self.BATCH_ROWS or len(self.pending) >= self.BATCH_FILES:
            self.flush()

    # -- staging -------------------------------------------------------------------------------
    def _stage_all(self) -> None:
        """Stage every pending file that passed the file-level checks."""
        to_stage = [p for p in self.pending if p.reason is None]
        groups: dict[tuple[str, ...], list[_Pending]] = {}
        utf8: dict[int, bytes] = {}
        for p in to_stage:
            p.fid = self.next_fid
            self.next_fid += 1
            p.tmp = self.tmpdir / f"{p.fid}.csv"
            utf8[p.fid] = p.text.encode("utf-8")
            p.tmp.write_bytes(utf8[p.fid])
            groups.setdefault(tuple(p.header), []).append(p)
        staged: list[tuple[_Pending, dict[int, str]]] = []
        for header, ps in groups.items():
            small = [p for p in ps if len(utf8[p.fid]) <= self.COMBINE_MAX_BYTES]
            if len(small) >= 2:
                combined = self._read_combined(list(header), small, utf8)
                if combined is not None:
                    staged += combined
                    done = {p.fid for p, _ in combined}
                    ps = [p for p in ps if p.fid not in done]
            if not ps:
                continue
            try:
                errs = self._read_csv(list(header), ps)
            except duckdb.Error:
                # One file broke the multi-file read: read them one by one to find it.
                errs = {}
                ok = []
                for p in ps:
                    try:
                        errs.update(self._read_csv(list(header), [p]))
                        ok.append(p)
                    except duckdb.Error as e:
                        first = str(e).strip().splitlines()[0] if str(e).strip() else \
                            type(e).__name__
                        p.reason = f"Not readable as CSV: {redact(first)[:300]}"
                ps = ok
            staged += [(p, errs.get(p.fid, {})) for p in ps]
        counts = dict(self.con.execute(
            "SELECT _fid, count(*) FROM _stage GROUP BY _fid").fetchall())
        # Line maps are appended in _stage order: groups in turn, files in order within one.
        for p, err_lines in staged:
            try:
                self._finish_stage(p, utf8[p.fid], err_lines, counts.get(p.fid, 0))
            except FileRejected as e:
                p.reason = str(e)
        self.staged_rows = sum(counts.values())
        flagged = [p.fid for p in to_stage if p.cr_placeholder]
        if flagged:
            self.con.execute(
                "UPDATE _stage SET " + ", ".join(
                    f"{_q(c)} = replace({_q(c)}, chr({ord(CR_PLACEHOLDER)}), chr(13))"
                    for c in CONTRACT_COLUMNS)
                + " WHERE _fid IN (" + ", ".join(str(int(f)) for f in flagged) + ")")

    COMBINE_MAX_BYTES = 256 * 1024

    def _read_combined(self, header: list[str], ps: list[_Pending], utf8: dict[int, bytes]
                       ) -> list[tuple[_Pending, dict[int, str]]] | None:
        """Stage many small files with one read of one combined CSV (their bodies joined under
        one header): DuckDB pays a fixed cost per file read, which dominates for thousands of
        one-row files. Only files whose records are unambiguous are combined (the numpy and csv
        module layouts agree, so every record ends inside the file); the others, and every file
        if DuckDB's result does not add up exactly, are read the ordinary way. Returns
        [(file, DuckDB structural errors by the file's own record line)] in _stage order."""
        con = self.con
        chosen, bodies, n_recs = [], [], []
        for p in ps:
            data = utf8[p.fid]
            lay = layout_numpy(data)
            if lay.unterminated_last or len(lay.blank) < 2:
                continue
            alt = layout_csv(p.text)
            if (len(alt.blank) != len(lay.blank) or alt.unterminated_last
                    or not np.array_equal(alt.start_line, lay.start_line)):
                continue
            # The body starts after the header record's last newline.
            cut = _nth_newline_end(data, int(lay.end_line[0]))
            body = data[cut:]
            if not body.endswith(b"\n"):
                body += b"\n"
            chosen.append(p)
            bodies.append(body)
            n_recs.append(len(lay.blank) - 1)
        if len(chosen) < 2:
            return None
        tmp = self.tmpdir / "combined.csv"
        with open(tmp, "wb") as fh:
            fh.write(",".join(_q(c) for c in header).encode("utf-8") + b"\n")
            for b in bodies:
                fh.write(b)
        columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in header) + "}"
        con.execute("DROP TABLE IF EXISTS _rej_errors; DROP TABLE IF EXISTS _rej_scans")
        try:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _combo AS SELECT "
                + ", ".join(_q(c) for c in CONTRACT_COLUMNS)
                + f" FROM read_csv({_lit(str(tmp))}, auto_detect=false, header=true, delim=',', "
                  f"quote='\"', escape='\"', strict_mode=true, columns={columns}, "
                  f"store_rejects=true, rejects_table='_rej_errors', rejects_scan='_rej_scans', "
                  f"max_line_size={MAX_LINE_BYTES})")
        except duckdb.Error:
            return None
        finally:
            tmp.unlink(missing_ok=True)
        n_combo = con.execute("SELECT count(*) FROM _combo").fetchone()[0]
        errs = con.execute(
            "SELECT line, any_value(error_type ORDER BY byte_position)::VARCHAR "
            "FROM _rej_errors GROUP BY line ORDER BY line").fetchall()
        # Combined record r (1-based after the header) belongs to file k when
        # offsets[k] < r <= offsets[k + 1]; its line in that file's own numbering is r - offsets[k] + 1.
        offsets = np.concatenate(([0], np.cumsum(n_recs)))
        per_file: list[dict[int, str]] = [{} for _ in chosen]
        for line, err in errs:
            r = int(line) - 1
            k = int(np.searchsorted(offsets, r, side="left")) - 1
            if k < 0 or k >= len(chosen):
                return None
            per_file[k][r - int(offsets[k]) + 1] = err
        counts = []
        for p, err_lines, n in zip(chosen, per_file, n_recs):
            lay = layout_numpy(utf8[p.fid])
            data_recs = int((~lay.blank[1:]).sum())
            n_rows = data_recs - len(err_lines)
            if self._match(lay, err_lines, n_rows) is None:
                return None
            counts.append(n_rows)
        if sum(counts) != n_combo:
            return None
        fids = pa.table({"_fid": pa.array(
            np.repeat(np.array([p.fid for p in chosen], dtype=np.int32), counts))})
        con.register("_combo_fids", fids)
        try:
            con.execute("INSERT INTO _stage SELECT f._fid, c.* FROM _combo c "
                        "POSITIONAL JOIN _combo_fids f")
        finally:
            con.unregister("_combo_fids")
            con.execute("DROP TABLE _combo")
        return list(zip(chosen, per_file))

    def _read_csv(self, header: list[str], ps: list[_Pending]) -> dict[int, dict[int, str]]:
        """read_csv the files ps (same header order) into _stage; DuckDB's structural errors by
        file id and DuckDB record line."""
        con = self.con
        columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in header) + "}"
        files = "[" + ", ".join(_lit(str(p.tmp)) for p in ps) + "]"
        con.execute("DROP TABLE IF EXISTS _rej_errors; DROP TABLE IF EXISTS _rej_scans")
        con.execute(
            "INSERT INTO _stage SELECT regexp_extract(filename, '(\\d+)\\.csv$', 1)::INTEGER, "
            + ", ".join(_q(c) for c in CONTRACT_COLUMNS)
            + f" FROM read_csv({files}, auto_detect=false, header=true, delim=',', "
              f"quote='\"', escape='\"', strict_mode=true, columns={columns}, filename=true, "
              f"store_rejects=true, rejects_table='_rej_errors', rejects_scan='_rej_scans', "
              f"max_line_size={MAX_LINE_BYTES})")
        out: dict[int, dict[int, str]] = {}
        for path, line, err in con.execute(
                "SELECT s.file_path, e.line, any_value(e.error_type ORDER BY e.byte_position)"
                "::VARCHAR FROM _rej_errors e JOIN _rej_scans s USING (scan_id, file_id) "
                "GROUP BY ALL").fetchall():
            out.setdefault(int(Path(path).stem), {})[int(line)] = err
        return out

    def _finish_stage(self, p: _Pending, utf8: bytes, err_lines: dict[int, str],
                      n_rows: int) -> None:
        """Line numbers of the file's staged rows, its counts and its structural rejects."""
        text, header, fid = p.text, p.header, p.fid
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

        # Structural rejects: DuckDB's record line L is our record index L - 1.
        struct_idx = sorted(i - 1 for i in err_lines)
        last = len(layout.blank) - 1
        if layout.unterminated_last and last not in struct_idx:
            struct_idx.append(last)
        if not struct_idx:
            return
        lines = _raw_lines(text, p.cr_placeholder)
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
            if i == last and layout.unterminated_last:
                if e > s and lines[e - 1] == "":      # the file's final newline ends no line
                    e -= 1
                    raw_line = "\n".join(lines[s - 1:e])
                span = f"line {s}" if s == e else f"lines {s} to {e}"
                reason = (f"A quoted value opened on line {s} is never closed before the end of "
                          f"the file, so the rest of the file ({span}) cannot be split into "
                          "rows; it is kept here as one rejected row. Look for a stray or "
                          "unbalanced double quote.")
            elif err == "LINE SIZE OVER MAXIMUM":
                n_bytes = len(raw_line.encode("utf-8"))
                reason = (f"The row is {n_bytes:,} bytes long, over the limit of "
                          f"{MAX_LINE_BYTES:,} bytes for one row (a corrupt or runaway line).")
            elif err == "UNQUOTED VALUE" or fields is None:
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
        self._stage_all()
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
            kinds = list(IDENTIFIER_TOKENS)
            for fid, *counts in con.execute(IDENTIFIER_TOKENS_SQL).fetchall():
                found = [(kinds[k], counts[2 * k], counts[2 * k + 1]) for k in range(len(kinds))
                         if counts[2 * k]]
                for p in staged:
                    if p.fid == fid and found:
                        p.warnings.append(
                            "Record IDs look like they hold an identifier: " + "; ".join(
                                f"{n:,} with {kind} (first on line {line})"
                                for kind, n, line in found)
                            + "; they stay in the internal warehouse, but ask the FLS to use "
                              "IDs that hold no patient identifier")
            for fid, n, codes in con.execute(MIXED_FLS_SQL).fetchall():
                shown = ", ".join(codes[:5]) + (", ..." if n > 5 else "")
                for p in staged:
                    if p.fid == fid:
                        p.warnings.append(
                            f"the accepted rows carry {n} different FLS codes ({shown}); each "
                            "row is checked and counted under its own FLS code")
        pending = self.pending
        size = 1 if len(pending) <= self.SMALL_BATCH_FILES else self.GROUP_FILES
        for start in range(0, len(pending), size):
            self._commit_group(pending[start:start + size], contract_rejects, extracts)
        for p in pending:
            if p.tmp is not None:
                p.tmp.unlink(missing_ok=True)
            p.text = None
        self.pending = []
        self.batch_lines = 0
        self._new_stage()
        con.execute("DROP TABLE IF EXISTS _final")

    def _commit_group(self, group: list[_Pending], contract_rejects: dict[int, list],
                      extracts: dict[int, object]) -> None:
        """Commit the files of group in one transaction (every value passed as a parameter or
        through a registered Arrow table: nothing from a file is ever spliced into SQL text)."""
        con = self.con
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        files, rejects = [], []
        for p in group:
            changed = changed_since(p.path, p.sig) if p.path is not None and p.sig else None
            if changed:
                self.outcomes[p.sha] = FileOutcome(p.rel, "", "refused", reason=changed,
                                                   kind="changed_before_commit", rel_os=p.rel_os)
                continue
            order = self.next_order + len(files)
            if p.reason is not None:
                files.append(dict(p=p, order=order, status="rejected", read=0, acc=0, rej=0))
                continue
            rows = list(p.struct_rejects)
            c_rej = contract_rejects.get(p.fid, [])
            if c_rej:
                lines = _raw_lines(p.text, p.cr_placeholder)
                for s, e, code, col, reason, fls, rid in c_rej:
                    rows.append((s, code, col, reason, "\n".join(lines[s - 1:e]), fls, rid))
            rows.sort(key=lambda r: r[0])
            n_acc = p.n_staged - len(c_rej)
            if p.n_read != n_acc + len(rows):
                raise AssertionError(f"{p.rel}: rows read {p.n_read} != accepted {n_acc} + "
                                     f"rejected {len(rows)}")
            files.append(dict(p=p, order=order, status="loaded", read=p.n_read, acc=n_acc,
                              rej=len(rows)))
            rejects += [(p.sha, p.rel, order, *r) for r in rows]
        if not files:
            return
        loaded = [f for f in files if f["status"] == "loaded"]
        lineage = pa.table({
            "_fid": pa.array([f["p"].fid for f in loaded], type=pa.int32()),
            "sha": pa.array([f["p"].sha for f in loaded], type=pa.string()),
            "rel": pa.array([f["p"].rel for f in loaded], type=pa.string()),
            "ord": pa.array([f["order"] for f in loaded], type=pa.int64()),
        })
        load_files = pa.table({
            "file_sha256": [f["p"].sha for f in files],
            "source_file": [f["p"].rel for f in files],
            "file_size_bytes": pa.array([f["p"].size for f in files], type=pa.int64()),
            "detected_encoding": pa.array([f["p"].encoding for f in files], type=pa.string()),
            "status": [f["status"] for f in files],
            "rejection_reason": pa.array([f["p"].reason for f in files], type=pa.string()),
            "rows_read": pa.array([f["read"] for f in files], type=pa.int64()),
            "rows_accepted": pa.array([f["acc"] for f in files], type=pa.int64()),
            "rows_rejected": pa.array([f["rej"] for f in files], type=pa.int64()),
            "file_extract_date": pa.array(
                [extracts.get(f["p"].fid) if f["status"] == "loaded" else None for f in files],
                type=pa.date32()),
            "load_order": pa.array([f["order"] for f in files], type=pa.int64()),
            "source_file_escaped": [_escaped(f["p"].rel_os) for f in files],
            "load_warnings": pa.array(["; ".join(f["p"].warnings) or None for f in files],
                                      type=pa.string()),
            "column_order": pa.array([json.dumps(f["p"].header) if f["p"].header else None
                                      for f in files], type=pa.string()),
        })
        cols = ", ".join("f." + _q(c) for c in CONTRACT_COLUMNS)
        con.execute("BEGIN TRANSACTION")
        try:
            if loaded:
                con.register("_lineage", lineage)
                try:
                    con.execute(
                        f"INSERT INTO raw.submission_records SELECT {cols}, l.sha, l.rel, "
                        f"f._line_number, l.ord, ?::TIMESTAMP FROM _final f JOIN _lineage l "
                        f"ON f._fid = l._fid WHERE f._rule IS NULL ORDER BY l.ord, f._line_number",
                        [loaded_at])
                finally:
                    con.unregister("_lineage")
            for f in loaded:
                if _after_records_hook is not None:
                    _after_records_hook(con, f["p"].rel)
                if os.environ.get(_CRASH_ENV) == f["p"].rel:
                    os.kill(os.getpid(), signal.SIGKILL)
            if rejects:
                cols_ = list(zip(*rejects))
                names = ["sha", "rel", "ord", *REJECT_COLUMNS]
                types = [pa.string(), pa.string(), pa.int64(), pa.int64()] + [pa.string()] * 6
                rej = pa.table({n: pa.array(v, type=t) for n, v, t in zip(names, cols_, types)})
                con.register("_rej_df", rej)
                try:
                    con.execute(
                        "INSERT INTO raw.submission_rejects SELECT sha, rel, _line_number, ord, "
                        "?::TIMESTAMP, reject_code, column_name, reject_reason, raw_line, "
                        "fls_code, record_id FROM _rej_df ORDER BY ord, _line_number",
                        [loaded_at])
                finally:
                    con.unregister("_rej_df")
            con.register("_load_files_df", load_files)
            try:
                con.execute(LOAD_FILES_INSERT, [loaded_at])
            finally:
                con.unregister("_load_files_df")
            con.execute("COMMIT")
        except BaseException:
            _rollback(con)
            raise
        self.next_order += len(files)
        for f in files:
            p = f["p"]
            if f["status"] == "rejected":
                self.outcomes[p.sha] = FileOutcome(p.rel, p.sha, "rejected", reason=p.reason,
                                                   load_order=f["order"], rel_os=p.rel_os,
                                                   warnings=p.warnings)
            else:
                self.outcomes[p.sha] = FileOutcome(p.rel, p.sha, "loaded", f["read"], f["acc"],
                                                   f["rej"], load_order=f["order"],
                                                   warnings=p.warnings, rel_os=p.rel_os)


# Identifier-like tokens inside Record IDs (RE2: no look-around, so the edges are matched).
# Record IDs and file names stay in the internal warehouse and quality report; the load only
# warns, so that the FLS can be asked to stop. The same shapes are checked in file names.
IDENTIFIER_TOKENS = {
    "a 10-digit number like an NHS number": r"(^|[^0-9])[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}([^0-9]|$)",
    "a UK postcode": r"(?i)(^|[^A-Z0-9])[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}([^A-Z0-9]|$)",
    # A date before 1990: no audit date is that early, but every in-scope patient's birth is.
    # (Export dates in file names, such as SYN001_x_2024-06-30.csv, are not flagged.)
    "a date like a date of birth (before 1990)": (
        r"(^|[^0-9])(19[0-8][0-9][-/.]?(0[1-9]|1[0-2])[-/.]?(0[1-9]|[12][0-9]|3[01])"
        r"|(0[1-9]|[12][0-9]|3[01])[-/.]?(0[1-9]|1[0-2])[-/.]?19[0-8][0-9])([^0-9]|$)"),
}

IDENTIFIER_TOKENS_SQL = "SELECT _fid, " + ", ".join(
    f"count(*) FILTER (WHERE regexp_matches({_q('Record ID')}, {_lit(p)})), "
    f"min(_line_number) FILTER (WHERE regexp_matches({_q('Record ID')}, {_lit(p)}))"
    for p in IDENTIFIER_TOKENS.values()) + " FROM _final WHERE _rule IS NULL GROUP BY _fid"


def name_warnings(name: str) -> list[str]:
    """A warning when a file name holds an identifier-like token (never repeating it)."""
    kinds = identifier_tokens_in(name)
    if not kinds:
        return []
    return ["the file name holds " + " and ".join(kinds) + "; file names stay in the internal "
            "warehouse, but ask the FLS to name files without patient identifiers"]


def identifier_tokens_in(text: str) -> list[str]:
    """The kinds of identifier-like token (IDENTIFIER_TOKENS) found in text (a file name)."""
    return [kind for kind, p in IDENTIFIER_TOKENS.items()
            if re.search(p.replace("(?i)", ""), text, re.IGNORECASE if "(?i)" in p else 0)]


MIXED_FLS_SQL = f"""
    SELECT _fid, count(DISTINCT upper(_code_text({_q(FLS)}))) AS n,
           list(DISTINCT upper(_code_text({_q(FLS)})) ORDER BY upper(_code_text({_q(FLS)})))
             AS codes
    FROM _final WHERE _rule IS NULL GROUP BY _fid HAVING n > 1
"""


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failed commit, keeping the original error: after a fatal I/O error (a
    full disk) DuckDB has often ended the transaction itself, and ROLLBACK would raise anew."""
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def not_loaded_key(rel_os: str, status: str, kind: str | None) -> str:
    """raw.load_files.file_sha256 of a file that was not loaded: ``not-loaded:`` and a sha256 of
    its escaped name, status and reason label (not of content, which was not read). The same
    file skipped or refused again for the same reason is recorded once."""
    digest = hashlib.sha256(f"{_escaped(rel_os)}\0{status}\0{kind}".encode()).hexdigest()
    return f"not-loaded:{digest}"


def _record_not_loaded(con: duckdb.DuckDBPyConnection, outcomes: list[FileOutcome],
                       next_order: int) -> None:
    """Record every skipped or refused file in raw.load_files (0 rows read, accepted, rejected),
    once per name, status and reason label, in one transaction."""
    known = {r[0] for r in con.execute(
        "SELECT file_sha256 FROM raw.load_files WHERE file_sha256 LIKE 'not-loaded:%'").fetchall()}
    rows, seen = [], set()
    for f in outcomes:
        key = not_loaded_key(f.rel_os if f.rel_os is not None else f.source_file, f.status, f.kind)
        f.file_sha256 = f.file_sha256 or ""
        if key in known or key in seen:
            continue
        seen.add(key)
        rows.append((key, f))
    if not rows:
        return
    table = pa.table({
        "file_sha256": [k for k, _ in rows],
        "source_file": [f.source_file for _, f in rows],
        "file_size_bytes": pa.array([None] * len(rows), type=pa.int64()),
        "detected_encoding": pa.array([None] * len(rows), type=pa.string()),
        "status": [f.status for _, f in rows],
        "rejection_reason": [f.reason for _, f in rows],
        "rows_read": pa.array([0] * len(rows), type=pa.int64()),
        "rows_accepted": pa.array([0] * len(rows), type=pa.int64()),
        "rows_rejected": pa.array([0] * len(rows), type=pa.int64()),
        "file_extract_date": pa.array([None] * len(rows), type=pa.date32()),
        "load_order": pa.array(range(next_order, next_order + len(rows)), type=pa.int64()),
        "source_file_escaped": [f.display_name for _, f in rows],
        "load_warnings": pa.array([None] * len(rows), type=pa.string()),
        "column_order": pa.array([None] * len(rows), type=pa.string()),
    })
    loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        con.register("_load_files_df", table)
        try:
            con.execute(LOAD_FILES_INSERT, [loaded_at])
        finally:
            con.unregister("_load_files_df")
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def load_landing(landing_dir: Path | str, warehouse_path: Path | str,
                 registry_path: Path | str | None = None, progress: bool | None = None,
                 lock_timeout: float | None = None,
                 load_time: datetime | None = None) -> LoadResult:
    """Load every new submission file of ``landing_dir`` into ``warehouse_path``'s raw schema.

    ``registry_path`` defaults to seeds/fls_registry.csv; ``progress`` None shows the tqdm bar
    only on a terminal; ``lock_timeout`` is how long to wait for a warehouse another process is
    writing (default: $FLSDB_LOCK_TIMEOUT, else 0 = fail at once with "Warehouse busy");
    ``load_time`` (UK local, naive) is the time a Last Updated may not be after (default: now).
    """
    t0 = time.perf_counter()
    landing = Path(landing_dir)
    warehouse = Path(warehouse_path)
    registry = Path(registry_path) if registry_path else paths.seeds_dir() / "fls_registry.csv"
    if lock_timeout is None:
        try:
            lock_timeout = float(os.environ.get(LOCK_TIMEOUT_ENV) or 0)
        except ValueError:
            raise LoadError(f"{LOCK_TIMEOUT_ENV} must be a number of seconds.") from None
    if not landing.is_dir():
        raise LoadError(f"Landing folder {landing} does not exist.")
    files, not_read = discover_all(landing)
    result = LoadResult(warehouse=warehouse, landing=landing)
    con = _connect(warehouse, lock_timeout)
    try:
        if _after_connect_hook is not None:
            _after_connect_hook()
        ensure_schema(con)
        _read_registry(con, registry)
        known = {sha: (src, status) for sha, src, status in con.execute(
            "SELECT file_sha256, source_file, status FROM raw.load_files").fetchall()}
        with tempfile.TemporaryDirectory(prefix="flsdb-load-") as tmp:
            loader = _Loader(con, Path(tmp), load_time)
            order: list[tuple[str, FileOutcome | None]] = []  # (rel or sha, outcome)
            disable = None if progress is None else not progress
            for rel_os, path in tqdm(files, desc="Loading", unit="file", disable=disable):
                rel = _printable(rel_os)
                try:
                    data, sig = read_stable(path)
                except FileRefused as e:
                    order.append((rel, FileOutcome(rel, "", "refused", reason=str(e),
                                                   kind=e.kind, rel_os=rel_os)))
                    continue
                sha = hashlib.sha256(data).hexdigest()
                if sha in known:
                    src, status = known[sha]
                    note = "already loaded" if src == rel else f"same content as {_escaped(src)}"
                    if status == "rejected":
                        note += ", rejected"
                    order.append((rel, FileOutcome(rel, sha, "unchanged", reason=note,
                                                   previously_rejected=status == "rejected",
                                                   rel_os=rel_os)))
                    continue
                known[sha] = (rel, "pending")
                loader.add(rel, data, sha, path=path, sig=sig, rel_os=rel_os)
                order.append((sha, None))
            loader.flush()
            for key, outcome in order:
                result.files.append(outcome if outcome is not None else loader.outcomes[key])
            result.files += [FileOutcome(_printable(n.rel), "", n.status, reason=n.reason,
                                         kind=n.kind, rel_os=n.rel) for n in not_read]
            _record_not_loaded(con, [f for f in result.files
                                     if f.status in ("skipped", "refused")], loader.next_order)
            con.execute("CHECKPOINT")
    finally:
        con.close()
    result.seconds = time.perf_counter() - t0
    return result


# --------------------------------------------------------------------------------------------
# Re-checking rejects after a registry change: `flsdb recheck-rejects`
# --------------------------------------------------------------------------------------------

@dataclass
class RecheckResult:
    candidates: int = 0          # rejects for an unknown FLS code whose FLS the registry now knows
    moved: int = 0               # of those, now accepted (moved to raw.submission_records)
    rejected_again: int = 0      # of those, rejected under a later rule (reason updated)
    not_recheckable: int = 0     # from files loaded before column_order was recorded
    files: int = 0

    def summary(self) -> str:
        text = (f"Re-checked {self.candidates:,} row(s) rejected for an FLS code the registry now "
                f"knows: {self.moved:,} accepted (moved to raw.submission_records with their file, "
                f"line and load order), {self.rejected_again:,} still rejected under a later "
                f"rule (reason updated), in {self.files:,} file(s).")
        if self.not_recheckable:
            text += (f" {self.not_recheckable:,} row(s) come from files loaded before the column "
                     "order was recorded and cannot be re-checked: load those files again under "
                     "a new name.")
        if self.moved:
            text += " Run `flsdb build`: staging restages every row after a recheck."
        return text


RECHECK_CANDIDATES_SQL = """
    SELECT r._file_sha256, r._line_number, r.raw_line, f.column_order, f.file_extract_date
    FROM raw.submission_rejects r JOIN raw.load_files f ON f.file_sha256 = r._file_sha256
    WHERE r.reject_code = 'unknown_fls_code'
      AND upper(_code_text(r.fls_code)) IN (SELECT upper(fls_code) FROM _registry)
    ORDER BY r._load_order, r._line_number
"""


def recheck_rejects(warehouse_path: Path | str, registry_path: Path | str | None = None,
                    lock_timeout: float | None = None,
                    load_time: datetime | None = None) -> RecheckResult:
    """Re-check every row rejected as ``unknown_fls_code`` whose FLS code the registry now holds.

    Each such row is checked again with every contract rule (the same SQL as a load, against its
    file's extract date). A row that passes moves from raw.submission_rejects to
    raw.submission_records with its lineage unchanged (file sha256, source file, line, load order,
    load time); its file's rows_accepted / rows_rejected move with it (rows read = accepted +
    rejected still holds) and rows_accepted_on_recheck counts it, which makes the next build
    restage (staging's inputs fingerprint). A row that now breaks a later rule stays rejected
    with the new code and reason. One transaction: all or nothing.
    """
    warehouse = Path(warehouse_path)
    registry = Path(registry_path) if registry_path else paths.seeds_dir() / "fls_registry.csv"
    if lock_timeout is None:
        lock_timeout = float(os.environ.get(LOCK_TIMEOUT_ENV) or 0)
    if not warehouse.exists():
        raise LoadError(f"Warehouse {warehouse} does not exist: nothing to re-check.")
    result = RecheckResult()
    con = _connect(warehouse, lock_timeout)
    try:
        ensure_schema(con)
        _read_registry(con, registry)
        with tempfile.TemporaryDirectory(prefix="flsdb-recheck-") as tmp:
            loader = _Loader(con, Path(tmp), load_time)
            found = con.execute(RECHECK_CANDIDATES_SQL).fetchall()
            result.candidates = len(found)
            keys, values, lines, extracts = [], [], [], []
            for sha, line, raw_line, order, extract in found:
                if not order:
                    result.not_recheckable += 1
                    continue
                header = json.loads(order)
                fields = [v.replace(CR_PLACEHOLDER, "\r") for v in next(csv.reader(io.StringIO(
                    raw_line.replace("\r", CR_PLACEHOLDER), newline="")), [])]
                if len(fields) != len(header):
                    result.not_recheckable += 1
                    continue
                by_name = dict(zip(header, fields))
                keys.append((sha, line))
                values.append([by_name.get(c) if by_name.get(c) != "" else None
                               for c in CONTRACT_COLUMNS])
                lines.append(line)
                extracts.append(extract)
            if not keys:
                return result
            stage = pa.table({"_fid": pa.array([0] * len(keys), type=pa.int32()),
                              **{c: pa.array([v[i] for v in values], type=pa.string())
                                 for i, c in enumerate(CONTRACT_COLUMNS)}})
            linemap = pa.table({
                "_line_number": pa.array(lines, type=pa.int64()),
                "_end_line": pa.array(lines, type=pa.int64()),
                "_extract": pa.array(extracts, type=pa.date32()),
                "_sha": pa.array([k[0] for k in keys], type=pa.string()),
            })
            con.register("_stage_in", stage)
            con.execute("INSERT INTO _stage SELECT * FROM _stage_in")
            con.unregister("_stage_in")
            con.register("_linemap", linemap)
            try:
                con.execute(_final_sql())
            finally:
                con.unregister("_linemap")
            cols = ", ".join("f." + _q(c) for c in CONTRACT_COLUMNS)
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute(f"""
                    INSERT INTO raw.submission_records
                    SELECT {cols}, r._file_sha256, r._source_file, r._line_number, r._load_order,
                           r._loaded_at
                    FROM _final f JOIN raw.submission_rejects r
                      ON r._file_sha256 = f._sha AND r._line_number = f._line_number
                     AND r.reject_code = 'unknown_fls_code'
                    WHERE f._rule IS NULL ORDER BY r._load_order, r._line_number""")
                moved = dict(con.execute(
                    "SELECT _sha, count(*) FROM _final WHERE _rule IS NULL GROUP BY _sha"
                ).fetchall())
                con.execute(f"""
                    UPDATE raw.submission_rejects r
                    SET reject_code = {_CODES_SQL}[f._rule], column_name = {_COLUMNS_SQL}[f._rule],
                        reject_reason = {_REASON_SQL.replace("CASE _rule", "CASE f._rule")}
                    FROM (SELECT * FROM _final WHERE _rule IS NOT NULL) f
                    WHERE r._file_sha256 = f._sha AND r._line_number = f._line_number
                      AND r.reject_code = 'unknown_fls_code'
                      AND {_CODES_SQL}[f._rule] <> 'unknown_fls_code'""")
                result.rejected_again = con.execute(
                    f"SELECT count(*) FROM _final WHERE _rule IS NOT NULL "
                    f"AND {_CODES_SQL}[_rule] <> 'unknown_fls_code'").fetchone()[0]
                con.execute("""
                    DELETE FROM raw.submission_rejects r USING _final f
                    WHERE r._file_sha256 = f._sha AND r._line_number = f._line_number
                      AND r.reject_code = 'unknown_fls_code' AND f._rule IS NULL""")
                for sha, n in moved.items():
                    con.execute(
                        "UPDATE raw.load_files SET rows_accepted = rows_accepted + ?, "
                        "rows_rejected = rows_rejected - ?, rows_accepted_on_recheck = "
                        "coalesce(rows_accepted_on_recheck, 0) + ? WHERE file_sha256 = ?",
                        [n, n, n, sha])
                con.execute("COMMIT")
            except BaseException:
                _rollback(con)
                raise
            result.moved = sum(moved.values())
            result.files = len({k[0] for k in keys})
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return result
