"""Staging files through DuckDB's CSV reader (src/flsdb/ingest/staging.py): columns by header name,
values untrimmed, header-only files, and the structural rejects (wrong column count, stray and
unterminated quotes). Helpers: ingest_env.py."""

from __future__ import annotations

from ingest_env import (  # noqa: F401  (load_env is a fixture)
    COLS, csv_line, csv_text, good_row, load_env)


# ---------------------------------------------------------------------------------------------
# Columns by name, header-only files
# ---------------------------------------------------------------------------------------------

def test_columns_in_any_order_values_untrimmed(load_env):
    cols = list(reversed(COLS))
    load_env.write("rev.csv", csv_text([good_row(1, **{"1.11 SiteFirstFrac": " hip "})], cols))
    load_env.load()
    assert load_env.file_row("rev.csv")[0] == "loaded"
    assert load_env.q('SELECT "1.11 SiteFirstFrac", "FLS Code" FROM raw.submission_records') == [
        (" hip ", "RX1")]


def test_header_only_file_loads_zero_rows(load_env):
    load_env.write("h.csv", ",".join(f'"{c}"' if " " in c else c for c in COLS) + "\n")
    load_env.load()
    assert load_env.file_row("h.csv")[:5] == ("loaded", None, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# Structural rejects: column count, quotes
# ---------------------------------------------------------------------------------------------

def test_wrong_column_count_truncated_and_overlong(load_env):
    rows = [good_row(i) for i in range(5)]
    lines = csv_text(rows).split("\n")
    lines[2] = lines[2].rsplit(",", 5)[0]                 # truncated: line 3
    lines[4] = lines[4] + ",extra,values"                 # over-long: line 5
    load_env.write("w.csv", "\n".join(lines))
    load_env.load()
    assert load_env.file_row("w.csv")[:5] == ("loaded", None, 5, 3, 2)
    rej = load_env.rejects("w.csv")
    assert [(r[0], r[1], r[2]) for r in rej] == [(3, "wrong_column_count", None),
                                                (5, "wrong_column_count", None)]
    assert "43 values" in rej[0][3] and "truncated" in rej[0][3]
    assert "50 values" in rej[1][3] and "over-long" in rej[1][3]
    assert rej[0][4] == lines[2] and rej[1][4] == lines[4]
    assert load_env.q("SELECT _line_number FROM raw.submission_records ORDER BY 1") == [
        (2,), (4,), (6,)]


def test_stray_quote_in_unquoted_value_kept(load_env):
    rows = [good_row(0), good_row(1, **{"2.01 Height": "5'6\""}), good_row(2)]
    lines = csv_text(rows).split("\n")
    lines[2] = lines[2].replace('"5\'6"""', '5\'6"')      # unquoted value containing a quote
    load_env.write("sq.csv", "\n".join(lines))
    load_env.load()
    assert load_env.file_row("sq.csv")[:5] == ("loaded", None, 3, 3, 0)
    assert load_env.q('SELECT _line_number, "2.01 Height" FROM raw.submission_records '
                      "ORDER BY 1") == [(2, "162"), (3, "5'6\""), (4, "162")]


def test_unterminated_quote_at_end_is_a_reject_not_lost(load_env):
    rows = [good_row(0), good_row(1)]
    text = csv_text(rows) + 'RX1,"R9,2024-12-01T10:00:00\nmore\n'
    load_env.write("uq.csv", text)
    load_env.load()
    status, _, read, acc, rej, _ = load_env.file_row("uq.csv")
    assert (status, read, acc, rej) == ("loaded", 3, 2, 1)
    (line, code, _, reason, raw_line), = load_env.rejects("uq.csv")
    assert (line, code) == (4, "wrong_column_count") and "quote" in reason
    assert raw_line.startswith('RX1,"R9')
