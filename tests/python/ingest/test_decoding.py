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


# ---------------------------------------------------------------------------------------------
# Hostile input, round 3 (issue 19): messages that say why
# ---------------------------------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"
MULTILINE = "R-two\nlines"                  # a Record ID holding a line break (quoted by csv)


def _rows3() -> list[dict[str, str]]:
    return [good_row(1), good_row(2, **{"Record ID": MULTILINE}), good_row(3)]


def no_private_placeholder(env) -> None:
    """The loader's private stand-in for a carriage return (U+E000) never reaches a stored value,
    reason, warning or raw line."""
    for table in ("load_files", "submission_records", "submission_rejects"):
        rows = env.q(f"SELECT * FROM raw.{table}")
        assert "\ue000" not in repr(rows) and "\\ue000" not in repr(rows), table


def _line(row: dict[str, str]) -> str:
    """One CSV record, without a line end; a value holding a CR or LF is quoted."""
    import csv as csv_module
    import io as io_module
    buf = io_module.StringIO()
    csv_module.writer(buf, lineterminator="\r\n").writerow([row.get(c, "") for c in COLS])
    return buf.getvalue()[:-2]


HEADER_ROW = dict(zip(COLS, COLS))


def _separated(delimiter: str, rows: list[dict[str, str]]) -> str:
    import csv as csv_module
    import io as io_module
    buf = io_module.StringIO()
    writer = csv_module.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(COLS)
    for r in rows:
        writer.writerow([r.get(c, "") for c in COLS])
    return buf.getvalue()


@pytest.mark.parametrize("name,data,kind,advice", [
    ("semicolon.csv", _separated(";", _rows3()).encode(), "semicolon-delimited", "List separator"),
    ("semicolon_crlf.csv", _separated(";", _rows3()).replace("\n", "\r\n").encode(),
     "semicolon-delimited", "List separator"),
    ("semicolon_bom.csv", BOM + _separated(";", _rows3()).encode(), "semicolon-delimited",
     "CSV UTF-8 (Comma delimited)"),
    ("semicolon_quoted.csv", _separated(";", _rows3()).replace("FLS Code", '"FLS Code"').encode(),
     "semicolon-delimited", "List separator"),
    ("semicolon_cp1252.csv", _separated(";", [good_row(1, **{"Record ID": "José"})]).encode("cp1252"),
     "semicolon-delimited", "List separator"),
    ("tab.tsv", _separated("\t", _rows3()).encode(), "tab-delimited", "CSV UTF-8 (Comma delimited)"),
    ("pipe.txt", _separated("|", _rows3()).encode(), "pipe-delimited", "comma-separated"),
])
def test_a_file_with_another_separator_is_named_with_how_to_resave(load_env, name, data, kind,
                                                                    advice):
    """A European Excel export (semicolons), a tab- or pipe-delimited file: refused, naming the
    separator and how to save comma-separated CSV (accepting it could split decimal commas)."""
    load_env.write(name, data)
    result = load_env.load()
    all_accounted(load_env, result)
    status, reason, read, acc, rej, _ = load_env.file_row(name)
    assert (status, read, acc, rej) == ("rejected", 0, 0, 0)
    assert reason.startswith("Not comma-separated: the file is " + kind), reason
    assert advice in reason and "No header row" not in reason, reason
    no_private_placeholder(load_env)


@pytest.mark.parametrize("name,data", [
    # neighbours: commas with semicolons, tabs or pipes inside values; a first line of text
    ("commas_with_semicolons.csv",
     csv_text([good_row(1, **{"Record ID": "a;b;c"}), good_row(2, **{"2.01 Height": "16\t2"})])),
    ("commas_with_pipes.csv", csv_text([good_row(1, **{"Record ID": "a|b"})])),
])
def test_semicolons_and_tabs_inside_a_comma_file_are_data(load_env, name, data):
    load_env.write(name, data)
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.file_row(name)[0] == "loaded"


