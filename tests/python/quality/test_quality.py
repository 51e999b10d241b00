"""The data-quality gate (issues 4 and 13): dbt tests, the data-quality models (models/quality/),
GX suites, the report, and `flsdb publish`.

Reuses the session warehouse of conftest.py (default synthetic data, built once). Validation of
it runs once per module; the blocking-defect test works on a copy.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from conftest import run_dbt
from flsdb import contract, paths
from flsdb.cli import main as cli
from flsdb.quality import gate, signoff
from flsdb.quality.validate import FAIL, PASS_WITH_WARNINGS, validate

REJECT_CLASSES = {"wrong_column_count", "missing_required_value", "invalid_date",
                  "invalid_nhs_number", "unknown_fls_code", "fracture_after_extract",
                  "fracture_before_2016", "birth_after_fracture", "age_over_110",
                  "invalid_fracture_site"}
EXCLUSION_CLASSES = {"under_50": "aged under 50 at the fracture",
                     "duplicate_episode": "duplicate episode"}
WARNING_REASONS = {  # defect class -> the warning reasons staging may give it
    "invalid_code": {"not one of the listed codes"},
    "number_out_of_range": {"not a number"} | {f"outside the range {a} to {b}" for a, b in
                                               [(100, 230), (25, 250), (-6, 4), (0, 100), (0, 20)]},
    "invalid_postcode": {"not a valid UK postcode"},
    "date_before_fracture": {"dated before the fracture"},
    "follow_up_too_late": {"dated more than 2 years after the fracture"},
    "death_before_fracture": {"dated before the fracture"},
}


@pytest.fixture(scope="module")
def validated(built_warehouse, tmp_path_factory):
    out = tmp_path_factory.mktemp("quality")
    result = validate(built_warehouse["warehouse"], out, built_warehouse["target"] / "run_results.json",
                      history=out / "no-history.duckdb")
    return result, out


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------------------------
# Default synthetic data: PASS WITH WARNINGS, warnings = injected defects
# --------------------------------------------------------------------------------------------

def test_default_data_passes_with_warnings(validated):
    result, out = validated
    assert result.verdict == PASS_WITH_WARNINGS, result.blocking_failures
    data = json.loads((out / "validation.json").read_text())
    assert set(data) == {"verdict", "extract_date", "warehouse", "warehouse_fingerprint", "checks_skipped",
                         "generated_at", "checks"}
    assert data["checks_skipped"] == [] and data["warehouse_fingerprint"]   # what the sign-off binds to
    assert data["verdict"] == PASS_WITH_WARNINGS and data["extract_date"]
    for check in data["checks"]:
        assert set(check) == {"name", "source", "severity", "status", "description", "detail"}
        assert check["source"] in {"dbt", "gx", "dq"}
        assert check["severity"] in {"error", "warn", "info"} and check["status"] in {"pass", "fail"}
        assert check["severity"] != "info" or check["status"] == "pass"   # information never fails
        # in words an audit lead uses: a sentence, not an expectation or test name
        assert check["description"].strip() and " " in check["description"], check
        assert "expect_" not in check["description"], check
    sources = Counter(c["source"] for c in data["checks"])
    # every row of the seed is a check, but the threshold of the comparison with the last
    # approved extract (read by the report, not measured in the warehouse)
    seed = [row for row in read_csv(paths.PROJECT_DIR / "seeds" / "dq_thresholds.csv")
            if row["measured_as"] != "change since approved"]
    assert sources["dbt"] > 100 and sources["gx"] > 50 and sources["dq"] == len(seed)
    failed = {c["name"] for c in data["checks"] if c["status"] == "fail"}
    # the injected defects are found (measured above zero) but warn only above their thresholds:
    # every failed data-quality check names the services above it, and only those
    con = duckdb.connect(str(result.warehouse), read_only=True)
    above = {(name, code) for name, code in con.execute(
        "select check_name, fls_code from quality.dq_check_services where is_above_threshold").fetchall()}
    measured = dict(con.execute("select check_name, measured_value from quality.dq_checks").fetchall())
    con.close()
    assert all(measured[name] > 0 for name in ("rows_rejected", "field_warnings",
                                               "excluded_duplicate_episode", "excluded_under_50"))
    for check in result.checks:
        if check["source"] == "dq" and check.get("measured_as", "").startswith("service share"):
            named = {(check["check_name"], code) for code in check["services"]}
            assert named == {pair for pair in above if pair[0] == check["check_name"]}, check["name"]
            assert (check["status"] == "fail") == bool(named), check["name"]
    assert "dq.excluded_under_50" not in failed and "dq.kpi_1_not_met" not in failed
    # each dq check says what the seed says it checks, KPI 1's rule filled in from the KPI seed
    kpi_1 = next(k for k in read_csv(paths.PROJECT_DIR / "seeds" / "kpi_definitions.csv")
                 if k["grain"] == "completeness")
    rule = {"{key_field_threshold_pct}": f"{float(kpi_1['key_field_threshold_pct']):g}",
            "{fewest_key_fields_below_threshold_not_met}": str(int(kpi_1["max_key_fields_below_threshold"]) + 1),
            "{minimum_age}": str(contract.MIN_AGE_YEARS)}

    def filled(text: str) -> str:
        for placeholder, value in rule.items():
            text = text.replace(placeholder, value)
        return text

    described = {c["name"]: c["description"] for c in data["checks"] if c["source"] == "dq"}
    assert described == {f"dq.{row['check_name']}": filled(row["description"]) for row in seed}
    assert "{" not in "".join(described.values())
    assert f"less than {rule['{key_field_threshold_pct}']}%" in described["dq.kpi_1_not_met"]
    # the GX raw suite finds the injected warning defects on its own (counted; below the share
    # of unusable values the seed allows, so not a warning)
    postcode = next(c for c in result.checks
                    if c["name"].startswith("gx.raw_submissions.expect_column_values_to_match_regex[1.04 Post Code"))
    assert postcode["unexpected_count"] > 0


def test_every_problem_matches_an_injected_defect_by_file_and_line(validated, built_warehouse):
    _, out = validated
    manifest = [d for d in read_csv(built_warehouse["landing"] / "_reference" / "injected_defects.csv")
                if d["defect_class"] != "re_export_version"]
    every_problem = read_csv(out / "problems.csv")
    # one problem per injected defect; records of unknown deprivation are listed too (counted
    # against the episodes below), and a rejected newest version would add a second line
    problems = [p for p in every_problem if p["kind"] not in ("unknown deprivation", "newer version rejected")]
    con = duckdb.connect(str(built_warehouse["warehouse"]), read_only=True)
    unknown = con.execute("select count(*) from marts.fct_episodes where is_in_cohort "
                          "and deprivation_quintile = 'unknown'").fetchone()[0]
    con.close()
    assert sum(p["kind"] == "unknown deprivation" for p in every_problem) == unknown > 0
    assert all(p["description"] for p in every_problem)
    found = {(p["source_file"], int(p["line_number"])): p for p in problems}
    assert len(found) == len(problems), "one problem per file line"
    missing, wrong = [], []
    for d in manifest:
        p = found.get((d["source_file"], int(d["line_number"])))
        cls = d["defect_class"]
        if p is None:
            missing.append(d)
        elif cls in REJECT_CLASSES:
            ok = p["kind"] == "row rejected" and p["code"] == cls
            wrong += [] if ok else [(d, p)]
        elif cls in EXCLUSION_CLASSES:
            wrong += [] if p["kind"] == "exclusion" and p["code"] == EXCLUSION_CLASSES[cls] else [(d, p)]
        else:
            ok = (p["kind"] == "warning" and p["field"] == d["column_name"]
                  and p["reason"] in WARNING_REASONS[cls])
            wrong += [] if ok else [(d, p)]
    assert not missing, missing[:5]
    assert not wrong, wrong[:5]
    # ...and nothing else was reported: the report's problems are exactly the injected defects
    assert len(problems) == len(manifest)
    assert {d["defect_class"] for d in manifest} == REJECT_CLASSES | set(EXCLUSION_CLASSES) | set(WARNING_REASONS)
    # each problem is in its service's feedback file, with its file and line
    for p in problems:
        if p["fls_code"]:
            feedback = (out / "feedback" / f"{p['fls_code']}.html").read_text(encoding="utf-8")
            assert p["source_file"] in feedback and f">{p['line_number']}<" in feedback, p


class _Sections(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.remote, self.verdict, self._in_verdict = set(), [], [], "", False
        self.banner = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.links.append(attrs.get("href", ""))
        for key in ("src", "href"):
            if str(attrs.get(key, "")).startswith(("http://", "https://", "//")):
                self.remote.append(attrs[key])
        if tag in ("script", "img", "iframe") or (tag == "link" and attrs.get("rel") == "stylesheet"):
            self.remote.append(f"<{tag}>")
        classes = attrs.get("class", "").split()
        self._in_verdict = "verdict" in classes
        self.banner = self.banner or "banner" in classes

    def handle_data(self, data):
        if self._in_verdict:
            self.verdict += data
            self._in_verdict = False


def test_report_renders_self_contained_pages_with_every_section(validated):
    result, out = validated
    sections = {"report.html": {"verdict", "decision", "warnings", "changes", "services", "all-checks"},
                "checks.html": {"thresholds", "kpi-1", "gx", "dbt"},
                "changes.html": set(), "feedback/SYN001.html": {"summary", "problems"}}
    for name, ids in sections.items():
        page = _Sections()
        text = (out / name).read_text(encoding="utf-8")
        page.feed(text)
        assert ids <= page.ids, (name, ids - page.ids)
        assert page.banner, ("synthetic-data banner", name)
        assert page.remote == [], ("self-contained: no remote or external resource", name)
        assert "<style>" in text and (name == "changes.html" or "SYN001" in text), name
        assert name.startswith("feedback/") or "Internal: for the audit team only" in text, name
    page = _Sections()
    page.feed((out / "report.html").read_text(encoding="utf-8"))
    assert page.verdict.strip() == result.verdict == PASS_WITH_WARNINGS
    assert {"checks.html", "changes.html", "problems.csv", "feedback/SYN001.html"} <= set(page.links)
    page = _Sections()
    page.feed((out / "checks.html").read_text(encoding="utf-8"))
    assert "data_docs/index.html" in page.links
    docs = out / "data_docs" / "index.html"
    assert docs.exists()
    for doc in (out / "data_docs").rglob("*.html"):
        assert "cdn.jsdelivr" not in doc.read_text(encoding="utf-8")


def test_the_gate_passes_a_passing_extract_once_signed_off(validated, built_warehouse):
    """The gate and the sign-off in full: tests/python/quality/test_gate.py."""
    result, out = validated
    with pytest.raises(gate.NotSignedOff):
        gate.check_publication(out / "validation.json", built_warehouse["warehouse"])
    reviewed = signoff.review(out / "validation.json")
    signoff.record_decision(reviewed, signoff.APPROVED, "Dr Test Reviewer")
    approval = gate.check_publication(out / "validation.json", built_warehouse["warehouse"])
    assert approval["decision"] == "approved" and approval["verdict"] == PASS_WITH_WARNINGS
    assert approval["extract_date"] == result.extract_date and approval["reviewer"] == "Dr Test Reviewer"
    assert approval["validation"]["sha256"] == hashlib.sha256((out / "validation.json").read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# A blocking defect: validation fails and publication is refused
# --------------------------------------------------------------------------------------------

def test_blocking_defect_fails_validation_and_publication_is_refused(built_warehouse, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built_warehouse["warehouse"], copy)
    con = duckdb.connect(str(copy))
    (fls, year) = con.execute("""
        select geography_code, audit_year from marts.kpi_results
        where kpi_number = 4 and geography_level = 'fls' and breakdown = 'all'
        order by 1, 2 limit 1""").fetchone()
    con.execute("""
        update marts.kpi_results set numerator = denominator + 7
        where kpi_number = 4 and geography_level = 'fls' and breakdown = 'all'
          and geography_code = ? and audit_year = ?""", [fls, year])
    con.execute("""
        update marts.fct_episodes set record_id = '943 476 5919'
        where (fls_code, record_id) = (select (fls_code, record_id) from marts.fct_episodes limit 1)""")
    con.close()
    target = tmp_path / "target"
    tested = run_dbt(["test", "--select", "kpi_results", "fct_episodes"], copy,
                     built_warehouse["landing"], target)
    assert tested.returncode != 0
    out = tmp_path / "quality"
    result = validate(copy, out, target / "run_results.json", gx_suites={"kpi_results"},
                      history=tmp_path / "no-history.duckdb")
    assert result.verdict == FAIL
    blocking = {c["name"] for c in result.blocking_failures}
    assert any(n.startswith("dbt.numerator_at_most_denominator_kpi_results_") for n in blocking), blocking
    assert "dbt.no_identifiers_fct_episodes_" in blocking
    assert any(n.startswith("gx.kpi_results.expect_column_pair_values_a_to_be_greater_than_b")
               for n in blocking)
    report = (out / "report.html").read_text()
    assert ">FAIL<" in report and "Blocking failures" in report
    assert "fct_episodes holds no NHS number, postcode or date of birth" in report
    assert "numerator_at_most_denominator" in (out / "checks.html").read_text()

    outcome = CliRunner().invoke(cli, ["publish", "--validation", str(out / "validation.json"),
                                       "--output", str(tmp_path / "publish")])
    assert outcome.exit_code != 0
    assert "Publication refused" in outcome.output
    assert "numerator_at_most_denominator" in outcome.output
    assert "dbt.no_identifiers_fct_episodes_" in outcome.output
    assert not (tmp_path / "publish" / "approval.json").exists()


# --------------------------------------------------------------------------------------------
# Every custom generic test can fail
# --------------------------------------------------------------------------------------------

PROBE_TESTS = textwrap.dedent("""
    version: 2
    sources:
      {%- for schema in ['good', 'bad'] %}
      - name: {{ schema }}
        schema: {{ schema }}
        tables:
          - name: results
            data_tests:
              - numerator_at_most_denominator:
                  config: {where: "kpi_number not in (2, 3)"}
              - expression_is_true:
                  arguments: {expression: "denominator >= numerator or kpi_number in (2, 3)"}
              - sum_at_most:
                  arguments: {column_name: share, group_by: [grp], max_value: 1}
              - unique_combination:
                  arguments: {combination: [grp, code]}
              - no_identifiers
              - not_null_columns:
                  arguments: {column_names: [grp, note]}
            columns:
              - name: value_pct
                data_tests: [kpi_value_in_percentage_range]
              - name: share
                data_tests:
                  - accepted_range:
                      arguments: {min_value: 0, max_value: 1}
          - name: load_files
            data_tests:
              - rows_read_reconcile:
                  arguments:
                    records: source('{{ schema }}', 'records')
                    rejects: source('{{ schema }}', 'rejects')
          - name: records
          - name: rejects
      {%- endfor %}
