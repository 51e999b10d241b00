"""`flsdb withdraw`: take a file or a record out of the audit, recorded with who, when and why.

A service sent the wrong file, or a patient objected: the rows must leave every extract from the
next build on, and the audit trail must say who took them out, when and why. A withdrawal is a
row of ``raw.withdrawals`` (docs/raw-schema.md); nothing is deleted from the raw tables, so the
file's counts still hold (rows read = accepted + rejected) and the withdrawn rows are counted as
withdrawn, not lost. Staging leaves out every row a withdrawal covers
(models/staging/fls_db/stg_fls_db__withdrawals.sql; the incremental staging model deletes rows
already staged in a pre-hook, without a full restage), so the marts, the data-quality facts
(a `withdrawn` problem per withdrawal), the published tier and the extract history's changes
(results restated) follow on the next `flsdb refresh` or `flsdb run`.

What a withdrawal covers:
- ``--file``: that file's content (its sha256), wherever and whenever it was loaded. A corrected
  file (other bytes) is a new submission and is loaded as usual; the same bytes sent again stay
  withdrawn.
- ``--record FLS_CODE:RECORD_ID``: every row of that record, in every file, already loaded or
  loaded later, until the withdrawal is revoked (the FLS code and Record ID are matched as staging
  reads them: the code trimmed and case-insensitive, the Record ID trimmed).
A withdrawal can be revoked (``--revoke ID``; the next build restages every row, as after a
recheck); it is never deleted. Withdrawing what is already withdrawn changes nothing.

The reason and the name are shown in the data-quality report, so they must hold no patient
identifier: text shaped like an NHS number, a date or a postcode is refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from flsdb import paths
from flsdb.ingest.decoding import redact
from flsdb.ingest.discovery import _escaped
from flsdb.ingest.row_checks import MACROS
from flsdb.ingest.warehouse import LoadError, _connect, ensure_schema, transaction


class WithdrawError(LoadError):
    """The withdrawal cannot be made (nothing matches, ambiguous, not loaded): exit 1."""


@dataclass
class Withdrawal:
    withdrawal_id: int
    kind: str
    file_sha256: str | None
    source_file: str | None
    fls_code: str | None
    record_id: str | None
    withdrawn_by: str
    withdrawn_at: datetime
    reason: str
    revoked_by: str | None = None
    revoked_at: datetime | None = None
    revoke_reason: str | None = None
    rows_covered: int = 0              # accepted raw rows it covers now

    @property
    def target(self) -> str:
        if self.kind == "file":
            return f"file {_escaped(self.source_file or '?')} (sha256 {self.file_sha256[:12]}…)"
        return f"record {self.fls_code}:{self.record_id}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


COLUMNS = ("withdrawal_id, withdrawal_kind, file_sha256, source_file, fls_code, record_id, "
           "withdrawn_by, withdrawn_at, reason, revoked_by, revoked_at, revoke_reason")

# Accepted raw rows a withdrawal covers, matched as staging matches them
# (stg_fls_db__withdrawals, stg_fls_db__submission_records): the file's sha256; or the FLS code
# (whitespace trimmed and collapsed, upper case: _code_text) and the trimmed Record ID.
ROWS_COVERED_SQL = """
    SELECT count(*) FROM raw.submission_records r
    WHERE CASE WHEN ? = 'file' THEN r._file_sha256 = ?
               ELSE trim(r."Record ID") = trim(?)
                    AND upper(_code_text(r."FLS Code")) = upper(_code_text(?)) END
