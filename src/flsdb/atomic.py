"""Replacing a whole output folder so that no reader ever sees half of it."""

from __future__ import annotations

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
