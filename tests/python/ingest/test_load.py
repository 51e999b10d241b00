"""Tests of `flsdb load` (src/flsdb/ingest/): file rejects, row rejects, line numbers, encodings,
idempotency, versions, atomicity. Every test writes its own small CSV files (no generator)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from flsdb import ingest
from flsdb.ingest import load_landing, loader

from submission_rows import COLS, csv_line, csv_text, good_row, nhs  # noqa: F401  (shared)

REGISTRY_CODES = ("RX1", "RX2", "7A4")


@pytest.fixture
def load_env(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    registry = tmp_path / "fls_registry.csv"
    registry.write_text("fls_code,fls_name\n" + "".join(f"{c},FLS {c}\n" for c in REGISTRY_CODES))
    wh = tmp_path / "wh" / "test.duckdb"

    class Env:
        def __init__(self):
            self.landing, self.registry, self.warehouse = landing, registry, wh

        def write(self, name: str, content: str | bytes) -> Path:
            p = landing / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                p.write_bytes(content.encode("utf-8"))
            else:
                p.write_bytes(content)
            return p

        def load(self):
            return load_landing(landing, self.warehouse, registry_path=registry, progress=False)

        def q(self, sql: str, params=None):
            con = duckdb.connect(str(self.warehouse), read_only=True)
            try:
                return con.execute(sql, params or []).fetchall()
            finally:
                con.close()

        def file_row(self, name: str):
            # The file's content row; a name may also have rows of runs that did not load it
            # (status skipped or refused), which are history.
            rows = self.q("SELECT status, rejection_reason, rows_read, rows_accepted, "
                          "rows_rejected, detected_encoding FROM raw.load_files "
                          "WHERE source_file = ? AND status IN ('loaded', 'rejected')", [name])
            assert len(rows) == 1, rows
            return rows[0]

        def rejects(self, name: str):
            return self.q("SELECT _line_number, reject_code, column_name, reject_reason, raw_line "
                          "FROM raw.submission_rejects WHERE _source_file = ? "
                          "ORDER BY _line_number", [name])

        def snapshot(self):
            return {t: self.q(f"SELECT * FROM raw.{t} ORDER BY ALL") for t in
                    ("load_files", "submission_records", "submission_rejects")}

    return Env()


def assert_counts_balance(env):
    for name, read, acc, rej, n_rec, n_rej in env.q(
            "SELECT f.source_file, rows_read, rows_accepted, rows_rejected, "
            "(SELECT count(*) FROM raw.submission_records r WHERE r._file_sha256 = f.file_sha256),"
            "(SELECT count(*) FROM raw.submission_rejects r WHERE r._file_sha256 = f.file_sha256)"
            " FROM raw.load_files f"):
        assert read == acc + rej, name
        assert (acc, rej) == (n_rec, n_rej), name


# ---------------------------------------------------------------------------------------------
# Happy path, lineage, line numbers
# ---------------------------------------------------------------------------------------------

def test_clean_file_loads_with_lineage(load_env):
    load_env.write("sub/a.csv", csv_text([good_row(i) for i in range(5)]))
    res = load_env.load()
    assert res.files_rejected == 0
    assert load_env.file_row("sub/a.csv") == ("loaded", None, 5, 5, 0, "utf-8")
    recs = load_env.q('SELECT "Record ID", _line_number, _load_order, _source_file, '
                      "length(_file_sha256) FROM raw.submission_records ORDER BY _line_number")
    assert [r[:2] for r in recs] == [(f"R{i:05d}", i + 2) for i in range(5)]
    assert {r[2:] for r in recs} == {(1, "sub/a.csv", 64)}
    assert load_env.q("SELECT file_extract_date::VARCHAR FROM raw.load_files") == [("2024-12-01",)]
    table = res.summary_table()
    assert "sub/a.csv" in table and "loaded" in table
    assert_counts_balance(load_env)


def test_columns_in_any_order_values_untrimmed(load_env):
    cols = list(reversed(COLS))
    load_env.write("rev.csv", csv_text([good_row(1, **{"1.11 SiteFirstFrac": " hip "})], cols))
    load_env.load()
    assert load_env.file_row("rev.csv")[0] == "loaded"
    assert load_env.q('SELECT "1.11 SiteFirstFrac", "FLS Code" FROM raw.submission_records') == [
        (" hip ", "RX1")]


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


def test_crlf_line_endings(load_env):
    text = csv_text([good_row(0), good_row(1, **{"FLS Code": "ZZ9"}), good_row(2)])
    load_env.write("crlf.csv", text.replace("\n", "\r\n"))
    load_env.load()
    assert load_env.file_row("crlf.csv")[:5] == ("loaded", None, 3, 2, 1)
    assert [r[:2] for r in load_env.rejects("crlf.csv")] == [(3, "unknown_fls_code")]
    assert load_env.q("SELECT _line_number FROM raw.submission_records ORDER BY 1") == [(2,), (4,)]
    assert "\r" not in load_env.rejects("crlf.csv")[0][4]


def test_uk_dates_and_space_timestamp_accepted(load_env):
    load_env.write("uk.csv", csv_text([good_row(0, **{
        "1.02 Date of Birth": "15/03/1948", "1.09 Date Index Frac Diagnosed": "01/06/2024",
        "Last Updated": "2024-12-01 10:00:00", "1.01 NHS Number": " 943 476-5919 "})]))
    load_env.load()
    assert load_env.file_row("uk.csv")[:5] == ("loaded", None, 1, 1, 0)


def test_header_only_file_loads_zero_rows(load_env):
    load_env.write("h.csv", ",".join(f'"{c}"' if " " in c else c for c in COLS) + "\n")
    load_env.load()
    assert load_env.file_row("h.csv")[:5] == ("loaded", None, 0, 0, 0)


# ---------------------------------------------------------------------------------------------
# Encodings
# ---------------------------------------------------------------------------------------------

def test_windows_1252_transcoded_without_mojibake(load_env):
    text = csv_text([good_row(0, **{"Record ID": "José’s €5"})])
    load_env.write("win.csv", text.encode("cp1252"))
    load_env.load()
    assert load_env.file_row("win.csv")[0] == "loaded"
    assert load_env.file_row("win.csv")[5] == "windows-1252"
    assert load_env.q('SELECT "Record ID" FROM raw.submission_records') == [("José’s €5",)]


def test_utf8_with_bom(load_env):
    load_env.write("bom.csv", b"\xef\xbb\xbf" + csv_text([good_row(0, **{"Record ID": "José"})]).encode())
    load_env.load()
    assert load_env.file_row("bom.csv")[5] == "utf-8-sig"
    assert load_env.file_row("bom.csv")[:5] == ("loaded", None, 1, 1, 0)
    assert load_env.q('SELECT "Record ID", _line_number FROM raw.submission_records') == [("José", 2)]


def test_utf8_non_ascii(load_env):
    load_env.write("u.csv", csv_text([good_row(0, **{"Record ID": "Zoë-Łódź"})]))
    load_env.load()
    assert load_env.file_row("u.csv")[5] == "utf-8"
    assert load_env.q('SELECT "Record ID" FROM raw.submission_records') == [("Zoë-Łódź",)]


# ---------------------------------------------------------------------------------------------
# File-level rejects
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,content,needle", [
    ("empty.csv", b"", "empty"),
    ("blank.csv", b"\n\n  \r\n", "empty"),
    ("binary.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
    ("book.xlsx", b"PK\x03\x04\x14\x00\x06\x00rest-of-zip", "Excel"),
    ("utf16.csv", "FLS Code,Record ID\n".encode("utf-16"), "UTF-16"),
    ("bad_enc.csv", csv_text([good_row(0)]).encode() + b"RX1,\x81\x90\n", "encoding"),
    ("noheader.csv", csv_line(good_row(0)) + "\n" + csv_line(good_row(1)) + "\n", "No header"),
    ("notes.txt", "These are my notes about the audit.\nNothing to see.\n", "No header"),
])
def test_file_level_rejects(load_env, name, content, needle):
    load_env.write(name, content)
    res = load_env.load()
    status, reason, read, acc, rej, _ = load_env.file_row(name)
    assert (status, read, acc, rej) == ("rejected", 0, 0, 0)
    assert needle.lower() in reason.lower(), reason
    assert res.files_rejected == 1
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(0,)]
    assert load_env.q("SELECT count(*) FROM raw.load_file_rejects") == [(1,)]
    assert "REJECTED" in res.summary_table()


def test_missing_required_column_named(load_env):
    cols = [c for c in COLS if c != "1.01 NHS Number"]
    load_env.write("m.csv", csv_text([good_row(0)], cols))
    load_env.load()
    status, reason, *_ = load_env.file_row("m.csv")
    assert status == "rejected"
    assert "missing required column '1.01 NHS Number'" in reason


def test_missing_optional_and_unexpected_column_named(load_env):
    cols = [c for c in COLS if c != "2.02 Weight"] + ["Shoe Size"]
    load_env.write("x.csv", csv_text([good_row(0)], cols))
    load_env.load()
    status, reason, *_ = load_env.file_row("x.csv")
    assert status == "rejected"
    assert "unexpected column 'Shoe Size'" in reason and "missing column '2.02 Weight'" in reason


def test_duplicate_header_rejected(load_env):
    cols = COLS + ["1.03 Gender"]
    load_env.write("d.csv", csv_text([good_row(0)], cols))
    load_env.load()
    status, reason, *_ = load_env.file_row("d.csv")
    assert status == "rejected" and "duplicate header name '1.03 Gender'" in reason


def test_underscore_and_dot_paths_skipped_and_recorded(load_env):
    """Names starting with '.' or '_' are not loaded, but every such file is listed and recorded
    with its reason; only the top-level _reference/ folder (the project's own) is exempt."""
    load_env.write("_reference/postcodes.csv", "pcd,lsoa\nAB1 2CD,E01\n")
    load_env.write(".hidden.csv", "junk")
    load_env.write("sub/_tmp/x.csv", "junk")
    load_env.write("sub/_reference/not_exempt.csv", "junk")
    load_env.write("ok.csv", csv_text([good_row(0)]))
    res = load_env.load()
    out = {f.source_file: f for f in res.files}
    assert sorted(out) == [".hidden.csv", "ok.csv", "sub/_reference/not_exempt.csv",
                           "sub/_tmp/x.csv"]
    assert out["ok.csv"].status == "loaded"
    assert out[".hidden.csv"].status == "skipped" and "'.'" in out[".hidden.csv"].reason
    assert "inside the folder 'sub/_tmp'" in out["sub/_tmp/x.csv"].reason
    assert load_env.q("SELECT source_file, status, rows_read FROM raw.load_files "
                      "WHERE status = 'skipped' ORDER BY 1") == [
        (".hidden.csv", "skipped", 0), ("sub/_reference/not_exempt.csv", "skipped", 0),
        ("sub/_tmp/x.csv", "skipped", 0)]
    assert "SKIPPED (not loaded)" in res.summary_table() and "3 skipped" in res.summary_table()
    before = load_env.snapshot()
    res = load_env.load()                      # recorded once: a rerun adds nothing
    assert load_env.snapshot() == before and res.files_skipped == 3
    assert_counts_balance(load_env)


# ---------------------------------------------------------------------------------------------
# Row-level rejects: each code, its column and line number
# ---------------------------------------------------------------------------------------------

ROW_CASES = [
    # (overrides, code, column, text expected in the reason)
    ({"1.11 SiteFirstFrac": "  "}, "missing_required_value", "1.11 SiteFirstFrac", "missing"),
    ({"Record ID": ""}, "missing_required_value", "Record ID", "missing"),
    ({"1.09 Date Index Frac Diagnosed": "31/02/2024"}, "invalid_date",
     "1.09 Date Index Frac Diagnosed", "'31/02/2024'"),
    ({"1.09 Date Index Frac Diagnosed": "2024/06/01"}, "invalid_date",
     "1.09 Date Index Frac Diagnosed", "'2024/06/01'"),
    ({"1.02 Date of Birth": "1948-13-01"}, "invalid_date", "1.02 Date of Birth", "not a valid"),
    ({"Last Updated": "yesterday"}, "invalid_date", "Last Updated", "'yesterday'"),
    ({"Last Updated": "2024-12-01T25:00:00"}, "invalid_date", "Last Updated", "timestamp"),
    ({"3.03 DateofDXA": "30/02/2024"}, "invalid_date", "3.03 DateofDXA", "'30/02/2024'"),
    ({"Date of Death": "soon"}, "invalid_date", "Date of Death", "'soon'"),
    ({"1.01 NHS Number": "9434765918"}, "invalid_nhs_number", "1.01 NHS Number", "modulus-11"),
    ({"1.01 NHS Number": "12345"}, "invalid_nhs_number", "1.01 NHS Number", "modulus-11"),
    ({"FLS Code": "NOPE"}, "unknown_fls_code", "FLS Code", "'NOPE'"),
    ({"1.09 Date Index Frac Diagnosed": "2024-12-02"}, "fracture_after_extract",
     "1.09 Date Index Frac Diagnosed", "2024-12-01"),
    ({"1.09 Date Index Frac Diagnosed": "31/12/2015"}, "fracture_before_2016",
     "1.09 Date Index Frac Diagnosed", "'31/12/2015'"),
    ({"1.02 Date of Birth": "2024-06-02"}, "birth_after_fracture", "1.02 Date of Birth",
     "after the index fracture"),
    ({"1.02 Date of Birth": "1913-05-31"}, "age_over_110", "1.02 Date of Birth", "111 years"),
    ({"1.11 SiteFirstFrac": "Knee"}, "invalid_fracture_site", "1.11 SiteFirstFrac", "'Knee'"),
]


@pytest.mark.parametrize("over,code,column,needle", ROW_CASES,
                         ids=[f"{c[1]}-{i}" for i, c in enumerate(ROW_CASES)])
def test_row_level_reject(load_env, over, code, column, needle):
    rows = [good_row(0), good_row(1), good_row(2, **over), good_row(3)]
    load_env.write("r.csv", csv_text(rows))
    load_env.load()
    assert load_env.file_row("r.csv")[:5] == ("loaded", None, 4, 3, 1)
    rej = load_env.rejects("r.csv")
    assert len(rej) == 1
    line, got_code, got_col, reason, raw_line = rej[0]
    assert (line, got_code, got_col) == (4, code, column)
    assert needle in reason, reason
    assert raw_line == csv_line(rows[2])
    assert load_env.q("SELECT _line_number FROM raw.submission_records ORDER BY 1") == [
        (2,), (3,), (5,)]
    assert_counts_balance(load_env)


def test_age_exactly_110_and_site_case_insensitive_accepted(load_env):
    load_env.write("ok.csv", csv_text([
        good_row(0, **{"1.02 Date of Birth": "1913-06-01"}),   # 111th birthday on fracture day
        good_row(1, **{"1.02 Date of Birth": "1913-06-02", "1.11 SiteFirstFrac": " wRiSt "}),
    ]))
    load_env.load()
    assert [r[1] for r in load_env.rejects("ok.csv")] == ["age_over_110"]
    assert load_env.file_row("ok.csv")[:5] == ("loaded", None, 2, 1, 1)


def test_nhs_number_privacy_in_reason(load_env):
    bad = "9434765918"
    load_env.write("p.csv", csv_text([good_row(0, **{"1.01 NHS Number": bad,
                                                     "1.02 Date of Birth": "2030-01-01"})]))
    load_env.load()
    (_, code, _, reason, raw_line), = load_env.rejects("p.csv")
    assert code == "invalid_nhs_number"       # first rule wins over birth_after_fracture
    assert bad not in reason and bad in raw_line


def test_first_rule_wins(load_env):
    row = good_row(0, **{"FLS Code": "NOPE", "1.11 SiteFirstFrac": "Knee",
                         "1.09 Date Index Frac Diagnosed": "2015-01-01"})
    load_env.write("f.csv", csv_text([row]))
    load_env.load()
    assert [r[1] for r in load_env.rejects("f.csv")] == ["unknown_fls_code"]


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


# ---------------------------------------------------------------------------------------------
# Idempotency, versions, atomicity, locking
# ---------------------------------------------------------------------------------------------

def test_idempotent_double_load_and_copy_under_other_path(load_env):
    load_env.write("a.csv", csv_text([good_row(0), good_row(1, **{"FLS Code": "X"})]))
    load_env.write("bad.csv", b"")
    load_env.load()
    first = load_env.snapshot()
    load_env.write("copy/a_again.csv", (load_env.landing / "a.csv").read_bytes())
    res = load_env.load()
    assert load_env.snapshot() == first
    assert {f.status for f in res.files} == {"unchanged"}
    assert res.files_rejected == 1
    assert "same content as a.csv" in res.summary_table()


def test_changed_file_loads_as_new_version(load_env):
    load_env.write("a.csv", csv_text([good_row(0)]))
    load_env.load()
    load_env.write("a.csv", csv_text([good_row(0, **{"Last Updated": "2024-12-05T09:00:00"}),
                                      good_row(1)]))
    load_env.load()
    files = load_env.q("SELECT source_file, load_order, rows_read FROM raw.load_files "
                       "ORDER BY load_order")
    assert files == [("a.csv", 1, 1), ("a.csv", 2, 2)]
    assert load_env.q('SELECT "Record ID", "Last Updated", _load_order FROM '
                      "raw.submission_records ORDER BY _load_order, _line_number") == [
        ("R00000", "2024-12-01T10:00:00", 1), ("R00000", "2024-12-05T09:00:00", 2),
        ("R00001", "2024-12-01T10:00:00", 2)]
    assert_counts_balance(load_env)


def test_exception_mid_file_rolls_back(load_env, monkeypatch):
    load_env.write("a.csv", csv_text([good_row(0)]))
    load_env.write("b.csv", csv_text([good_row(1), good_row(2, **{"FLS Code": "X"})]))

    def boom(con, rel):
        if rel == "b.csv":
            assert con.execute("SELECT count(*) FROM raw.submission_records").fetchone()[0] == 2
            raise RuntimeError("simulated crash")

    monkeypatch.setattr(loader, "_after_records_hook", boom)
    with pytest.raises(RuntimeError):
        load_env.load()
    assert load_env.q("SELECT source_file FROM raw.load_files") == [("a.csv",)]
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(1,)]
    assert load_env.q("SELECT count(*) FROM raw.submission_rejects") == [(0,)]
    monkeypatch.setattr(loader, "_after_records_hook", None)
    load_env.load()
    assert load_env.file_row("b.csv")[:5] == ("loaded", None, 2, 1, 1)
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(2,)]
    assert_counts_balance(load_env)