@pytest.mark.parametrize("first_line", ["alpha;beta;gamma", "one\ttwo", "FLS Code;misc;other"])
def test_text_that_is_not_a_header_in_any_separator_is_still_no_header(load_env, first_line):
    load_env.write("x.csv", first_line + "\nmore;text\n")
    load_env.load()
    status, reason, *_ = load_env.file_row("x.csv")
    assert status == "rejected" and reason.startswith("No header row"), reason


@pytest.mark.parametrize("line_end,break_in_value", [
    ("\r", "\n"),          # the issue's case: CR-only lines, a quoted LF inside a value
    ("\r", "\r"),          # ... a quoted CR
    ("\r", "\r\n"),        # ... a quoted CRLF
    ("\r\n", "\n"),        # CRLF lines with a quoted LF
    ("\r\n", "\r\n"),
    ("\n", "\r\n"),        # LF lines with a quoted CRLF
    ("\n", "\r"),          # LF lines with a quoted lone CR
])
def test_a_quoted_line_break_is_kept_exactly_under_any_line_ends(load_env, line_end,
                                                                  break_in_value):
    """Line ends outside quotes are line ends, whatever their style; a line break inside a quoted
    value is data, kept exactly, with no warning about line endings or CRs."""
    value = "R-two" + break_in_value + "lines"
    rows = [HEADER_ROW, good_row(1), good_row(2, **{"Record ID": value}), good_row(3)]
    body = line_end.join(_line(r) for r in rows) + line_end
    load_env.write("breaks.csv", body.encode())
    result = load_env.load()
    all_accounted(load_env, result)
    status, reason, read, acc, rej, _ = load_env.file_row("breaks.csv")
    assert (status, reason, read, acc, rej) == ("loaded", None, 3, 3, 0), reason
    stored = load_env.q('SELECT "Record ID" FROM raw.submission_records ORDER BY _line_number')
    assert [r[0] for r in stored] == ["R00001", value, "R00003"]
    (warnings,), = load_env.q("SELECT load_warnings FROM raw.load_files")
    assert warnings is None, warnings
    no_private_placeholder(load_env)


def test_mixed_line_ends_are_counted_outside_quotes_only(load_env):
    """A file mixing CRLF and LF line ends, one of its values holding a quoted LF: the warning
    counts the line ends, not the break inside the value, and the value is kept."""
    header, r1, r2, r3 = (_line(r) for r in [HEADER_ROW, good_row(1),
                                             good_row(2, **{"Record ID": "a\r\nb"}), good_row(3)])
    load_env.write("mixed.csv", (header + "\r\n" + r1 + "\n" + r2 + "\r\n" + r3 + "\n").encode())
    result = load_env.load()
    all_accounted(load_env, result)
    (warnings,), = load_env.q("SELECT load_warnings FROM raw.load_files")
    assert warnings == "mixed line endings (2 CRLF and 2 LF); all were read as line ends"
    assert load_env.q('SELECT "Record ID" FROM raw.submission_records ORDER BY 1') == [
        ("R00001",), ("R00003",), ("a\r\nb",)]


def test_cr_only_file_with_a_broken_row_is_rejected_row_by_row_without_placeholder(load_env):
    """Neighbour: a classic-Mac file with a quoted line break and a truncated row loads; the
    truncated row is one wrong_column_count reject whose raw line has no private character."""
    rows = [_line(r) for r in [HEADER_ROW, good_row(1), good_row(2, **{"Record ID": "x\ny"})]]
    rows.append(_line(good_row(3))[:30])
    rows.append(_line(good_row(4)))
    load_env.write("mac.csv", ("\r".join(rows) + "\r").encode())
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.file_row("mac.csv")[:5] == ("loaded", None, 4, 3, 1)
    (line, code, _c, reason, raw), = load_env.rejects("mac.csv")
    assert code == "wrong_column_count" and "truncated" in reason
    no_private_placeholder(load_env)


