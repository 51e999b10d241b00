"""The physical line on which each record starts and ends (src/flsdb/ingest/layout.py): line
numbers of rows that span lines, and DuckDB's record-counted line numbers corrected. Helpers:
ingest_env.py."""

from __future__ import annotations

from ingest_env import csv_line, csv_text, good_row, load_env  # noqa: F401  (load_env: a fixture)


# ---------------------------------------------------------------------------------------------
# Line numbers
# ---------------------------------------------------------------------------------------------

def test_quoted_comma_and_embedded_newline_line_numbers(load_env):
    rows = [good_row(0, **{"1.04 Post Code": "SW1A, 1AA"}),
            good_row(1, **{"1.03 Gender": "Fe\nmale"}),          # spans lines 3-4
            good_row(2, **{"1.11 SiteFirstFrac": "Knee"}),      # line 5: reject
            good_row(3)]                                        # line 6
    text = csv_text(rows)
    text = text.replace("\n" + csv_line(rows[3]), "\n\n" + csv_line(rows[3]))  # blank line 6
    load_env.write("q.csv", text)
    load_env.load()
    assert load_env.file_row("q.csv")[:5] == ("loaded", None, 4, 3, 1)
    got = load_env.q('SELECT "Record ID", _line_number, "1.04 Post Code", "1.03 Gender" '
                     "FROM raw.submission_records ORDER BY _line_number")
    assert got == [("R00000", 2, "SW1A, 1AA", "Female"), ("R00001", 3, "SW1A 1AA", "Fe\nmale"),
                   ("R00003", 7, "SW1A 1AA", "Female")]
    rej = load_env.rejects("q.csv")
    assert [(r[0], r[1], r[2]) for r in rej] == [(5, "invalid_fracture_site", "1.11 SiteFirstFrac")]
    assert rej[0][4] == csv_line(rows[2])
    assert "'Knee'" in rej[0][3]


def test_duckdb_line_numbers_corrected_after_multiline_row(load_env):
    """DuckDB's reject_errors.line counts records, not physical lines: check we correct it."""
    rows = [good_row(0, **{"1.04 Post Code": "line one\nline two\nline three"}),
            good_row(1), good_row(2)]
    text = csv_text(rows)
    lines = text.split("\n")
    # rows[0] spans physical lines 2-4; rows[1] is line 5; make rows[2] (line 6) too short.
    assert lines[5] == csv_line(rows[2])
    lines[5] = "RX1,short"
    load_env.write("ml.csv", "\n".join(lines))
    load_env.load()
    rej = load_env.rejects("ml.csv")
    assert [(r[0], r[1]) for r in rej] == [(6, "wrong_column_count")]
    assert rej[0][4] == "RX1,short"
    assert load_env.q("SELECT _line_number FROM raw.submission_records ORDER BY 1") == [(2,), (5,)]
