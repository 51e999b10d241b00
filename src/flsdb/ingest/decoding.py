"""From a file's bytes to text the CSV reader can take: binary and empty files, the encoding
(never guessed: Windows-1252 only when certain), the header (exactly the contract columns, in
any order), line ends (mixed CRLF/LF, a lone CR kept as data), and the redaction of
identifier-shaped text from every message. Each failure is a FileRejected with a plain reason."""

from __future__ import annotations

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


# A carriage return inside a value, outside quotes, of a file whose lines end with LF (or CRLF):
# DuckDB's reader would take it for a line end, so it travels through the reader as this
# private-use character and is put back in every value and raw line (_restore_cr).
CR_PLACEHOLDER = "\ue000"


def visible(text: str) -> str:
    """text for a message, with the characters a reader could not see (or that would break the
    message's line) shown as names: a byte-order mark <U+FEFF>, a carriage return <CR> (also the
    loader's private stand-in for one, CR_PLACEHOLDER, which never reaches a message), a tab
    <TAB>, other control and invisible format characters <U+XXXX>."""
    out = []
    for c in text:
        if c == "\r" or c == CR_PLACEHOLDER:
            out.append("<CR>")
        elif c == "\t":
            out.append("<TAB>")
        elif c == "\n":
            out.append("<LF>")
        elif c == "\ufeff" or (not c.isprintable() and c != " "):
            out.append(f"<U+{ord(c):04X}>")
        else:
            out.append(c)
    return "".join(out)


class FileRejected(Exception):
    """The whole file is refused; the message is the plain-English reason."""


_MAGIC = [
    (b"PK\x03\x04", "a zip archive or Excel workbook (.xlsx)"),
    (b"%PDF", "a PDF document"),
    (b"\xd0\xcf\x11\xe0", "an old-style Office document (.xls/.doc)"),
    (b"\x1f\x8b", "a gzip-compressed file"),
]


# Re-saving as UTF-8, said once for every encoding message.
RESAVE_AS_UTF8 = ("Re-save it as UTF-8: in Excel, File > Save As > 'CSV UTF-8 (Comma delimited)'; "
                  "in Notepad or another editor, Save As with the encoding 'UTF-8'.")

_UTF8_BOM = b"\xef\xbb\xbf"
# Byte-order marks of the encodings the loader names but does not read, longest first (UTF-32 LE
# starts with the UTF-16 LE mark).
_OTHER_BOMS = [
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
]


