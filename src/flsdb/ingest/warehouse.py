"""The warehouse side of a load: opening the DuckDB file for writing (one writer at a time,
"Warehouse busy"), the ``raw`` schema (docs/raw-schema.md), the FLS registry the checks read, and
the errors that stop a whole load."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import duckdb

from flsdb.ingest.columns import CONTRACT_COLUMNS, _lit, _q

# Seconds to wait for a busy warehouse before giving up (0: fail at once), read by
# flsdb.settings.lock_timeout. Overridden by the lock_timeout argument of load_landing.
LOCK_TIMEOUT_ENV = "FLSDB_LOCK_TIMEOUT"


class LoadError(click.ClickException):
    """A problem that stops the whole load (landing missing, warehouse locked, no registry)."""


class WarehouseLockedError(LoadError):
    """Another process holds the warehouse: the message starts with "Warehouse busy". Exit code 4
    (flsdb.failures.EXIT_CODES["warehouse_busy"], docs/reliability.md)."""

    exit_code = 4


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
        missing_since TIMESTAMP,
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
    # `flsdb withdraw` (withdraw.py): a file (by content) or a record (FLS code + Record ID, in
    # every file) taken out of the audit, with who, when and why; revoked, never deleted.
    """CREATE TABLE IF NOT EXISTS raw.withdrawals (
        withdrawal_id BIGINT PRIMARY KEY,
        withdrawal_kind VARCHAR NOT NULL CHECK (withdrawal_kind IN ('file', 'record')),
        file_sha256 VARCHAR,
        source_file VARCHAR,
        fls_code VARCHAR,
        record_id VARCHAR,
        withdrawn_by VARCHAR NOT NULL,
        withdrawn_at TIMESTAMP NOT NULL,
        reason VARCHAR NOT NULL,
        revoked_by VARCHAR,
        revoked_at TIMESTAMP,
        revoke_reason VARCHAR,
        CHECK ((withdrawal_kind = 'file' AND file_sha256 IS NOT NULL)
               OR (withdrawal_kind = 'record' AND fls_code IS NOT NULL AND record_id IS NOT NULL))
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
    ("missing_since", "TIMESTAMP"),  # a loaded file no longer in the landing folder: first noticed
]
LOAD_FILES_COLUMNS = [
    "file_sha256", "source_file", "file_size_bytes", "detected_encoding", "status",
    "rejection_reason", "rows_read", "rows_accepted", "rows_rejected", "file_extract_date",
    "load_order", "loaded_at", "source_file_escaped", "load_warnings", "column_order"]


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    # One transaction: a process killed while creating the schema leaves all of it or none
    # (never raw.load_files without raw.submission_rejects).
    with transaction(con):
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


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block as one transaction: commit at its end; on any error (an interrupt too) roll
    back and re-raise the original error. After a fatal I/O error (a full disk) DuckDB has often
    ended the transaction itself, and ROLLBACK would raise anew, hiding the cause."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
