"""What a load did with each file: the per-file outcome, the run's result and summary table
(printed by `flsdb load`), and the records in ``raw.load_files`` of the files that were not
loaded (skipped by rule or refused), so that every file of the landing folder is accounted for."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from flsdb.ingest.discovery import _escaped
from flsdb.ingest.warehouse import LOAD_FILES_INSERT, transaction


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
class MissingFile:
    """A file loaded by an earlier run that this run did not find in the landing folder (neither
    its name nor its content): its rows still count in the audit until it is withdrawn."""
    source_file: str
    file_sha256: str
    loaded_at: datetime
    rows_accepted: int
    missing_since: datetime

    @property
    def display_name(self) -> str:
        return _escaped(self.source_file)


@dataclass
class LoadResult:
    warehouse: Path
    landing: Path
    files: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    missing: list[MissingFile] = field(default_factory=list)

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
        if self.missing:
            lines.append(self.missing_summary())
        return "\n".join(lines)

    def missing_summary(self) -> str:
        """The warning about loaded files no longer in the landing folder."""
        lines = [f"WARNING: {len(self.missing)} file(s) loaded earlier are no longer in the landing "
                 "folder; their rows still count in the audit (a file is never withdrawn just "
                 "because it was deleted):"]
        for m in self.missing:
            lines.append(f"  MISSING {m.display_name} (loaded {m.loaded_at:%Y-%m-%d}, "
                         f"{m.rows_accepted:,} accepted rows; missing since "
                         f"{m.missing_since:%Y-%m-%d %H:%M} UTC)")
        lines.append("  If a file was sent in error, withdraw it: flsdb withdraw --file NAME --by "
                     "YOUR-NAME --reason TEXT. If it was moved by mistake, put it back.")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary_table()


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
    with transaction(con):
        con.register("_load_files_df", table)
        try:
            con.execute(LOAD_FILES_INSERT, [loaded_at])
        finally:
            con.unregister("_load_files_df")


# Loaded files (not withdrawn) and whether this run saw them: by content or by name (a file replaced
# by a newer export under its name is a new version, not a missing file).
LOADED_NOT_WITHDRAWN_SQL = """
    SELECT f.file_sha256, f.source_file, f.loaded_at, f.rows_accepted, f.missing_since
    FROM raw.load_files f
    WHERE f.status = 'loaded' AND NOT EXISTS (
        SELECT 1 FROM raw.withdrawals w WHERE w.withdrawal_kind = 'file'
        AND w.revoked_at IS NULL AND w.file_sha256 = f.file_sha256)
    ORDER BY f.load_order
"""


def note_missing_from_landing(con: duckdb.DuckDBPyConnection, result: LoadResult) -> None:
    """Find the loaded files this run did not see in the landing folder (neither their content nor
    their name), record when that was first noticed (raw.load_files.missing_since; cleared when the
    file is back) and list them in result.missing. Nothing is withdrawn: deleting a file from the
    landing folder is not a withdrawal (flsdb withdraw is)."""
    seen_content = {f.file_sha256 for f in result.files if f.file_sha256}
    seen_names = {f.source_file for f in result.files}
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    newly, back = [], []
    for sha, name, loaded_at, rows, since in con.execute(LOADED_NOT_WITHDRAWN_SQL).fetchall():
        if sha in seen_content or name in seen_names:
            if since is not None:
                back.append(sha)
            continue
        if since is None:
            newly.append(sha)
        result.missing.append(MissingFile(name, sha, loaded_at, rows, since or now))
    if not newly and not back:
        return
    with transaction(con):
        for shas, value in ((newly, now), (back, None)):
            if shas:
                con.execute("UPDATE raw.load_files SET missing_since = ?::TIMESTAMP "
                            "WHERE list_contains(?, file_sha256)", [value, shas])
