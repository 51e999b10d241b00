"""The raw submission contract is held once (issue 13 part 2; DEVELOPERS.md, "The submission
contract").

- The field list lives in seeds/submission_fields.csv; the code lists, date formats, age limits and
  KPI 1 follow-up due days in the vars of dbt_project.yml. flsdb/contract.py, the staging macros,
  the loader and the GX suites read them.
- No file in src/, models/ or macros/ writes out a copy: a kind string (`number:100:230`,
  `code:yes_no_not_known`), a list of raw field names, a strptime date format or date regex, or a
  KPI 1 threshold (`0.80`, the 112/392 due days). The scan is shown to fail on planted copies.
- Every var a model, macro, analysis or test reads is declared, with a comment, in dbt_project.yml.
- The Spark date macros, now derived from the formats, build the same regexes as before.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import jinja2
import pytest
import yaml

from flsdb import contract, paths

ROOT = paths.PROJECT_DIR
SEED = "seeds/submission_fields.csv"
RAW_NAMES = tuple(contract.COLUMNS)

# The files allowed to name many raw columns: the generator's column builders, which write a value
# (or a deliberately bad one) for each column by name. (flsdb/contract.py reads the seed and names none.)
MANY_NAMES_ALLOWED = {
    "src/flsdb/synthetic/exports.py",
    "src/flsdb/synthetic/defects.py",
}
# More distinct raw column names than this in one file is a copy of the field list (the staging
# model stages the 8 required fields and identifiers by hand).
MAX_RAW_NAMES_PER_FILE = 8

WRITTEN_OUT_CONTRACT: dict[str, re.Pattern[str]] = {
    "a contract kind string (code:<list>, number:<min>:<max>)": re.compile(
        r"""['"](?:code:[a-z_]+|(?:number|integer):-?\d+:-?\d+|date_after_fracture:\d+)['"]"""),
    "a submission date format": re.compile(r"""['"][^'"\n]*(?:%Y-%m-%d|%d/%m/%Y|%H:%M:%S)[^'"\n]*['"]"""),
    "a date regex": re.compile(
        r"\\d\{[34]\}-\\d|\[0-9\]\{4\}-|\{1,4\}\)-\(|\\d\{2\}/\\d\{2\}/|\{1,2\}\)/\("),
    "a KPI 1 threshold (0.80, 80%, the 112/392-day due dates)": re.compile(
        r"\b0?\.80?\b(?!\d)|\b80\s*%|\b80 ?(?:pct|per ?cent)\b|[\s(,=]392\b|[\s(,=:]112\b"),
}
# Output formatting (a published time, a load time in a message) is not a submission format.
FORMAT_EXEMPT = re.compile(r"strftime\(|\{[^{}:]+:%[^{}]*\}|%Y%m%dT")
# Not a copy of the formats: the loader hides anything that looks like a date, in any common
# writing, from the messages it repeats (src/flsdb/ingest/decoding.py, redaction).
REGEX_EXEMPT = {"src/flsdb/ingest/decoding.py"}


def scanned_files() -> list[Path]:
    files = sorted((ROOT / "src").rglob("*.py")) + sorted((ROOT / "models").rglob("*.sql"))
    files += sorted((ROOT / "macros").rglob("*.sql"))
    # model docs, not the unit tests' input rows (test data, which name raw columns by necessity)
    files += [path for path in sorted((ROOT / "models").rglob("*.yml")) if "unit_tests" not in path.name]
    files += [ROOT / "seeds" / "dq_thresholds.csv"]
    return files


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_absolute() else str(path)


def _code_lines(path: Path, text: str) -> list[tuple[int, str]]:
    """Lines without whole-line comments and SQL `--` comments (prose may name a rule)."""
    out = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(("#", "{#", "--")):
            continue
        if path.suffix == ".sql":
            line = line.split("--", 1)[0]
        out.append((number, line))
    return out


