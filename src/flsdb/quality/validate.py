"""`flsdb validate`: every check on one extract, one verdict, and the data-quality report.

Collects, and computes nothing itself:
- `dbt`: the data and unit tests of the last dbt build, read from its run_results.json (the
  severity and description of each test from the manifest.json beside it);
- `dq`: the rows of quality.dq_checks, the data-quality facts computed by dbt (models/quality/)
  against the thresholds of seeds/dq_thresholds.csv;
- `gx`: the Great Expectations suites of flsdb.quality.expectations, on the small outputs whole
  and on samples of the big tables.

A check is `error` (blocks publication), `warn` (reported) or `info` (a data-quality fact shown
for information: it always passes). The verdict is FAIL when any error check fails, PASS WITH
WARNINGS when only warn checks fail, else PASS. Every check carries a plain-English
`description` (dq_checks' description, the dbt test's, or GX's worded expectation), which is what
the report shows.

Beside the checks it reads what the report shows (flsdb.quality.quality_report): the per-service
facts of the quality models, the services a GX warning concerns, and what changed since the last
approved extract (flsdb.quality.changes, from the extract history, read-only).

Writes into the output folder (default output/quality/): validation.json, the report
(report.html, the page an audit lead reviews, with checks.html and changes.html beside it),
problems.csv (every row of quality.dq_problems with its file, line and what to do), one feedback
file per service (feedback/<FLS code>.html and .csv; flsdb.quality.feedback), and the GX Data Docs
site under data_docs/.

For the sign-off (flsdb.quality.signoff), validation.json also records the warehouse it read
(path and content fingerprint, taken before reading it) and the checks it skipped, and
validation.json and report.html are sealed once written (validation.seal).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable

import duckdb

from flsdb import paths
from flsdb.safe_csv import write_csv

PASS, PASS_WITH_WARNINGS, FAIL = "PASS", "PASS WITH WARNINGS", "FAIL"
CHECK_FIELDS = ("name", "source", "severity", "status", "description", "detail")
PROBLEM_COLUMNS = ("kind", "code", "field", "reason", "description", "fls_code", "source_file",
                   "line_number", "title", "action")
#: validation.json's `source` -> the words the report uses for it (one vocabulary everywhere)
SOURCE_WORDS = {"dbt": "tests of the build", "dq": "data-quality measures",
                "gx": "independent checks of the data"}


def output_dir() -> Path:
    """The quality outputs folder: $FLSDB_OUTPUT/quality (default output/quality)."""
    return paths.output_dir() / "quality"


def default_run_results() -> Path:
    """dbt's run_results.json: in $DBT_TARGET_PATH when set (as dbt itself does), else target/."""
    target = Path(os.environ.get("DBT_TARGET_PATH", "target"))
    return (target if target.is_absolute() else paths.PROJECT_DIR / target) / "run_results.json"


def print_progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Validation:
    verdict: str
    extract_date: str | None
    warehouse: str
    generated_at: str
    checks: list[dict]
    facts: dict = field(default_factory=dict)
    warehouse_fingerprint: dict | None = None
    checks_skipped: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"verdict": self.verdict, "extract_date": self.extract_date,
                "warehouse": self.warehouse, "generated_at": self.generated_at,
                "warehouse_fingerprint": self.warehouse_fingerprint,
                "checks_skipped": self.checks_skipped,
                "checks": [{k: c.get(k, "") for k in CHECK_FIELDS} for c in self.checks]}

    @property
    def blocking_failures(self) -> list[dict]:
        return [c for c in self.checks if c["severity"] == "error" and c["status"] == "fail"]

    @property
    def warnings(self) -> list[dict]:
        return [c for c in self.checks if c["severity"] == "warn" and c["status"] == "fail"]

    @property
    def information(self) -> list[dict]:
        return [c for c in self.checks if c["severity"] == "info"]

    def check_counts(self) -> list[dict]:
        """The number of checks per source, passed, blocking and warning: the one count the
        report, its details page and the command line all say."""
        counts = []
        for source, words in SOURCE_WORDS.items():
            mine = [c for c in self.checks if c["source"] == source]
            counts.append({"source": source, "words": words, "total": len(mine),
                           "passed": sum(c["status"] == "pass" for c in mine),
                           "blocking": sum(c["status"] == "fail" and c["severity"] == "error" for c in mine),
                           "warnings": sum(c["status"] == "fail" and c["severity"] == "warn" for c in mine),
                           "information": sum(c["severity"] == "info" for c in mine)})
        return counts

    def summary(self) -> str:
        """One line: the verdict and the counts, as the command line prints it."""
        return (f"{self.verdict} ({len(self.checks)} checks, {len(self.blocking_failures)} blocking "
                f"failures, {len(self.warnings)} warnings)")


