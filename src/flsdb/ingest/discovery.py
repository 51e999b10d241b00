"""Finding the files of the landing folder and reading each one consistently: which entries are
candidates and which are skipped or refused, and why (discover_all); the names as stored and in
their unambiguous escaped form; the bytes read while the file stays the same (read_stable) and
the re-check just before committing (changed_since)."""

from __future__ import annotations

import errno
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path


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
