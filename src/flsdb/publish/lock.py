"""One publisher at a time, and readers that see one publication whole.

`flsdb publish` holds an exclusive lock (fcntl.flock) on `published/.publish.lock` from before its
gate check until the published tier, the restricted extract, the history and approval.json have
all changed: a second publisher is told at once that publication is busy (exit 4) and touches
nothing. `flsdb report` holds the same lock shared while it takes its snapshot of the published
tier (the DuckDB file, the manifest, approval.json and the history's rows), waiting for a
publication in progress to finish, so that every page and every download comes from one extract.
The operating system releases the lock when its holder exits, even after `kill -9`.

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
from typing import Callable, Iterator

from flsdb.failures import OperationalError

LOCK_NAME = ".publish.lock"
#: How long `flsdb report` waits for a publication in progress, in seconds.
READ_WAIT_SECONDS = 600


class PublicationBusy(OperationalError):
    def __init__(self, message: str):
        super().__init__(message, "publication_busy")


def _lock_path(out_dir: Path) -> Path:
    return Path(out_dir) / "published" / LOCK_NAME


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return f" (process {text})" if text.isdigit() else ""


@contextmanager
def exclusive(out_dir: Path) -> Iterator[None]:
    """Hold the publication lock of `out_dir`, or raise PublicationBusy at once."""
    lock_path = _lock_path(out_dir)
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError as exc:
        raise OperationalError(
            f"Published tier not writable: {lock_path.parent} cannot be written ({exc.strerror}). "
            "Nothing was published. Make it writable, or point FLSDB_OUTPUT at a writable place.",
            "warehouse_read_only") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise PublicationBusy(
                f"Publication busy: another `flsdb publish`{_holder(fd)} is publishing to "
                f"{Path(out_dir) / 'published'}. Nothing was changed by this one; wait for it to "
                "finish, then run `flsdb report` (or this command again).") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)            # releases the lock


@contextmanager
def shared(out_dir: Path, on_wait: Callable[[str], None] | None = None,
           wait_seconds: float = READ_WAIT_SECONDS) -> Iterator[None]:
    """Hold the publication lock of `out_dir` shared, waiting for a publisher to finish (at most
    `wait_seconds`, then PublicationBusy). Without a published tier there is nothing to lock."""
    lock_path = _lock_path(out_dir)
    if not lock_path.parent.is_dir():
        yield
        return
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError:
        if not lock_path.exists():      # a read-only tier that no flsdb publish is writing
            yield
            return
        fd = os.open(lock_path, os.O_RDONLY)
    try:
        deadline = time.monotonic() + wait_seconds
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.monotonic() > deadline:
                raise PublicationBusy(
                    f"Publication busy: a publication{_holder(fd)} to {lock_path.parent} has not "
                    f"finished after {wait_seconds:.0f} s. Nothing was changed; run the command "
                    "again when it has finished.")
            if not told and on_wait is not None:
                on_wait(f"Waiting for the publication in progress{_holder(fd)} to finish...")
                told = True
            time.sleep(0.2)
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
            if name.startswith(f".{published_db_name}.tmp-") or name.startswith(".manifest.json.tmp-") \
                    or name.startswith(".parquet-link-"):
                candidates.append(path)
            elif name.startswith(".parquet-") and name not in kept and not path.is_symlink():
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