def verdict_of(checks: list[dict]) -> str:
    if any(c["severity"] == "error" and c["status"] == "fail" for c in checks):
        return FAIL
    if any(c["status"] == "fail" for c in checks):
        return PASS_WITH_WARNINGS
    return PASS


# --------------------------------------------------------------------------------------------
# dbt
# --------------------------------------------------------------------------------------------

def dbt_checks(run_results: Path) -> list[dict]:
    """One check per dbt test (data and unit tests), one per model/seed that did not succeed,
    and one for the build as a whole."""
    if not run_results.exists():
        return [{"name": "dbt.run_results", "source": "dbt", "severity": "error", "status": "fail",
                 "description": "The results of the last dbt build (its tests) are available.",
                 "detail": f"{run_results} not found: run `flsdb build` (dbt build) first."}]
    data = json.loads(run_results.read_text(encoding="utf-8"))
    manifest_path = run_results.with_name("manifest.json")
    nodes: dict = {}
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        nodes = {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}
    checks = []
    other_failures = 0
    for result in data.get("results", []):
        uid = result["unique_id"]
        kind = uid.split(".")[0]
        status = result.get("status")
        node = nodes.get(uid, {})
        # dbt colours its unit-test diffs for a terminal: the report shows text
        message = re.sub(r"\x1b\[[0-9;]*m", "", result.get("message") or "").strip()
        if kind in ("test", "unit_test"):
            configured = str((node.get("config") or {}).get("severity") or "error").lower()
            severity = "warn" if status == "warn" or configured == "warn" else "error"
            ok = status == "pass"
            name = node.get("name") or uid.split(".")[-2] if "." in uid else uid
            where = node.get("original_file_path", "")
            detail = (f"{kind.replace('_', ' ')} {status}"
                      + (f": {result.get('failures')} failing row(s)" if result.get("failures") else "")
                      + (f" - {message}" if message and not ok else "")
                      + (f" ({where})" if where else ""))
            checks.append({"name": f"dbt.{name}", "source": "dbt", "severity": severity,
                           "status": "pass" if ok else "fail", "detail": detail,
                           "description": describe_dbt_test(kind, node, name),
                           "unique_id": uid, "dbt_status": status,
                           "failures": result.get("failures")})
        elif str(status).lower() not in ("success", "pass", "no-op", "noop"):
            other_failures += 1
            checks.append({"name": f"dbt.{uid}", "source": "dbt", "severity": "error",
                           "status": "fail", "detail": f"{kind} {status}: {message}",
                           "description": f"The {kind} {uid.split('.')[-1]} was built without error.",
                           "unique_id": uid, "dbt_status": status})
    generated = data.get("metadata", {}).get("generated_at", "")
    checks.append({"name": "dbt.build", "source": "dbt", "severity": "error",
                   "description": "Every model and seed of the last dbt build was built without error.",
                   "status": "fail" if other_failures else "pass",
                   "detail": f"{len(data.get('results', []))} nodes in {run_results} "
                             f"(generated {generated}); {other_failures} model/seed failure(s)"})
    return checks




def _attached(node: dict) -> str:
    attached = node.get("attached_node") or ""
    if attached:
        return attached.split(".")[-1]
    for dep in (node.get("depends_on") or {}).get("nodes", []):
        if dep.split(".")[0] in ("model", "seed", "source", "snapshot"):
            return dep.split(".")[-1]
    return "the table"


def describe_dbt_test(kind: str, node: dict, name: str) -> str:
    """A dbt test in plain English: its own description when it has one, else worded from the
    generic test it instantiates."""
    if (node.get("description") or "").strip():
        return " ".join(node["description"].split())
    table = node.get("model") if kind == "unit_test" else _attached(node)
    if kind == "unit_test":
        return f"Unit test of {table}: {name.replace('_', ' ')}."
    meta = node.get("test_metadata") or {}
    test = meta.get("name", "")
    kwargs = meta.get("kwargs") or {}
    column = kwargs.get("column_name") or node.get("column_name") or ""
    where = f"'{column}' of {table}" if column else table
    words = {
        "not_null": f"{where} is always recorded.",
        "not_null_columns": (", ".join(f"'{c}'" for c in kwargs.get("column_names") or [])
                             + f" of {table} are always recorded."),
        "unique": f"{where} is never repeated.",
        "accepted_values": f"{where} holds only its listed values.",
        "relationships": f"Every {where} exists in its reference table.",
        "accepted_range": f"{where} is within its allowed range.",
        "unique_combination": (f"No two rows of {table} share the same "
                               + " + ".join(map(str, kwargs.get("combination") or [])) + "."),
        "no_identifiers": f"{table} holds no NHS number, postcode or date of birth.",
        "numerator_at_most_denominator": f"No numerator of {table} exceeds its denominator.",
        "rows_read_reconcile": ("Every row of every file is accounted for: rows read = rows "
                                "accepted + rows rejected, and raw holds exactly those rows."),
        "expression_is_true": f"In every row of {table}: {kwargs.get('expression', '')}.",
        "sum_at_most": f"{where} does not add up to more than its maximum in any group.",
        "kpi_value_in_percentage_range": f"{where} is a percentage between 0 and 100.",
    }
    if test in words:
        return words[test]
    return f"{name.replace('_', ' ').capitalize()} ({table})."


