"""The row checks (src/flsdb/ingest/row_checks.py): each row-level reject of docs/specification/submission-format.md
with its code, column and line number (ROW_CASES, in ingest_env.py), the first rule that fails wins; and hostile
input, round 2: NHS numbers of ASCII digits only, dates after the load, coded answers with any
whitespace or a documented wording, identifier-like tokens in Record IDs and file names. Helpers:
test_hostile_input.py and ingest_env.py."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import duckdb
import pytest

from flsdb import contract
from flsdb.ingest import load_landing

from ingest_env import (  # noqa: F401  (load_env is a fixture)
    COLS, ROW_CASES, assert_counts_balance, csv_line, csv_text, good_row, load_env, nhs)
from test_hostile_input import all_accounted


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


@pytest.mark.warehouse
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


# ---------------------------------------------------------------------------------------------
# Row-level rejects: each code, its column and line number
# ---------------------------------------------------------------------------------------------

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


def test_uk_dates_and_space_timestamp_accepted(load_env):
    load_env.write("uk.csv", csv_text([good_row(0, **{
        "1.02 Date of Birth": "15/03/1948", "1.09 Date Index Frac Diagnosed": "01/06/2024",
        "Last Updated": "2024-12-01 10:00:00", "1.01 NHS Number": " 943 476-5919 "})]))
    load_env.load()
    assert load_env.file_row("uk.csv")[:5] == ("loaded", None, 1, 1, 0)


def test_fls_code_matched_case_insensitively_after_trimming(load_env):
    code = good_row(0)["FLS Code"]
    load_env.write("codes.csv", csv_text([good_row(0, **{"FLS Code": f" {code.lower()} "})]))
    load_env.load()
    assert load_env.rejects("codes.csv") == []
    assert load_env.file_row("codes.csv")[:5] == ("loaded", None, 1, 1, 0)
