"""Operational failures at the `flsdb` command-line boundary: one line, a documented exit code.

A read-only, truncated or corrupt warehouse, a full disk, or a warehouse another process holds
would otherwise end every command in a DuckDB (or C++) traceback that tells the user nothing. The
CLI (`flsdb.cli.main`) catches every exception once, here, classifies it by kind and prints one
line that says what to do. The table of exit codes is in docs/reliability.md and the README.
Set FLSDB_DEBUG=1 to see the traceback instead.

Nothing here retries or repairs: the loader commits each file in its own transaction, so what was
loaded before a failure stays intact, and the command can simply be run again.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass

# kind -> exit code. 1 (validation FAIL, dbt failure, other clear errors), 2 (usage) and
# 3 (publication refused by the quality gate) are the commands' own; the history, the published
# tier and the sign-off share the codes below by kind (busy 4, not writable 5, unreadable 6).
EXIT_CODES = {
    "history_error": 1,
    "publication_refused": 3,
    "warehouse_busy": 4,
    "history_busy": 4,
    "publication_busy": 4,
    "warehouse_read_only": 5,
    "history_read_only": 5,
    "warehouse_corrupt": 6,
    "history_corrupt": 6,
    "disk_full": 7,
    "configuration": 8,
    "not_signed_off": 9,
    "internal": 70,
}


@dataclass
class Failure:
    kind: str
    message: str

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]


class ConfigurationError(Exception):
    """A setting the command cannot work with (a pseudonym key too short, for example)."""


class OperationalError(Exception):
    """A failure whose kind (a key of EXIT_CODES) and one-line message are already known: the
    extract history (flsdb.publish.history), the publication lock (flsdb.publish.lock), the
    sign-off (flsdb.quality.signoff). The message is shown as it is."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        if kind not in EXIT_CODES:
            raise ValueError(kind)
        self.kind = kind

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]


# (kind, errno values, patterns in the message), tried in this order on every exception of the
# chain (a failed ROLLBACK after a full disk must not hide the full disk).
_KINDS = [
    ("disk_full", {errno.ENOSPC, errno.EDQUOT}, [r"No space left on device", r"Disk quota"]),
    ("warehouse_busy", set(), [r"Could not set lock", r"Conflicting lock", r"^Warehouse busy"]),
    ("warehouse_read_only", {errno.EROFS, errno.EACCES, errno.EPERM},
     [r"Read-only file system", r"Permission denied", r"read-only mode",
      r"Operation not permitted"]),
    ("warehouse_corrupt", set(),
     [r"not a valid DuckDB database file", r"Could not read enough bytes", r"[Cc]orrupt",
      r"checksum", r"Failure while replaying WAL", r"Serialization Error",
      r"database has been invalidated"]),
]

_PATH = re.compile(r'"(/[^"]+)"')


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def classify(exc: BaseException, warehouse: str) -> Failure | None:
    """The kind of operational failure exc is (looking through its chain), or None."""
    if isinstance(exc, ConfigurationError):
        return Failure("configuration", f"{exc} Nothing was changed.")
    if isinstance(exc, OperationalError):
        return Failure(exc.kind, str(exc))
    for kind, errnos, patterns in _KINDS:
        for e in _chain(exc):
            text = str(e)
            if (isinstance(e, OSError) and e.errno in errnos) or any(
                    re.search(p, text, re.MULTILINE) for p in patterns):
                return Failure(kind, _message(kind, e, warehouse))
    return None


def _message(kind: str, exc: BaseException, warehouse: str) -> str:
    detail = _first_line(exc)
    where = _PATH.search(str(exc))
    path = where.group(1) if where else warehouse
    if kind == "warehouse_busy":
        if detail.startswith("Warehouse busy"):
            return detail
        pid = re.search(r"PID (\d+)", str(exc))
        who = f" (process {pid.group(1)})" if pid else ""
        return (f"Warehouse busy: {path} is in use by another process{who}; DuckDB allows one "
                "writer at a time. Nothing was changed. Close the other program (dbt, a notebook, "
                "a BI tool or another flsdb command), or set FLSDB_LOCK_TIMEOUT=<seconds> for "
                "`flsdb load` to wait, then run the command again.")
    if kind == "warehouse_read_only":
        return (f"Warehouse not writable: {path} (or its folder) cannot be written ({detail}). "
                "Nothing was changed. Make it writable, or point FLSDB_WAREHOUSE at a writable "
                "place, then run the command again.")
    if kind == "warehouse_corrupt":
        return (f"Warehouse unreadable: {path} is not a complete DuckDB database, it may be "
                f"truncated or corrupt ({detail}). Nothing was changed. Restore it from a backup, "
                "or move it aside and rebuild it from the landing folder: flsdb load, then "
                "flsdb build.")
    if kind == "disk_full":
        return (f"Disk full: no space left while writing ({detail}). The unfinished step was "
                "rolled back; everything committed before it is intact. Free some space, then "
                "run the command again.")
    raise ValueError(kind)


def internal(exc: BaseException) -> Failure:
    return Failure("internal", f"Unexpected error ({type(exc).__name__}: {_first_line(exc)}). "
                   "Nothing further was changed; committed data is intact. Run again with "
                   "FLSDB_DEBUG=1 to see the traceback, and report it.")


# Lines of dbt's output that name an operational failure (dbt prints DuckDB's message, not a
# Python exception): `flsdb build` scans them to give the same one line and exit code.
def classify_text(text: str, warehouse: str) -> Failure | None:
    return classify(RuntimeError(text), warehouse) if text else None