# --------------------------------------------------------------------------------------------
# The data-quality models (models/quality/), read as they are
# --------------------------------------------------------------------------------------------

def _rows(con, sql: str, params=None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _number(value) -> str:
    if value is None:
        return "nothing to measure"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.1%}" if 0 <= value <= 1 else f"{value:g}"


def dq_checks(con) -> list[dict]:
    """One check per row of quality.dq_checks."""
    checks = []
    for r in _rows(con, "select * from quality.dq_checks order by check_name"):
        threshold = ("for information" if r["severity"] == "info"
                     else f"threshold {_number(r['threshold_value'])}")
        detail = f"measured {_number(r['measured_value'])}, {threshold}"
        if r["detail"]:
            detail += f": {r['detail']}"
        checks.append({"name": f"dq.{r['check_name']}", "source": "dq", "severity": r["severity"],
                       "status": "pass" if r["passed"] else "fail", "detail": detail,
                       "description": r["description"], "measured_value": r["measured_value"],
                       "threshold_value": r["threshold_value"], "dq_detail": r["detail"],
                       "check_name": r["check_name"], "short_label": r["short_label"],
                       "measured_as": r["measured_as"], "national_share": r["national_share"],
                       "services": _codes(r["services_concerned"]),
                       "threshold_rationale": r["threshold_rationale"]})
    return checks


def _codes(text: str | None) -> list[str]:
    return [code.strip() for code in (text or "").split(",") if code.strip()]


def gx_services(con, check: dict, latest_year) -> list[str]:
    """The services a GX check of the submitted values concerns, from the whole-table facts (GX
    itself sees a sample, and names no row): for KPI 1's null-rate check of a key field, the
    services whose field is below KPI 1's threshold in the latest year (kpi_data_completeness);
    for a format or range check of a field, the services with values of it treated as not
    recorded (dq_problems). Other GX checks are of whole tables: none."""
    if check.get("suite") != "raw_submissions" or not check.get("column"):
        return []
    field = check["column"].split(" (")[0]
    if ".expect_column_values_to_not_be_null[" in check["name"]:
        return [r["fls_code"] for r in _rows(con, """
            select fls_code from marts.kpi_data_completeness
            where audit_year = ? and field_name = ? and not is_at_least_80_pct_complete
            order by completeness_pct, fls_code""", [latest_year, field])]
    return [r["fls_code"] for r in _rows(con, """
        select distinct fls_code from quality.dq_problems
        where problem_kind = 'warning' and field_name = ? and fls_code is not null
        order by fls_code""", [field])]


def read_facts(con) -> dict:
    """What the report shows beside the checks, read from the marts and quality models."""
    facts: dict = {}
    facts["extract_date"] = con.execute("select max(extract_date) from marts.fct_episodes").fetchone()[0]
    facts["synthetic"] = bool(con.execute(
        "select coalesce(bool_or(is_synthetic_data), false) from marts.kpi_results").fetchone()[0])
    years = [r[0] for r in con.execute(
        "select distinct audit_year from quality.dq_fls_volumes where records > 0 order by 1").fetchall()]
    facts["years"] = years
    facts["latest_year"] = years[-1] if years else None
    facts["fls"] = _rows(con, "select fls_code, fls_name from marts.dim_fls order by fls_code")
    facts["volumes"] = _rows(con, "select * from quality.dq_fls_volumes order by fls_code, audit_year")
    facts["completeness"] = _rows(con, """
        select audit_year, fls_code, field_order, field_name, records_measured, completeness_pct,
               is_at_least_80_pct_complete, fields_at_least_80_pct_complete, key_fields, fls_meets_kpi_1
        from marts.kpi_data_completeness where audit_year = ? order by fls_code, field_order""",
        [facts["latest_year"]])
    facts["check_services"] = _rows(con, """
        select check_services.*, checks.short_label, checks.severity, checks.threshold_value,
               checks.measured_as
        from quality.dq_check_services as check_services
        inner join quality.dq_checks as checks on check_services.check_name = checks.check_name
        order by check_services.fls_code, check_services.check_name""")
    # KPI 1's rule, from the KPI seed (the heat map's legend and colours say it)
    kpi_1 = _rows(con, "select kpi_number, key_field_threshold_pct, max_key_fields_below_threshold "
                       "from reference.kpi_definitions where grain = 'completeness'")
    facts["kpi_1"] = kpi_1[0] if kpi_1 else None
    return facts