def written_out_contract(path: Path, text: str) -> list[str]:
    relative = _relative(path)
    problems = []
    lines = _code_lines(path, text)
    for number, line in lines:
        for what, pattern in WRITTEN_OUT_CONTRACT.items():
            if what == "a submission date format" and FORMAT_EXEMPT.search(line):
                continue
            if what == "a date regex" and relative in REGEX_EXEMPT:
                continue
            if what.startswith("a KPI 1 threshold") and not (
                    relative.startswith("src/flsdb/quality/") or relative == "seeds/dq_thresholds.csv"
                    or "kpi_1" in relative or relative.startswith("macros/")):
                continue
            if pattern.search(line):
                problems.append(f"{relative}:{number}: {what}: {line.strip()}")
    if relative not in MANY_NAMES_ALLOWED:
        code = "\n".join(line for _, line in lines)
        named = {name for name in RAW_NAMES if f"'{name}'" in code or f'"{name}"' in code}
        if len(named) > MAX_RAW_NAMES_PER_FILE:
            problems.append(f"{relative}: names {len(named)} raw columns (a copy of the field list?): "
                            + ", ".join(sorted(named)))
    return problems


def test_no_copy_of_the_submission_contract_remains():
    problems = []
    for path in scanned_files():
        problems += written_out_contract(path, path.read_text(encoding="utf-8"))
    assert problems == [], ("read the contract from flsdb.contract / the submission_fields macros "
                            "instead:\n" + "\n".join(problems))


@pytest.mark.parametrize("where, text", [
    ("src/flsdb/quality/expectations.py", 'NUMBERS = {"2.01 Height": "number:100:230"}'),
    ("macros/submission_fields.sql", "{'column': '1.05 CareRes', 'check': 'code:yes_no_not_known'},"),
    ("macros/x.sql", "{'column': '6.02 Dateof16WeekAss', 'check': 'date_after_fracture:730'},"),
    ("src/flsdb/ingest/row_checks.py", "THEN try_strptime(trim(v), '%d/%m/%Y')::DATE"),
    ("src/flsdb/quality/expectations.py", "f\"try_strptime(trim({c}), '%Y-%m-%dT%H:%M:%S')\""),
    ("src/flsdb/ingest/row_checks.py", r'ISO_DATE = r"[1-9]\d{3}-\d{2}-\d{2}"'),
    ("macros/cross_engine/parse_submission_date.sql",
     r"spark_regex_literal('^\\s*([0-9]{1,2})/([0-9]{1,2})/([0-9]{1,4})\\s*$')"),
    ("src/flsdb/quality/expectations.py", "KPI_1_NULL_RATE_MOSTLY = 0.80"),
    ("src/flsdb/quality/expectations.py", 'KPI_1_DUE_DAYS = {"6.01 FollowUp12_16": 112}'),
    ("src/flsdb/quality/quality_report.py", "legend = 'key fields at least 80% complete'"),
    ("seeds/dq_thresholds.csv", "kpi_1_not_met,warn,0,key fields at least 80% complete"),
    ("src/flsdb/quality/expectations.py",
     "KEY = ('1.02 Date of Birth', '1.03 Gender', '1.04 Post Code', '1.05 CareRes', '1.06 DateFLSContact',"
     " '1.07 DateFLSAssess', '1.08 AdmitHosp', '1.09 Date Index Frac Diagnosed', '1.11 SiteFirstFrac')"),
])
def test_the_scan_finds_a_planted_copy(where, text):
    assert written_out_contract(ROOT / where, text + "\n"), text


def test_the_scan_leaves_output_formats_and_comments_alone():
    assert written_out_contract(ROOT / "src/flsdb/cli.py",
                                "f\"{e['published_at']:%Y-%m-%d %H:%M:%S}\"\n") == []
    assert written_out_contract(ROOT / "src/flsdb/ingest/row_checks.py",
                                "\"strftime(_load_time(), '%Y-%m-%d %H:%M')\",\n") == []
    assert written_out_contract(ROOT / "macros/x.sql", "-- 'number:100:230' is how it was written\n") == []


# --------------------------------------------------------------------------------------------
# The seed itself, and what reads it
# --------------------------------------------------------------------------------------------

