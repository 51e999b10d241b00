"""Decoding (src/flsdb/ingest/decoding.py): line ends, encodings, the file-level rejects (empty,
binary, Excel, UTF-16, bad encoding, no header, a bad header); and hostile input, round 2: the
encoding is never a silent change (Windows-1252 only when certain). Helpers: test_hostile_input.py
and ingest_env.py."""

from __future__ import annotations

import pytest

from ingest_env import (  # noqa: F401  (load_env is a fixture)
    COLS, csv_line, csv_text, good_row, load_env)
from test_hostile_input import all_accounted


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


# ---------------------------------------------------------------------------------------------
# Line ends
# ---------------------------------------------------------------------------------------------

def test_crlf_line_endings(load_env):
    text = csv_text([good_row(0), good_row(1, **{"FLS Code": "ZZ9"}), good_row(2)])
    load_env.write("crlf.csv", text.replace("\n", "\r\n"))
    load_env.load()
    assert load_env.file_row("crlf.csv")[:5] == ("loaded", None, 3, 2, 1)
    assert [r[:2] for r in load_env.rejects("crlf.csv")] == [(3, "unknown_fls_code")]
    assert load_env.q("SELECT _line_number FROM raw.submission_records ORDER BY 1") == [(2,), (4,)]
    assert "\r" not in load_env.rejects("crlf.csv")[0][4]


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
