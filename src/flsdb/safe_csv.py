"""CSV cells that a spreadsheet will not execute (CSV / formula injection).

A submission's free text can hold ``=HYPERLINK("http://evil","x")``, ``+cmd|'/C calc'!A0`` or
``@SUM(1+1)``. The loader stores such values exactly as sent (they are data), but any CSV the
project writes for people to open must not hand them to Excel, LibreOffice or Google Sheets as
formulas. Every CSV writer of the project calls :func:`neutralise` on each text cell (or
:func:`neutralise_frame` on a DataFrame, or writes through :func:`write_csv`).

Rule (OWASP "CSV injection"): a text cell whose first character is ``=``, ``+``, ``-``, ``@``,
a tab, a carriage return or a line feed (or their full-width forms, which some spreadsheets
also read as formulas), after any leading spaces, is prefixed with a single quote ``'``, which
spreadsheets display as text and do not show. A cell that is a plain number (``-3.2``,
``+44``, ``1e-5``) is left alone: no spreadsheet runs it, and prefixing it would turn a number
into text. Non-text values (numbers, booleans, None, NaN) are returned unchanged.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def is_dangerous(value: Any) -> bool:
    """True when a spreadsheet could read the text cell value as a formula."""
    if not isinstance(value, str):
        return False
    stripped = value.lstrip(" ")
    if not stripped.startswith(FORMULA_STARTS):
        return False
    return _PLAIN_NUMBER.fullmatch(value.strip()) is None


def neutralise(value: Any) -> Any:
    """value, with a leading ``'`` added if a spreadsheet could read it as a formula."""
    return "'" + value if is_dangerous(value) else value


def neutralise_row(values: Iterable[Any]) -> list[Any]:
    return [neutralise(v) for v in values]


def neutralise_frame(frame):
    """A copy of a pandas DataFrame with every text cell neutralised (numbers untouched)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or str(out[column].dtype).startswith(("str", "string")):
            out[column] = out[column].map(neutralise)
    return out


def write_csv(path: Path | str, header: list[str], rows: Iterable[Iterable[Any]]) -> Path:
    """Write a UTF-8 CSV (RFC 4180 quoting, ``\\n`` line ends) with every cell neutralised."""
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(neutralise_row(header))
        for row in rows:
            writer.writerow(neutralise_row("" if v is None else v for v in row))
    return path


def dangerous_cells(path: Path | str) -> list[tuple[int, int, str]]:
    """(line, column, value) of every cell of a CSV file that a spreadsheet could execute.
    Used by the tests to check each CSV the project writes."""
    found = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        for line, row in enumerate(csv.reader(handle), 1):
            for column, value in enumerate(row):
                if is_dangerous(value):
                    found.append((line, column, value))
    return found