def _seed_rows() -> list[dict[str, str]]:
    with open(ROOT / SEED, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_the_seed_is_the_contract_in_dataset_md_order():
    rows = _seed_rows()
    assert [int(r["field_number"]) for r in rows] == list(range(1, len(rows) + 1))
    assert [r["column_name"] for r in rows] == list(contract.COLUMNS)
    # docs/specification/submission-format.md's field table is generated from this seed and
    # checked by tests/python/test_docs.py.
    lists = contract.CODE_LISTS
    for row in rows:
        assert row["kind"] in ("text", "timestamp", "date", "nhs_number", "postcode", "code", "number",
                               "integer"), row
        assert (row["kind"] == "code") == bool(row["code_list"]) and (not row["code_list"] or
                                                                       row["code_list"] in lists), row
        assert (row["kind"] in ("number", "integer")) == bool(row["min_value"]) == bool(row["max_value"]), row
        assert row["date_rule"] in ("", "not_before_fracture") and (not row["date_rule"] or row["kind"] == "date")
        assert not row["max_days_after_fracture"] or row["date_rule"], row
        assert (row["is_kpi_1_key_field"] == "true") == bool(row["kpi_1_recorded_when"]), row
        assert row["kpi_1_measured_over"] in ("", *contract.FOLLOW_UP_DUE_DAYS), row


def test_kpi_1_has_its_17_key_fields_as_kpi_spec_lists_them():
    kpi_seed = list(csv.DictReader(open(ROOT / "seeds/kpi_definitions.csv", encoding="utf-8")))
    completeness = [k for k in kpi_seed if k["grain"] == "completeness"][0]
    assert "the 17 key fields" in completeness["denominator_definition"]
    assert len(contract.KPI_1_KEY_FIELDS) == 17


def test_the_loader_and_gx_read_the_formats():
    from flsdb.ingest import row_checks
    from flsdb.quality import expectations

    macros = "\n".join(row_checks.MACROS)
    for fmt in (*contract.DATE_FORMATS, *contract.TIMESTAMP_FORMATS):
        assert f"'{fmt}'" in macros and contract.strict_format_regex(fmt) in macros
    assert contract.format_wording(contract.DATE_FORMATS) == "YYYY-MM-DD or DD/MM/YYYY"
    assert contract.format_wording(contract.TIMESTAMP_FORMATS) == "YYYY-MM-DDTHH:MM:SS or YYYY-MM-DD HH:MM:SS"
    assert all(f"'{fmt}'" in expectations._parse_date("x") for fmt in contract.DATE_FORMATS)


@pytest.mark.parametrize("text, accepted", [
    ("2024-02-09", True), ("09/02/2024", True), ("2024-2-9", False), ("9/2/2024", False),
    ("0999-01-01", False), ("02024-02-09", False), ("2024/02/09", False), ("24-02-09", False),
])
def test_the_loader_accepts_dates_in_their_written_form_only(text, accepted):
    strict = "|".join(contract.strict_format_regex(fmt) for fmt in contract.DATE_FORMATS)
    assert bool(re.fullmatch(f"(?:{strict})", text)) is accepted


# --------------------------------------------------------------------------------------------
# The Spark date macros, derived from the formats (rendered with plain Jinja: no Spark here)
# --------------------------------------------------------------------------------------------

# Before the formats were held once, the Spark macros wrote these regexes out (as Jinja literals).
SPARK_REGEXES_BEFORE = {
    "date": [r"^\s*([0-9]{1,4})-([0-9]{1,2})-([0-9]{1,2})\s*$",
             r"^\s*([0-9]{1,2})/([0-9]{1,2})/([0-9]{1,4})\s*$"],
    "timestamp": r"^\s*([0-9]{1,4})-([0-9]{1,2})-([0-9]{1,2})(?:T|\s+)([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})\s*$",
}
PROBES = ["2024-02-09", "2024-2-9", " 2024-02-09  ", "09/02/2024", "9/2/2024", "31/02/2024", "2023-02-29",
          "02024-02-09", "24-02-09", "2024/02/09", "2024-02-09x", "2024-02-09T10:00:00",
          "2024-02-09 10:00:00", "2024-02-09T1:2:3", "2024-02-09  10:00:00", "2024-02-09T10:00:60",
          "2024-02-09 24:00:00", "2024-02-09T10:00:00.5", "2024-02-09t10:00:00", "not a date", "",
          "1/1/1000", "0999-01-01", "2024-02-09\t10:00:00", "2024-02-09 \n10:00:00"]


def _render_spark(macro: str) -> str:
    source = (ROOT / "macros/cross_engine/parse_submission_date.sql").read_text(encoding="utf-8")
    source += (ROOT / "macros/cross_engine/regex_full_match.sql").read_text(encoding="utf-8")
    env = jinja2.Environment(extensions=["jinja2.ext.do"])
    project_vars = yaml.safe_load((ROOT / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
    env.globals.update(var=lambda name, default=None: project_vars.get(name, default))
    module = env.from_string(source).module
    return str(getattr(module, macro)("probes.raw"))


def _spark_regexes(sql: str) -> list[str]:
    """The regexes of `rlike '...'` in rendered Spark SQL, as Java/Python reads them."""
    return [body.replace("\\'", "'").replace("\\\\", "\\") for body in
            re.findall(r"rlike '((?:[^'\\]|\\.)*)'", sql)]


def test_spark_date_regexes_are_the_ones_written_out_before():
    assert _spark_regexes(_render_spark("spark__parse_submission_date")) == SPARK_REGEXES_BEFORE["date"]


def test_spark_timestamp_regexes_accept_what_they_accepted_before():
    sql = _render_spark("spark__parse_submission_timestamp")
    regexes = _spark_regexes(sql)
    assert len(regexes) == len(contract.TIMESTAMP_FORMATS)
    before = re.compile(SPARK_REGEXES_BEFORE["timestamp"])
    for probe in PROBES:
        matches = [m for m in (re.search(r, probe) for r in regexes) if m]
        old = before.search(probe)
        assert bool(matches) == bool(old), probe
        if old:  # the same year, month, day, hour, minute, second, in the order make_timestamp_ntz takes
            assert len(matches) == 1 and matches[0].groups() == old.groups(), probe
    # every group make_timestamp_ntz reads is extracted in Y m d H M S order
    assert sql.count("try_make_timestamp_ntz(") == len(contract.TIMESTAMP_FORMATS)


# --------------------------------------------------------------------------------------------
# Every var a model reads is declared
# --------------------------------------------------------------------------------------------

VAR_USE = re.compile(r"""\bvar\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]|\bfile_path_var:\s*['"]?([A-Za-z_][A-Za-z0-9_]*)""")


def vars_used(text: str) -> set[str]:
    return {a or b for a, b in VAR_USE.findall(text)}


def declared_vars() -> dict[str, bool]:
    """Top-level vars of dbt_project.yml -> whether a comment introduces them (the line above is a
    comment, or another var of a group the comment above introduces)."""
    lines = (ROOT / "dbt_project.yml").read_text(encoding="utf-8").splitlines()
    start = lines.index("vars:")
    declared: dict[str, bool] = {}
    previous_commented = False
    previous_kind = ""
    for line in lines[start + 1:]:
        if line and not line.startswith(" "):
            break
        key = re.match(r"^  ([A-Za-z_][A-Za-z0-9_]*):", line)
        if line.strip().startswith("#") and line.startswith("  #"):
            previous_kind = "comment"
        elif key:
            commented = previous_kind == "comment" or (previous_kind == "var" and previous_commented)
            declared[key.group(1)] = commented
            previous_commented, previous_kind = commented, "var"
        elif line.strip():
            previous_kind = "nested"
    return declared


def test_every_var_a_model_reads_is_declared_with_a_comment():
    used: dict[str, list[str]] = {}
    for folder in ("models", "macros", "analyses", "tests"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".sql", ".yml", ".yaml", ".jinja") and path.is_file():
                for name in vars_used(path.read_text(encoding="utf-8")):
                    used.setdefault(name, []).append(_relative(path))
    declared = declared_vars()
    missing = {name: where for name, where in used.items() if name not in declared}
    assert missing == {}, f"declare these vars in dbt_project.yml (vars:), with a comment: {missing}"
    uncommented = [name for name in used if not declared[name]]
    assert uncommented == [], f"say what these vars are for, in a comment above them: {uncommented}"
    assert {"extract_date", "submission_date_formats", "follow_up_due_days"} <= set(used)


def test_the_var_scan_finds_an_undeclared_var():
    assert vars_used("select {{ var('not_a_declared_var', 3) }}") == {"not_a_declared_var"}
    assert vars_used('meta:\n  file_path_var: some_path_var\n') == {"some_path_var"}
    assert "not_a_declared_var" not in declared_vars()