@pytest.mark.parametrize("marks", [2, 3])
def test_repeated_byte_order_marks_are_removed_with_a_warning(load_env, marks):
    load_env.write("boms.csv", BOM * marks + csv_text(_rows3()).encode())
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.file_row("boms.csv")[:5] == ("loaded", None, 3, 3, 0)
    (warnings, order), = load_env.q("SELECT load_warnings, column_order FROM raw.load_files")
    assert f"starts with {marks} byte-order marks" in warnings
    assert "\ufeff" not in order and "\\ufeff" not in order
    assert load_env.q('SELECT count(*) FROM raw.submission_records WHERE "FLS Code" = \'RX1\'') \
        == [(3,)]


def test_one_byte_order_mark_gives_no_warning_and_two_before_semicolons_say_both(load_env):
    load_env.write("one.csv", BOM + csv_text(_rows3()).encode())
    load_env.write("semi.csv", BOM * 2 + _separated(";", _rows3()).encode())
    result = load_env.load()
    all_accounted(load_env, result)
    warnings = dict(load_env.q("SELECT source_file, load_warnings FROM raw.load_files"))
    assert warnings["one.csv"] is None
    assert "2 byte-order marks" in warnings["semi.csv"]
    status, reason, *_ = load_env.file_row("semi.csv")
    assert status == "rejected" and "semicolon-delimited" in reason and "\ufeff" not in reason


def test_a_stray_invisible_character_in_a_header_name_is_shown_by_name(load_env):
    """Neighbour: a zero-width space or BOM glued to a column name (not at the file's start) is
    named <U+200B> / <U+FEFF> in the reason, never printed invisibly."""
    for name, glue in (("zw.csv", "\u200b"), ("bom_mid.csv", "\ufeff")):
        cols = [c if c != "Record ID" else glue + "Record ID" for c in COLS]
        load_env.write(name, csv_text([good_row(1)], cols))
    load_env.load()
    for name, shown in (("zw.csv", "<U+200B>Record ID"), ("bom_mid.csv", "<U+FEFF>Record ID")):
        status, reason, *_ = load_env.file_row(name)
        assert status == "rejected" and shown in reason, reason
        assert "\u200b" not in reason and "\ufeff" not in reason


@pytest.mark.parametrize("name,data,needle", [
    ("utf16le_nomark.csv", csv_text(_rows3()).encode("utf-16-le"), "UTF-16 (little-endian) text without a byte-order mark"),
    ("utf16be_nomark.csv", csv_text(_rows3()).encode("utf-16-be"), "UTF-16 (big-endian) text without a byte-order mark"),
    ("utf16le_nomark_accents.csv", csv_text([good_row(1, **{"Record ID": "Zoë-Łódź"})]).encode("utf-16-le"),
     "UTF-16 (little-endian) text without"),
    ("utf16le_mark.csv", csv_text(_rows3()).encode("utf-16"), "UTF-16 (little-endian) text (it starts"),
    ("utf16be_mark.csv", b"\xfe\xff" + csv_text(_rows3()).encode("utf-16-be"), "UTF-16 (big-endian) text (it starts"),
    ("utf32_mark.csv", csv_text(_rows3()).encode("utf-32"), "UTF-32 (little-endian)"),
])
def test_utf16_and_utf32_are_named_with_how_to_resave_as_utf8(load_env, name, data, needle):
    load_env.write(name, data)
    result = load_env.load()
    all_accounted(load_env, result)
    status, reason, *_ = load_env.file_row(name)
    assert status == "rejected" and needle in reason, reason
    assert "Re-save it as UTF-8" in reason and "binary" not in reason


@pytest.mark.parametrize("data", [
    b"\x00" * 4096,                                              # all NUL
    csv_text(_rows3()).encode() + b"\x00",                       # one NUL in a UTF-8 file
    bytes(range(256)) * 16,                                      # every byte value
])
def test_binary_with_nul_bytes_is_not_mistaken_for_utf16(load_env, data):
    load_env.write("bin.csv", data)
    load_env.load()
    status, reason, *_ = load_env.file_row("bin.csv")
    assert status == "rejected" and "binary data (NUL bytes)" in reason, reason