def problems(con) -> list[dict]:
    """Every row of quality.dq_problems, in the problems.csv shape."""
    return _rows(con, """
        select problem_kind as kind, problem_code as code, coalesce(field_name, '') as field,
               coalesce(reason, '') as reason, description, coalesce(fls_code, '') as fls_code,
               source_file, line_number, problem_title as title, action
        from quality.dq_problems order by source_file, line_number, kind""")


# --------------------------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------------------------

def validate(warehouse: Path, out_dir: Path | None = None, run_results: Path | None = None,
             run_gx: bool = True, gx_suites: set[str] | None = None,
             progress: Callable[[str], None] = print_progress,
             history: Path | None = None) -> Validation:
    """Every check on `warehouse`, the verdict, and every output of the quality step. `history`:
    the extract history to compare with (default $FLSDB_HISTORY or history/flsdb_history.duckdb)."""
    from flsdb.quality import changes, feedback, quality_report, signoff

    started = time.monotonic()

    def step(line: str) -> None:
        progress(f"[validate {time.monotonic() - started:5.1f}s] {line}")

    out_dir = out_dir or output_dir()
    run_results = run_results or default_run_results()
    out_dir.mkdir(parents=True, exist_ok=True)
    signoff.unseal_validation(out_dir)
    step(f"dbt test results from {run_results}")
    checks = dbt_checks(run_results)
    # the content that is validated: fingerprinted before it is read (a later change shows)
    fingerprint = signoff.warehouse_fingerprint(warehouse) if Path(warehouse).exists() else None
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        step("data-quality checks and problems (quality.dq_checks, quality.dq_problems)")
        try:
            facts = read_facts(con)
            checks += dq_checks(con)
            facts["problems"] = problems(con)
            models_built = True
        except duckdb.CatalogException as error:
            # The marts or quality models were not built (a failing test upstream skips them in
            # a first build): say so as a blocking check and still write the report.
            models_built = False
            facts = {"extract_date": None, "synthetic": False, "years": [], "latest_year": None,
                     "fls": [], "volumes": [], "completeness": [], "problems": [],
                     "kpi_1": None, "check_services": []}
            checks.append({"name": "dq.models_built", "source": "dq", "severity": "error",
                           "status": "fail",
                           "description": "The data-quality models (models/quality/) and the marts "
                                          "they read were built by the last dbt build.",
                           "detail": f"not found in {warehouse}: {str(error).splitlines()[0]}. "
                                     "Fix the dbt build (see the dbt tests above) and run "
                                     "`flsdb build` again.",
                           "measured_value": None, "threshold_value": None, "dq_detail": ""})
        if run_gx:
            from flsdb.quality.gx_run import run_suites
            checks += run_suites(con, out_dir / "gx", out_dir / "data_docs", only=gx_suites,
                                 progress=step)
            if models_built:
                for check in checks:
                    if check["source"] == "gx" and check["status"] == "fail":
                        check["services"] = gx_services(con, check, facts["latest_year"])
    finally:
        con.close()
    e = facts["extract_date"]
    validation = Validation(
        verdict=verdict_of(checks), extract_date=e.isoformat() if e else None,
        warehouse=str(warehouse), generated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        checks=checks, facts=facts, warehouse_fingerprint=fingerprint,
        checks_skipped=signoff.skipped_checks(run_results, run_gx, gx_suites))
    facts["gx_ran"] = run_gx
    facts["run_results"] = str(run_results)
    step("comparing with the last approved extract (extract history, read-only)")
    facts["changes"] = (changes.since_last_approved(warehouse, history) if models_built
                        else changes.Changes(history=str(history or ""),
                                             unavailable="the marts and quality models were not built"))
    step("writing validation.json, problems.csv, the report and the feedback files")
    (out_dir / "validation.json").write_text(json.dumps(validation.as_json(), indent=2, default=str)
                                             + "\n", encoding="utf-8")
    write_csv(out_dir / "problems.csv", list(PROBLEM_COLUMNS),
              ([problem.get(column) for column in PROBLEM_COLUMNS] for problem in facts["problems"]))
    quality_report.write(validation, out_dir)
    feedback.write(validation, out_dir / "feedback")
    signoff.seal_validation(out_dir)
    step(f"done: {validation.verdict}")
    return validation
