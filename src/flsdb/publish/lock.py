"""One publisher at a time, and readers that see one publication whole.

Two locks (fcntl.flock) in `published/`, held from before `flsdb publish`'s gate check until the
published tier, the restricted extract, the history and approval.json have all changed:

- `.publish.lock`, exclusive, for publishers only: a second publisher is told at once that
  publication is busy (exit 4) and touches nothing;
- `.tier.lock`, exclusive for the publisher, shared for readers: `flsdb report` holds it shared
  while it takes its snapshot of the published tier (the DuckDB file, the manifest, approval.json
  and the history's rows), waiting for a publication in progress to finish, so that every page and
  every download comes from one extract; a publisher waits for such a snapshot (a second or two)
  rather than calling itself busy.

The operating system releases a lock when its holder exits, even after `kill -9`.

Under the exclusive lock, and only then, `remove_leftovers` deletes what a publisher killed
part-way left behind: temporary DuckDB files (with their write-ahead logs), unfinished Parquet
versions, temporary links and manifests, and temporary or retired copies of the restricted
extract. The published version and the one before it (a reader may still be scanning it) stay.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from collections.abc import Callable, Iterator

from flsdb.failures import OperationalError

LOCK_NAME = ".publish.lock"
TIER_LOCK_NAME = ".tier.lock"
#: How long a reader waits for a publication in progress, and a publisher for a reader's
#: snapshot, in seconds.
WAIT_SECONDS = 600


class PublicationBusy(OperationalError):
    def __init__(self, message: str):
        super().__init__(message, "publication_busy")


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return f" (process {text})" if text.isdigit() else ""


def _open(path: Path, writable_only: bool) -> int | None:
    """The lock file's descriptor; None when it cannot be made (a read-only tier) and
    `writable_only` is False."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError as exc:
        if writable_only:
            raise OperationalError(
                f"Published tier not writable: {path.parent} cannot be written ({exc.strerror}). "
                "Nothing was published. Make it writable, or point FLSDB_OUTPUT at a writable "
                "place.", "warehouse_read_only") from None
        return os.open(path, os.O_RDONLY) if path.exists() else None


def _wait_for(fd: int, mode: int, wait_seconds: float, on_wait: Callable[[str], None] | None,
              what: str) -> None:
    deadline = time.monotonic() + wait_seconds
    told = False
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() > deadline:
            raise PublicationBusy(f"Publication busy: {what} has not finished after "
                                  f"{wait_seconds:.0f} s. Nothing was changed; run the command "
                                  "again when it has finished.")
        if not told and on_wait is not None:
            on_wait(f"Waiting for {what} to finish...")
            told = True
        time.sleep(0.1)


@contextmanager
def exclusive(out_dir: Path, on_wait: Callable[[str], None] | None = None,
              wait_seconds: float = WAIT_SECONDS) -> Iterator[None]:
    """Be the one publisher of `out_dir` (or raise PublicationBusy at once), then hold the tier
    against readers (waiting for a report's snapshot to be taken)."""
    published = Path(out_dir) / "published"
    try:
        published.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        pass                                      # _open says so
    fd = _open(published / LOCK_NAME, writable_only=True)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise PublicationBusy(
                f"Publication busy: another `flsdb publish`{_holder(fd)} is publishing to "
                f"{published}. Nothing was changed by this one; wait for it to finish, then run "
                "`flsdb report` (or this command again).") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        tier = _open(published / TIER_LOCK_NAME, writable_only=True)
        try:
            _wait_for(tier, fcntl.LOCK_EX, wait_seconds, on_wait, "a report reading the published tier")
            yield
        finally:
            os.close(tier)
    finally:
        os.close(fd)            # releases the lock


@contextmanager
def shared(out_dir: Path, on_wait: Callable[[str], None] | None = None,
           wait_seconds: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the published tier of `out_dir` against publishers, waiting for a publication in
    progress to finish. Without a published tier there is nothing to hold."""
    published = Path(out_dir) / "published"
    fd = _open(published / TIER_LOCK_NAME, writable_only=False) if published.is_dir() else None
    if fd is None:
        yield
        return
    try:
        holder = os.open(published / LOCK_NAME, os.O_RDONLY) if (published / LOCK_NAME).exists() else None
        who = _holder(holder) if holder is not None else ""
        if holder is not None:
            os.close(holder)
        _wait_for(fd, fcntl.LOCK_SH, wait_seconds, on_wait, f"the publication in progress{who}")
        yield
    finally:
        os.close(fd)


def _kept_parquet_versions(published: Path) -> set[str]:
    """The Parquet version the link points at, and the ones the manifest names (the published
    one and the one before it)."""
    kept = set()
    link = published / "parquet"
    if link.is_symlink():
        kept.add(Path(os.readlink(link)).name)
    try:
        manifest = json.loads((published / "manifest.json").read_text(encoding="utf-8"))
        kept |= {manifest.get("parquet_version"), manifest.get("previous_parquet_version")}
    except (OSError, ValueError):
        pass
    return {name for name in kept if name}


def remove_leftovers(out_dir: Path, restricted_name: str, published_db_name: str) -> list[Path]:
    """Delete what a killed publisher left behind. Call only while holding `exclusive`."""
    out_dir = Path(out_dir)
    published = out_dir / "published"
    removed: list[Path] = []
    candidates: list[Path] = []
    if published.is_dir():
        kept = _kept_parquet_versions(published)
        for path in published.iterdir():
            name = path.name
            staged = name.startswith((f".{published_db_name}.tmp-", ".manifest.json.tmp-", ".parquet-link-"))
            old_version = name.startswith(".parquet-") and name not in kept and not path.is_symlink()
            if staged or old_version:
                candidates.append(path)
    if out_dir.is_dir():
        candidates += [p for p in out_dir.iterdir()
                       if p.name.startswith((f".{restricted_name}-tmp-", f".{restricted_name}-old-",
                                             ".approval.json.tmp-"))]
    for path in candidates:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
