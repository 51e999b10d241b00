"""Files and folders written whole, so that no reader ever sees half of one, and their hashes."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path


def swap_in_folder(new: Path, destination: Path) -> None:
    """Put the fully written folder `new` at `destination`, in place of any older one.

    Two renames within one parent folder: the old version is moved aside, the new one moved in,
    then the old one removed. `new` must sit in the same folder as `destination`.
    """
    retired = None
    if destination.exists():
        retired = destination.with_name(f".{destination.name}-old-{uuid.uuid4().hex[:8]}")
        destination.rename(retired)
    new.rename(destination)
    if retired is not None:
        shutil.rmtree(retired, ignore_errors=True)


def fsync_path(path: Path) -> None:
    """Flush a file's or a folder's entries to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomically(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, flush it, and rename it over `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_of(*paths: Path) -> str:
    """The SHA-256 of the bytes of `paths`, one after the other (a file that does not exist adds
    nothing)."""
    digest = hashlib.sha256()
    for path in paths:
        if not Path(path).exists():
            continue
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