def _run_load_subprocess(env, extra_env=None):
    code = textwrap.dedent(f"""
        from flsdb.ingest import load_landing
        load_landing({str(env.landing)!r}, {str(env.warehouse)!r},
                     registry_path={str(env.registry)!r}, progress=False)
    """)
    return subprocess.run([sys.executable, "-c", code], env={**os.environ, **(extra_env or {})},
                          capture_output=True, text=True, timeout=120)


def test_killed_process_mid_file_leaves_nothing(load_env):
    load_env.write("a.csv", csv_text([good_row(0)]))
    load_env.write("b.csv", csv_text([good_row(i) for i in range(1, 200)]))
    proc = _run_load_subprocess(load_env, {loader._CRASH_ENV: "b.csv"})
    assert proc.returncode == -9, proc.stderr
    assert load_env.q("SELECT source_file FROM raw.load_files") == [("a.csv",)]
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(1,)]
    proc = _run_load_subprocess(load_env)
    assert proc.returncode == 0, proc.stderr
    assert load_env.file_row("b.csv")[:5] == ("loaded", None, 199, 199, 0)
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(200,)]


def test_locked_warehouse_clear_error(load_env):
    load_env.write("a.csv", csv_text([good_row(0)]))
    load_env.warehouse.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); "
         "print('ok', flush=True); time.sleep(30)", str(load_env.warehouse)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(ingest.WarehouseLockedError, match="in use by another process"):
            load_env.load()
    finally:
        holder.kill()
        holder.wait()


def test_missing_registry_is_clear_error(load_env, tmp_path):
    with pytest.raises(ingest.LoadError, match="registry"):
        load_landing(load_env.landing, load_env.warehouse, registry_path=tmp_path / "none.csv")


def test_fls_code_matched_case_insensitively_after_trimming(load_env):
    code = good_row(0)["FLS Code"]
    load_env.write("codes.csv", csv_text([good_row(0, **{"FLS Code": f" {code.lower()} "})]))
    load_env.load()
    assert load_env.rejects("codes.csv") == []
    assert load_env.file_row("codes.csv")[:5] == ("loaded", None, 1, 1, 0)