def decode(data: bytes, warnings: list[str] | None = None) -> tuple[str, str]:
    """Return (text, detected_encoding) or raise FileRejected. Byte-order marks repeated at the
    start (a tool that added one to a file that had one) are all removed, with a warning
    appended to `warnings`: a mark at the start of a file is never data, and a second one would
    otherwise end up in the first column's name."""
    for magic, what in _MAGIC:
        if data.startswith(magic):
            raise FileRejected(f"Not a CSV file: the content is {what}, not comma-separated text.")
    for bom, encoding in _OTHER_BOMS:
        if data.startswith(bom):
            raise FileRejected(f"Unsupported encoding: the file is {encoding} text (it starts with "
                               f"that encoding's byte-order mark); the FLS-DB format is UTF-8 (or "
                               f"Windows-1252). Nothing was loaded. {RESAVE_AS_UTF8}")
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise FileRejected("The file is empty." if not data else
                           "The file is empty (it contains only blank lines or spaces).")
    if b"\x00" in data:
        utf16 = _utf16_without_bom(data)
        if utf16:
            raise FileRejected(
                f"Unsupported encoding: the file is {utf16} text without a byte-order mark (every "
                "other byte is a NUL byte, as UTF-16 writes plain letters); the FLS-DB format is "
                f"UTF-8 (or Windows-1252). Nothing was loaded. {RESAVE_AS_UTF8}")
        raise FileRejected("Not a CSV file: it contains binary data (NUL bytes), not text.")
    if data.startswith(_UTF8_BOM):
        marks = 0
        while data.startswith(_UTF8_BOM, 3 * marks):
            marks += 1
        if marks > 1 and warnings is not None:
            warnings.append(f"the file starts with {marks} byte-order marks (BOM) instead of one; "
                            "all were removed (a byte-order mark is not part of the first column's "
                            "name)")
        try:
            return data[3 * marks:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as e:
            raise FileRejected(
                f"Unreadable encoding: the file starts with a UTF-8 byte-order mark but the byte "
                f"at {_where(data, 3 * marks + e.start)} is not valid UTF-8 (a stray Windows-1252 "
                "byte?). Decoding it either way would alter values; re-export the file as "
                "UTF-8.") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf_err:
        bad = utf_err.start
    return _decode_single_byte(data, bad), "windows-1252"


def _utf16_without_bom(data: bytes) -> str | None:
    """"UTF-16 (little-endian)" or "UTF-16 (big-endian)" when data reads as UTF-16 text with no
    byte-order mark, else None. Text of Latin letters in UTF-16 has a NUL as the high byte of
    almost every character, so NUL bytes sit (almost) all at odd offsets (little-endian) or all
    at even ones (big-endian); the bytes must then decode as UTF-16 to printable text."""
    sample = data[:1 << 16]
    sample = sample[:len(sample) - len(sample) % 2]
    if len(sample) < 8:
        return None
    arr = np.frombuffer(sample, dtype=np.uint8)
    nul_even = int((arr[0::2] == 0).sum())
    nul_odd = int((arr[1::2] == 0).sum())
    half = len(sample) // 2
    for nuls, others, codec, name in ((nul_odd, nul_even, "utf-16-le", "UTF-16 (little-endian)"),
                                      (nul_even, nul_odd, "utf-16-be", "UTF-16 (big-endian)")):
        if nuls >= 0.3 * half and others <= 0.02 * half:
            text = sample.decode(codec, errors="replace")
            printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
            if printable >= 0.95 * len(text):
                return name
    return None


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


# Other separators an export can use, with their plain name and how to get commas instead.
_OTHER_DELIMITERS = [
    (";", "semicolon-delimited", "semicolons (;)",
     "as Excel saves 'CSV' where the list separator is a semicolon (European regional settings). "
     "Re-save it with commas: in Windows, set Region > Additional settings > List separator to "
     "',' and save again from Excel as 'CSV UTF-8 (Comma delimited)'; in LibreOffice, Save As "
     "'Text CSV' with the field delimiter ','"),
    ("\t", "tab-delimited", "tabs",
     "as a 'Text (Tab delimited)' or .tsv export writes it. Re-save it from Excel as 'CSV UTF-8 "
     "(Comma delimited)', or export it from the FLS system as comma-separated CSV"),
    ("|", "pipe-delimited", "vertical bars (|)",
     "Export it from the FLS system as comma-separated CSV instead"),
]


def _other_delimiter(first_line: str) -> tuple[str, str, str] | None:
    """(kind, separators, advice) when the header row reads as contract column names split by
    another separator (at least two of them), else None."""
    for delimiter, kind, separators, advice in _OTHER_DELIMITERS:
        try:
            names = next(csv.reader(io.StringIO(first_line, newline=""), delimiter=delimiter), [])
        except csv.Error:
            continue
        if sum(_norm(n.strip()) in _CONTRACT_BY_NORM for n in names) >= 2:
            return kind, separators, advice
    return None


def check_header(text: str) -> list[str]:
    """The contract column names in the file's header order, or raise FileRejected."""
    try:
        header = next(csv.reader(io.StringIO(text, newline="")))
    except (StopIteration, csv.Error):
        header = []
    stripped = [h.strip() for h in header]
    matched = [_CONTRACT_BY_NORM.get(_norm(h)) for h in stripped]
    if not any(matched):
        first_line = text.split("\n", 1)[0]
        other = _other_delimiter(first_line)
        if other is not None:
            kind, separators, advice = other
            raise FileRejected(
                f"Not comma-separated: the file is {kind}, but the FLS-DB format is CSV with "
                f"commas (RFC 4180): its header row holds the FLS-DB column names separated by "
                f"{separators}, {advice}. Nothing was loaded (reading it with another separator "
                "could split values such as decimal commas wrongly).")
        first = redact(visible(first_line.strip()[:80]))
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
    unknown = [redact(visible(h))[:80] for h, m in zip(stripped, matched) if not m]
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


def _even_line_ends(text: str, warnings: list[str]) -> str:
    """Line ends made even for DuckDB's reader, which needs one style per file. Only line ends
    outside quotes are line ends; a line break inside a quoted value (LF, CRLF or CR) is part of
    the value and kept exactly, with no warning (RFC 4180 allows it).

    - Lines ending in a mix of CRLF and LF (a file edited on two systems): CRLF becomes LF, with
      a warning naming the counts.
    - CR-only line ends (classic Mac): each becomes LF, with no warning; a quoted value holding a
      line break stays as it was.
    - A carriage return on its own, outside quotes, in a file whose lines end with LF or CRLF is
      data (a value padded with a CR, say): kept in the value, exactly, with a warning (it
      travels through DuckDB's reader as CR_PLACEHOLDER); if it was really a line break, the row
      then has the wrong number of columns and is rejected as such.

    Positions are found on the UTF-8 bytes with numpy (CR, LF and the double quote are single
    bytes that never occur inside a multi-byte character); inside or outside quotes is the parity
    of the double quotes before a position, as in layout.py."""
    if "\r" not in text:
        return text
    data = text.encode("utf-8")
    arr = np.frombuffer(data, dtype=np.uint8)
    quotes = np.flatnonzero(arr == 34)
    cr = np.flatnonzero(arr == 13)
    lf = np.flatnonzero(arr == 10)
    cr = cr[np.searchsorted(quotes, cr) % 2 == 0]          # outside quotes only
    lf = lf[np.searchsorted(quotes, lf) % 2 == 0]
    before_lf = np.zeros(len(cr), dtype=bool)
    inner = cr + 1 < len(arr)
    before_lf[inner] = arr[cr[inner] + 1] == 10
    crlf, lone = cr[before_lf], cr[~before_lf]
    n_crlf = len(crlf)
    n_lf = len(lf) - n_crlf                                  # LF not preceded by a CR
    if not n_crlf and not n_lf:
        if not len(lone):
            return text                                      # every CR is inside quotes
        out = arr.copy()
        out[lone] = 10                                       # classic Mac: CR ends the line
        return out.tobytes().decode("utf-8")
    if len(lone) and CR_PLACEHOLDER in text:
        at = len(data[:int(lone[0])].decode("utf-8"))
        raise FileRejected(
            f"Not readable as CSV: line {text.count(chr(10), 0, at) + 1} contains a carriage "
            "return (CR) on its own, outside quotes, while the file's lines end with LF: "
            "mixed or corrupted line endings. Re-export the file.")
    counts = np.ones(len(arr), dtype=np.int64)
    if n_crlf and n_lf:
        counts[crlf] = 0                                     # CRLF -> LF
    counts[lone] = len(CR_PLACEHOLDER.encode("utf-8"))
    if len(lone):
        # the physical line: every LF before it (quoted ones too) + 1
        first = sorted(set((np.searchsorted(np.flatnonzero(arr == 10), lone) + 1).tolist()))
        shown = ", ".join(map(str, first[:5])) + (", ..." if len(first) > 5 else "")
        warnings.append(f"{len(lone):,} carriage return(s) (CR) inside values on line(s) "
                        f"{shown}, kept as data (RFC 4180 asks for such values to be quoted)")
    if n_crlf and n_lf:
        warnings.append(f"mixed line endings ({n_crlf:,} CRLF and {n_lf:,} LF); all were read as "
                        "line ends")
    if (counts == 1).all():
        return text
    out = np.repeat(arr, counts)
    if len(lone):
        starts = (np.cumsum(counts) - counts)[lone]
        for k, byte in enumerate(CR_PLACEHOLDER.encode("utf-8")):
            out[starts + k] = byte
    return out.tobytes().decode("utf-8")


def _raw_lines(text: str, cr_placeholder: bool = False) -> list[str]:
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    return [ln.replace(CR_PLACEHOLDER, "\r") for ln in lines] if cr_placeholder else lines