"""


def check_free_text(option: str, text: str) -> str:
    """text stripped; ValueError when it is empty or holds something shaped like an NHS number,
    a date or a postcode (it is shown in the data-quality report)."""
    text = (text or "").strip()
    if not text:
        raise ValueError(f"{option} must not be empty.")
    if redact(text) != text:
        raise ValueError(
            f"{option} holds something shaped like an NHS number, a date or a postcode; it is shown "
            "in the data-quality report, so it must hold no patient identifier. Write it without "
            "(the record is named by --record, the file by --file).")
    return text


def parse_record(spec: str) -> tuple[str, str]:
    """FLS_CODE:RECORD_ID (split at the first colon) -> (FLS code, Record ID), both stripped."""
    fls, sep, record = (spec or "").partition(":")
    if not sep or not fls.strip() or not record.strip():
        raise ValueError("--record must be FLS_CODE:RECORD_ID, for example RX1:R00042 (the FLS "
                         "code, a colon, then the Record ID as the FLS sends it).")
    return fls.strip(), record.strip()


def _open(warehouse: Path, lock_timeout: float) -> duckdb.DuckDBPyConnection:
    if not warehouse.exists():
        raise WithdrawError(f"Warehouse {warehouse} does not exist: nothing has been loaded, so "
                            "there is nothing to withdraw.")
    con = _connect(warehouse, lock_timeout)
    try:
        ensure_schema(con)
        for macro in MACROS:
            con.execute(macro)
    except BaseException:
        con.close()
        raise
    return con


def _rows(con: duckdb.DuckDBPyConnection, where: str = "", params=None) -> list[Withdrawal]:
    found = [Withdrawal(*row) for row in con.execute(
        f"SELECT {COLUMNS} FROM raw.withdrawals {where} ORDER BY withdrawal_id",
        params or []).fetchall()]
    for w in found:
        w.rows_covered = con.execute(ROWS_COVERED_SQL, [
            w.kind, w.file_sha256, w.record_id, w.fls_code]).fetchone()[0]
    return found


def _file_content(con: duckdb.DuckDBPyConnection, spec: str, landing: Path) -> tuple[str, str]:
    """The (sha256, source_file) a --file value names among the files loaded (or rejected whole):
    ``sha256:<hex prefix>``; a path to a file on disk (by its bytes); or a name as it was loaded
    (relative to the landing folder), when the file is gone from it."""
    loaded = "status IN ('loaded', 'rejected')"
    if spec.startswith("sha256:"):
        prefix = spec[len("sha256:"):].strip().lower()
        if len(prefix) < 8 or any(c not in "0123456789abcdef" for c in prefix):
            raise ValueError("--file sha256:<hex> needs at least 8 hexadecimal digits of the "
                             "file's sha256 (flsdb withdraw --list and raw.load_files show them).")
        found = con.execute(f"SELECT file_sha256, source_file, loaded_at, rows_accepted FROM "
                            f"raw.load_files WHERE {loaded} AND starts_with(file_sha256, ?)",
                            [prefix]).fetchall()
        what = f"whose sha256 starts with {prefix}"
    else:
        given = Path(spec)
        on_disk = next((p for p in ([given] if given.is_absolute() else [Path.cwd() / given,
                                                                           landing / given])
                        if p.is_file()), None)
        if on_disk is not None:
            sha = hashlib.sha256(on_disk.read_bytes()).hexdigest()
            found = con.execute(f"SELECT file_sha256, source_file, loaded_at, rows_accepted FROM "
                                f"raw.load_files WHERE {loaded} AND file_sha256 = ?", [sha]
                                ).fetchall()
            if not found:
                earlier = con.execute(
                    f"SELECT file_sha256 FROM raw.load_files WHERE {loaded} AND source_file = ?",
                    [_relative(on_disk, landing)]).fetchall()
                hint = (" Earlier contents loaded under that name: " + ", ".join(
                    f"sha256:{s[:12]}" for (s,) in earlier) + " (pass one of those to --file)."
                    if earlier else "")
                raise WithdrawError(
                    f"The content of {on_disk} has never been loaded, so nothing of it is in the "
                    "audit: remove it from the landing folder instead (or it will be loaded by "
                    f"the next flsdb load).{hint}")
            return found[0][0], found[0][1]
        name = _relative(given, landing)
        found = con.execute(f"SELECT file_sha256, source_file, loaded_at, rows_accepted FROM "
                            f"raw.load_files WHERE {loaded} AND source_file = ? "
                            f"ORDER BY load_order", [name]).fetchall()
        what = f"loaded as {name!r}"
    if not found:
        raise WithdrawError(f"No loaded file {what}: nothing to withdraw (raw.load_files lists "
                            "every file loaded, with its name and sha256).")
    if len(found) > 1:
        raise WithdrawError(
            f"{len(found)} different contents were loaded {what}: "
            + "; ".join(f"sha256:{sha[:12]} loaded {at:%Y-%m-%d %H:%M} UTC, {rows:,} rows"
                        for sha, _name, at, rows in found)
            + ". Name the one to withdraw with --file sha256:<first 12 digits>.")
    return found[0][0], found[0][1]


def _relative(path: Path, landing: Path) -> str:
    """A path as raw.load_files names it: relative to the landing folder, with '/'."""
    try:
        return path.resolve().relative_to(landing.resolve()).as_posix()
    except (ValueError, OSError):
        return path.as_posix()


@dataclass
class Outcome:
    withdrawal: Withdrawal
    created: bool           # False: it was already withdrawn (or revoked) and nothing changed

    def __str__(self) -> str:
        w = self.withdrawal
        if not self.created:
            state = ("Already withdrawn" if w.is_active else "Already revoked")
            return (f"{state}: withdrawal {w.withdrawal_id} of {w.target}, by {w.withdrawn_by} "
                    f"on {w.withdrawn_at:%Y-%m-%d %H:%M} UTC ({w.reason}). Nothing was changed.")
        if not w.is_active:
            return (f"Revoked withdrawal {w.withdrawal_id} of {w.target} (by {w.revoked_by}: "
                    f"{w.revoke_reason}). Its {w.rows_covered:,} row(s) come back into the audit "
                    "with the next `flsdb refresh` (staging restages every row after a revocation).")
        note = ""
        if w.kind == "record" and w.rows_covered == 0:
            note = (" No row of that record is loaded yet: the withdrawal also covers any later "
                    "submission of it.")
        text = (f"Withdrawn: {w.target}, withdrawal {w.withdrawal_id} by {w.withdrawn_by} "
                f"({w.reason}); it covers {w.rows_covered:,} accepted row(s) now.{note} Recorded "
                "in raw.withdrawals. The next `flsdb refresh` (or flsdb run) leaves them out of "
                "staging, the marts, the data-quality report and the next extract, whose history "
                "shows the results restated.")
        if w.kind == "file":
            text += (" The file's bytes stay withdrawn if they are loaded again; remove the file "
                     "from the landing folder too.")
        return text


def withdraw(warehouse: Path, *, by: str, reason: str, file: str | None = None,
             record: str | None = None, landing: Path | None = None,
             lock_timeout: float = 0.0, now: datetime | None = None) -> Outcome:
    """Record a withdrawal of a file (``file``) or a record (``record``: FLS_CODE:RECORD_ID).
    Idempotent: an active withdrawal of the same content or record is returned unchanged."""
    if (file is None) == (record is None):
        raise ValueError("Give exactly one of --file or --record.")
    by = check_free_text("--by", by)
    reason = check_free_text("--reason", reason)
    con = _open(warehouse, lock_timeout)
    try:
        if file is not None:
            sha, source_file = _file_content(con, file, landing or paths.landing_dir())
            key = ("file", sha, None, None)
            same = _rows(con, "WHERE withdrawal_kind = 'file' AND file_sha256 = ? "
                              "AND revoked_at IS NULL", [sha])
        else:
            fls, record_id = parse_record(record)
            source_file = None
            key = ("record", None, fls, record_id)
            same = _rows(con, "WHERE withdrawal_kind = 'record' AND revoked_at IS NULL "
                              "AND trim(record_id) = trim(?) "
                              "AND upper(_code_text(fls_code)) = upper(_code_text(?))",
                         [record_id, fls])
        if same:
            return Outcome(same[0], created=False)
        at = (now or datetime.now(timezone.utc)).replace(tzinfo=None)
        with transaction(con):
            new_id = con.execute("SELECT coalesce(max(withdrawal_id), 0) + 1 FROM raw.withdrawals"
                                 ).fetchone()[0]
            con.execute(f"INSERT INTO raw.withdrawals ({COLUMNS}) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?::TIMESTAMP, ?, NULL, NULL, NULL)",
                        [new_id, key[0], key[1], source_file, key[2], key[3], by, at, reason])
        con.execute("CHECKPOINT")
        return Outcome(_rows(con, "WHERE withdrawal_id = ?", [new_id])[0], created=True)
    finally:
        con.close()


def revoke(warehouse: Path, withdrawal_id: int, *, by: str, reason: str,
           lock_timeout: float = 0.0, now: datetime | None = None) -> Outcome:
    """Revoke a withdrawal (its rows come back with the next build); idempotent."""
    by = check_free_text("--by", by)
    reason = check_free_text("--reason", reason)
    con = _open(warehouse, lock_timeout)
    try:
        found = _rows(con, "WHERE withdrawal_id = ?", [withdrawal_id])
        if not found:
            raise WithdrawError(f"There is no withdrawal {withdrawal_id} (flsdb withdraw --list "
                                "lists them).")
        if not found[0].is_active:
            return Outcome(found[0], created=False)
        at = (now or datetime.now(timezone.utc)).replace(tzinfo=None)
        with transaction(con):
            con.execute("UPDATE raw.withdrawals SET revoked_by = ?, revoked_at = ?::TIMESTAMP, "
                        "revoke_reason = ? WHERE withdrawal_id = ?", [by, at, reason, withdrawal_id])
        con.execute("CHECKPOINT")
        return Outcome(_rows(con, "WHERE withdrawal_id = ?", [withdrawal_id])[0], created=True)
    finally:
        con.close()


def list_withdrawals(warehouse: Path) -> list[Withdrawal]:
    """Every withdrawal, active and revoked, with the accepted rows each covers now."""
    if not warehouse.exists():
        return []
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                           "'raw' AND table_name = 'withdrawals'").fetchone()[0]:
            return []
        for macro in MACROS:
            con.execute(macro)
        return _rows(con)
    finally:
        con.close()


def format_list(withdrawals: list[Withdrawal]) -> str:
    if not withdrawals:
        return "No withdrawal recorded."
    lines = [f"{len(withdrawals)} withdrawal(s) ({sum(w.is_active for w in withdrawals)} active):"]
    for w in withdrawals:
        state = ("active" if w.is_active else
                 f"REVOKED by {w.revoked_by} on {w.revoked_at:%Y-%m-%d %H:%M} UTC "
                 f"({w.revoke_reason})")
        lines.append(f"  {w.withdrawal_id:>4}  {w.target}: {w.rows_covered:,} row(s); by "
                     f"{w.withdrawn_by} on {w.withdrawn_at:%Y-%m-%d %H:%M} UTC ({w.reason}); "
                     f"{state}")
    return "\n".join(lines)