""")
CUSTOM_TESTS = {"numerator_at_most_denominator", "expression_is_true", "sum_at_most",
                "unique_combination", "no_identifiers", "kpi_value_in_percentage_range",
                "accepted_range", "rows_read_reconcile", "not_null_columns"}


def test_every_custom_generic_test_fails_on_a_row_that_breaks_it(tmp_path):
    generic = {p.stem.removeprefix("test_") for p in (paths.PROJECT_DIR / "tests" / "generic").glob("test_*.sql")}
    assert generic == CUSTOM_TESTS, "a new generic test needs a breaking row here"
    project = tmp_path / "probe"
    (project / "models").mkdir(parents=True)
    (project / "tests").mkdir()
    (project / "tests" / "generic").symlink_to(paths.PROJECT_DIR / "tests" / "generic")
    (project / "macros").symlink_to(paths.PROJECT_DIR / "macros")
    (project / "dbt_project.yml").write_text(
        "name: probe\nversion: '1.0'\nconfig-version: 2\nprofile: probe\n"
        "macro-paths: [macros]\ntest-paths: [tests]\nmodel-paths: [models]\n")
    import jinja2
    (project / "models" / "sources.yml").write_text(jinja2.Template(PROBE_TESTS).render())
    database = tmp_path / "probe.duckdb"
    (project / "profiles.yml").write_text(
        f"probe:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: '{database}'\n"
        "      threads: 4\n")
    con = duckdb.connect(str(database))
    rows = {
        # kpi_number, numerator, denominator, value_pct, share, grp, code, note
        "good": [(4, 5, 10, 50.0, 0.5, "a", "x1", "fine"), (2, 120, 100, 120.0, 0.4, "b", "x2", "ok")],
        "bad": [(4, 11, 10, 110.0, 1.5, "a", "x1", "943 476 5919"),
                (4, 11, 10, 110.0, 0.9, "a", "x1", "YA1 3BD"),
                (4, 1, 10, 10.0, 0.1, None, "x3", None)],          # not_null_columns
    }
    files = {"good": (3, 2, 1, 2, 1), "bad": (3, 2, 0, 2, 0)}  # read, accepted, rejected, stored
    for schema in ("good", "bad"):
        con.execute(f"create schema {schema}")
        con.execute(f"create table {schema}.results (kpi_number integer, numerator double, "
                    "denominator double, value_pct double, share double, grp varchar, code varchar, "
                    "note varchar)")
        con.executemany(f"insert into {schema}.results values (?, ?, ?, ?, ?, ?, ?, ?)", rows[schema])
        read, accepted, rejected, stored_records, stored_rejects = files[schema]
        con.execute(f"create table {schema}.load_files as select 'f1' as file_sha256, 'a.csv' as "
                    f"source_file, 'loaded' as status, {read} as rows_read, {accepted} as rows_accepted, "
                    f"{rejected} as rows_rejected")
        con.execute(f"create table {schema}.records as select 'f1' as _file_sha256 from range({stored_records})")
        con.execute(f"create table {schema}.rejects as select 'f1' as _file_sha256 from range({stored_rejects})")
    con.close()
    dbt = Path(sys.executable).with_name("dbt")
    done = subprocess.run([str(dbt), "test", "--project-dir", str(project), "--profiles-dir", str(project)],
                          cwd=project, capture_output=True, text=True, env={**__import__("os").environ,
                                                                            "DO_NOT_TRACK": "1"})
    results = json.loads((project / "target" / "run_results.json").read_text())["results"]
    status: dict[tuple[str, str], str] = {}
    for r in results:
        name = r["unique_id"].split(".")[2]
        test = next(t for t in sorted(CUSTOM_TESTS, key=len, reverse=True) if f"_{t}_" in f"_{name}")
        schema = "good" if "_good_" in name else "bad"
        status[(test, schema)] = r["status"]
    assert {t for t, _ in status} == CUSTOM_TESTS, done.stdout[-3000:]
    for test in CUSTOM_TESTS:
        assert status[(test, "bad")] == "fail", (test, done.stdout[-3000:])
        assert status[(test, "good")] == "pass", (test, done.stdout[-3000:])


# ---------------------------------------------------------------------------------------------
# GX on samples of the big tables, whole on the small ones
# ---------------------------------------------------------------------------------------------

def test_gx_validates_a_bounded_repeatable_sample_of_big_tables(built_warehouse, tmp_path):
    from flsdb.quality import expectations, gx_run

    con = duckdb.connect(str(built_warehouse["warehouse"]), read_only=True)
    ctx = expectations.read_context(con, sample_rows=2_000)
    only = {"raw_submissions", "kpi_results"}
    first = gx_run.run_suites(con, tmp_path / "gx1", tmp_path / "docs1", ctx, only=only)
    again = gx_run.run_suites(con, tmp_path / "gx2", tmp_path / "docs2", ctx, only=only)
    results_rows = con.execute("select count(*) from marts.kpi_results").fetchone()[0]
    con.close()
    raw = [c for c in first if c["suite"] == "raw_submissions"]
    whole = [c for c in first if c["suite"] == "kpi_results"]
    assert raw and all(c["rows_checked"] == 2_000 and c["sampled"] for c in raw)
    assert whole and all(c["rows_checked"] == results_rows and not c["sampled"] for c in whole)
    assert all("random sample of 2,000 rows" in c["detail"] for c in raw)

    def key(check):
        return {k: check[k] for k in ("name", "status", "unexpected_count", "element_count")}

    assert [key(c) for c in first] == [key(c) for c in again]  # the same sample every run


def test_gx_suites_read_the_kpi_list_from_the_kpi_seed(built_warehouse):
    from flsdb.quality import expectations

    con = duckdb.connect(str(built_warehouse["warehouse"]), read_only=True)
    ctx = expectations.read_context(con)
    con.close()
    seed = read_csv(paths.PROJECT_DIR / "seeds" / "kpi_definitions.csv")
    assert ctx.kpi_numbers == tuple(int(r["kpi_number"]) for r in seed)
    assert ctx.ratio_kpis == tuple(int(r["kpi_number"]) for r in seed
                                   if r["value_type"] == "ratio_to_expected")
    # the null-rate check on KPI 1's raw key fields uses KPI 1's threshold from the seed
    assert [ctx.key_field_share] == [float(r["key_field_threshold_pct"]) / 100 for r in seed
                                     if r["grain"] == "completeness"]
    raw_suite = expectations._suite_raw_submissions(gx_module(), ctx)
    key_checks = [e for e in raw_suite if type(e).__name__ == "ExpectColumnValuesToNotBeNull"
                  and getattr(e, "mostly", 1) != 1]
    assert len(key_checks) == len(expectations.KPI_1_KEY_FIELDS)
    assert {e.mostly for e in key_checks} == {ctx.key_field_share}
    import great_expectations as gx
    suite = expectations._suite_kpi_results(gx, ctx)
    in_set = next(e for e in suite if getattr(e, "column", None) == "kpi_number")
    assert sorted(in_set.value_set) == sorted(ctx.kpi_numbers)


def gx_module():
    import great_expectations as gx
    return gx


def test_no_kpi_count_threshold_or_quality_fact_is_written_in_python():
    import re

    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in (paths.PROJECT_DIR / "src" / "flsdb" / "quality").glob("*.py"))
    for pattern in (r"max_value=11\b", r"min_value=11\b", r"range\(\d+, 12\)", r"/17\b",
                    r"WARN_SHARE", r"LIMIT_PCT", r"raw\.submission_rejects", r"raw\.load_files",
                    r"int_submission_warnings_unpivoted", r"group by"):
        assert not re.search(pattern, source, re.IGNORECASE), pattern


# ---------------------------------------------------------------------------------------------
# Thresholds come from the seed: a dq check changes its verdict with the seed row
# ---------------------------------------------------------------------------------------------

def test_dq_check_threshold_comes_from_the_seed_and_an_error_check_blocks(built_warehouse, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built_warehouse["warehouse"], copy)
    con = duckdb.connect(str(copy))
    rejected = con.execute("select measured_value from quality.dq_checks "
                           "where check_name = 'rows_rejected'").fetchone()[0]
    assert rejected > 0
    con.execute("update reference.dq_thresholds set threshold_value = ? "
                "where check_name = 'rows_rejected'", [rejected])
    # a KPI missing from one year's national results: a blocking dq check
    year = con.execute("select max(audit_year) from marts.kpi_results").fetchone()[0]
    con.execute("delete from marts.kpi_results where audit_year = ? and kpi_number = 5 "
                "and geography_level = 'national'", [year])
    con.close()
    target = tmp_path / "target"
    done = run_dbt(["run", "--select", "dq_checks"], copy, built_warehouse["landing"], target)
    assert done.returncode == 0, done.stdout[-3000:]
    result = validate(copy, tmp_path / "quality", built_warehouse["target"] / "run_results.json",
                      run_gx=False, history=tmp_path / "no-history.duckdb")
    checks = {c["name"]: c for c in result.checks}
    assert checks["dq.rows_rejected"]["status"] == "pass"          # at the new threshold
    every_kpi = checks["dq.kpi_results_every_kpi"]
    assert every_kpi["status"] == "fail" and every_kpi["severity"] == "error"
    assert f"{year} national" in every_kpi["detail"]
    assert result.verdict == FAIL


# ---------------------------------------------------------------------------------------------
# Checks in words an audit lead uses
# ---------------------------------------------------------------------------------------------

def test_dbt_tests_and_gx_expectations_are_worded_for_an_audit_lead():
    from types import SimpleNamespace

    from flsdb.quality.gx_run import describe
    from flsdb.quality.validate import describe_dbt_test

    not_null = {"attached_node": "model.flsdb.fct_episodes", "column_name": "line_number",
                "test_metadata": {"name": "not_null", "kwargs": {"column_name": "line_number"}}}
    assert describe_dbt_test("test", not_null, "not_null_fct_episodes_line_number") == \
        "'line_number' of fct_episodes is always recorded."
    documented = {**not_null, "description": "Every episode names\n its line."}
    assert describe_dbt_test("test", documented, "x") == "Every episode names its line."
    assert describe_dbt_test("unit_test", {"model": "int_episodes_kpi_flagged"}, "kpi_4_boundary") == \
        "Unit test of int_episodes_kpi_flagged: kpi 4 boundary."
    worded = SimpleNamespace(type="expect_column_values_to_not_be_null", meta={},
                             kwargs={"column": "3.01 DXA", "mostly": 0.8})
    assert describe(worded) == "'3.01 DXA' is recorded in at least 80% of rows."
    between = SimpleNamespace(type="expect_column_values_to_be_between", meta=None,
                              kwargs={"column": "value_pct", "min_value": 0, "max_value": 100,
                                      "row_condition": "kpi_number not in [2, 3]"})
    assert describe(between) == "'value_pct' is between 0 and 100 in every row (where kpi_number not in [2, 3])."
    said = SimpleNamespace(type="expect_table_row_count_to_be_between", kwargs={},
                           meta={"description": "The checks were computed."})
    assert describe(said) == "The checks were computed."


def test_a_build_that_skipped_the_quality_models_still_gets_a_failing_report(built_warehouse, tmp_path):
    """A failing error test upstream makes `dbt build` skip models/quality/ (on a first build they
    do not exist): validate still writes the report, with a blocking check that says so."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built_warehouse["warehouse"], copy)
    con = duckdb.connect(str(copy))
    con.execute("drop schema quality cascade")
    con.close()
    out = tmp_path / "quality"
    result = validate(copy, out, built_warehouse["target"] / "run_results.json", run_gx=False,
                      progress=lambda line: None, history=tmp_path / "no-history.duckdb")
    assert result.verdict == FAIL
    assert [c["name"] for c in result.blocking_failures] == ["dq.models_built"]
    assert ">FAIL<" in (out / "report.html").read_text(encoding="utf-8")
