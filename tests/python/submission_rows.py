"""Submission rows for tests that write their own small CSV files: a valid NHS number, a row that
passes every contract check, and the CSV text of rows (used by the tests of
tests/python/ingest/ through ingest_env.py, test_privacy.py and test_quality_problems.py)."""

from __future__ import annotations

import csv
import io

from flsdb import contract

COLS = list(contract.COLUMNS)


def nhs(seed: int) -> str:
    """A valid NHS number derived from seed."""
    base = f"{(seed * 7919 + 400000000) % 1000000000:09d}"
    for tweak in range(100):
        digits = f"{(int(base) + tweak) % 1000000000:09d}"
        total = sum(int(d) * w for d, w in zip(digits, range(10, 1, -1)))
        check = (11 - total % 11) % 11
        if check != 10:
            n = digits + str(check)
            assert contract.nhs_number_is_valid(n)
            return n
    raise AssertionError


def good_row(i: int = 0, **over: str) -> dict[str, str]:
    row = {c: "" for c in COLS}
    row.update({
        "FLS Code": "RX1", "Record ID": f"R{i:05d}", "Last Updated": "2024-12-01T10:00:00",
        "1.01 NHS Number": nhs(i), "1.02 Date of Birth": "1948-03-15", "1.03 Gender": "Female",
        "1.04 Post Code": "SW1A 1AA", "1.09 Date Index Frac Diagnosed": "2024-06-01",
        "1.11 SiteFirstFrac": "Hip", "2.01 Height": "162",
    })
    row.update(over)
    return row


def csv_text(rows: list[dict[str, str]], cols: list[str] | None = None) -> str:
    cols = cols or COLS
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    return buf.getvalue()


def csv_line(row: dict[str, str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow([row.get(c, "") for c in COLS])
    return buf.getvalue()
