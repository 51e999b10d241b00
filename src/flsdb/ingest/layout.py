"""The record layout of a file: the physical line on which each record starts and ends, and
which records are blank (a vectorised numpy scan, and Python's csv module as the slow path for
odd quoting). DuckDB gives accepted rows no line number; this is how rows get theirs."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np


@dataclass
class Layout:
    """Per record (index 0 is the header): physical start/end line and whether it is blank.

    Record i is DuckDB's "line" i + 1.
    """
    start_line: np.ndarray
    end_line: np.ndarray
    blank: np.ndarray
    unterminated_last: bool  # the last record opens a quoted value that is never closed


def layout_numpy(data: bytes) -> Layout:
    arr = np.frombuffer(data, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    quotes = np.flatnonzero(arr == 34)
    even = (np.searchsorted(quotes, nl) % 2) == 0
    term_rank = np.flatnonzero(even)  # rank of each terminating newline among all newlines
    term_pos = nl[term_rank]
    starts = np.concatenate(([0], term_pos + 1))
    ends = np.concatenate((term_pos, [len(arr)]))
    start_line = np.concatenate(([1], term_rank + 2))
    end_line = np.concatenate((term_rank + 1, [len(nl) + 1]))
    if starts[-1] >= len(arr):  # file ends with a newline: no record after it
        starts, ends, start_line, end_line = starts[:-1], ends[:-1], start_line[:-1], end_line[:-1]
    length = ends - starts
    cr_only = np.zeros(len(starts), dtype=bool)
    one = length == 1
    cr_only[one] = arr[starts[one]] == 13
    blank = (length == 0) | cr_only
    return Layout(start_line, end_line, blank, unterminated_last=len(quotes) % 2 == 1)


def _nth_newline_end(data: bytes, n: int) -> int:
    """Byte offset just after the n-th newline of data (len(data) if there are fewer)."""
    nl = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    return int(nl[n - 1]) + 1 if len(nl) >= n else len(data)


def layout_csv(text: str) -> Layout:
    """Slow path: Python's csv module splits records the way DuckDB does on odd quoting."""
    starts, ends, blank = [], [], []
    reader = csv.reader(io.StringIO(text, newline=""))
    prev = 0
    unterminated = False
    while True:
        try:
            rec = next(reader)
        except StopIteration:
            break
        except csv.Error:  # unexpected end of data inside a quoted value
            unterminated = True
            starts.append(prev + 1)
            ends.append(text.count("\n") + 1)
            blank.append(False)
            break
        starts.append(prev + 1)
        ends.append(max(reader.line_num, prev + 1))
        blank.append(rec == [])
        prev = reader.line_num
    return Layout(np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64),
                  np.array(blank, dtype=bool), unterminated)
