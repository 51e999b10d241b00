"""From a file's bytes to text the CSV reader can take: binary and empty files, the encoding
(never guessed: Windows-1252 only when certain), the header (exactly the contract columns, in
any order), line ends (mixed CRLF/LF, a lone CR kept as data), and the redaction of
identifier-shaped text from every message. Each failure is a FileRejected with a plain reason."""

from __future__ import annotations

import bisect
import csv
import io
import re

import numpy as np

from flsdb import contract
from flsdb.ingest.columns import CONTRACT_COLUMNS

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
