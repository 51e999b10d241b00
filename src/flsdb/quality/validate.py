"""`flsdb validate`: every check on one extract, one verdict, and the data-quality report.

Collects three kinds of check into `validation.json`:
- `dbt`: the data and unit tests of the last dbt build, read from its run_results.json (the
  severity of each test from the manifest.json beside it);
- `gx`: the Great Expectations suites of flsdb.quality.expectations;
- `report`: checks computed here from the warehouse (rejects, warnings, exclusions, unknown
  deprivation, KPI 1 completeness, identifiers in marts).

A check is `error` (blocks publication) or `warn` (reported). The verdict is FAIL when any error
check fails, PASS WITH WARNINGS when only warn checks fail, else PASS.

Writes into the output folder (default output/quality/): validation.json, report.html (one
self-contained page for an audit lead), problems.csv (every problem with its file and line), and
the GX Data Docs site under data_docs/.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from flsdb import paths
from flsdb.safe_csv import write_csv

PASS, PASS_WITH_WARNINGS, FAIL = "PASS", "PASS WITH WARNINGS", "FAIL"
UNKNOWN_DEPRIVATION_WARN_SHARE = 0.10
NHS_NUMBER_PATTERN = r"^[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}$"
POSTCODE_PATTERN = r"^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}$"
ISO_DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$|^[0-9]{1,2}/[0-9]{1,2}/[0-9]{4}$"


def output_dir() -> Path:
    """The quality outputs folder: $FLSDB_OUTPUT/quality (default output/quality)."""
    base = Path(os.environ.get("FLSDB_OUTPUT", "output"))
    return (base if base.is_absolute() else paths.PROJECT_DIR / base) / "quality"


def default_run_results() -> Path:
    """dbt's run_results.json: in $DBT_TARGET_PATH when set (as dbt itself does), else target/."""
    target = Path(os.environ.get("DBT_TARGET_PATH", "target"))
    return (target if target.is_absolute() else paths.PROJECT_DIR / target) / "run_results.json"


@dataclass
class Validation:
    verdict: str
    extract_date: str | None
    warehouse: str
    generated_at: str
    checks: list[dict]
    facts: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"verdict": self.verdict, "extract_date": self.extract_date,
                "warehouse": self.warehouse, "generated_at": self.generated_at,
                "checks": [{k: c[k] for k in ("name", "source", "severity", "status", "detail")}
                           for c in self.checks]}

    @property
    def blocking_failures(self) -> list[dict]:
        return [c for c in self.checks if c["severity"] == "error" and c["status"] == "fail"]

    @property
    def warnings(self) -> list[dict]:
        return [c for c in self.checks if c["severity"] == "warn" and c["status"] == "fail"]


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
        message = (result.get("message") or "").strip()
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
                           "unique_id": uid, "dbt_status": status,
                           "failures": result.get("failures")})
        elif str(status).lower() not in ("success", "pass", "no-op", "noop"):
            other_failures += 1
            checks.append({"name": f"dbt.{uid}", "source": "dbt", "severity": "error",
                           "status": "fail", "detail": f"{kind} {status}: {message}",
                           "unique_id": uid, "dbt_status": status})
    generated = data.get("metadata", {}).get("generated_at", "")
    checks.append({"name": "dbt.build", "source": "dbt", "severity": "error",
                   "status": "fail" if other_failures else "pass",
                   "detail": f"{len(data.get('results', []))} nodes in {run_results} "
                             f"(generated {generated}); {other_failures} model/seed failure(s)"})
    return checks


# --------------------------------------------------------------------------------------------
# Facts about the extract, read from the warehouse
# --------------------------------------------------------------------------------------------

def _rows(con, sql: str, params=None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def _file_fls_sql() -> str:
    # The FLS a file belongs to: the commonest FLS Code among its accepted rows (a reject for an
    # unknown FLS code still belongs to the service that sent the file).
    return """
        file_fls as (
            select _file_sha256 as file_sha256, mode(upper(trim("FLS Code"))) as fls_code
            from raw.submission_records group by 1
        )
    """


def gather_facts(con) -> dict:
    facts: dict = {}
    facts["extract_date"] = con.execute("select max(extract_date) from marts.fct_episodes").fetchone()[0]
    facts["synthetic"] = bool(con.execute(
        "select coalesce(bool_or(is_synthetic_data), false) from marts.kpi_results").fetchone()[0])
    years = [r[0] for r in con.execute(
        "select distinct audit_year from marts.kpi_results order by 1").fetchall()]
    facts["years"] = years
    facts["latest_year"] = years[-1] if years else None
    facts["fls"] = _rows(con, "select fls_code, fls_name, region_name, last_audit_year "
                              "from marts.dim_fls order by fls_code")
    facts["files"] = _rows(con, """
        select source_file, status, rejection_reason, rows_read, rows_accepted, rows_rejected
        from raw.load_files order by load_order""")
    facts["rejects"] = _rows(con, f"""
        with {_file_fls_sql()}
        select coalesce(file_fls.fls_code, '(unknown)') as fls_code, r._source_file as source_file,
               r._line_number as line_number, r.reject_code as code, r.column_name as field,
               r.reject_reason as reason, r.raw_line
        from raw.submission_rejects r left join file_fls on file_fls.file_sha256 = r._file_sha256
        order by 2, 3""")
    facts["warnings"] = _rows(con, """
        select fls_code, source_file, line_number, field_name as field, warning_reason as reason
        from intermediate.int_submission_warnings_unpivoted order by 2, 3, 4""")
    facts["exclusions"] = _rows(con, """
        select fls_code, audit_year, source_file, line_number, exclusion_reason as reason
        from marts.fct_episodes where exclusion_reason is not null order by 3, 4""")
    facts["volumes"] = _rows(con, """
        select fls_code, audit_year, count(*) as records,
               count(*) filter (where is_in_cohort) as cohort_records,
               count(*) filter (where is_in_cohort and deprivation_quintile = 'unknown') as unknown_deprivation
        from marts.fct_episodes group by 1, 2 order by 1, 2""")
    facts["completeness"] = _rows(con, """
        select audit_year, fls_code, field_order, field_name, records_measured, completeness_pct,
               is_at_least_80_pct_complete, fields_at_least_80_pct_complete, fls_meets_kpi_1
        from marts.kpi_data_completeness order by audit_year, fls_code, field_order""")
    return facts


def identifier_scan(con) -> list[dict]:
    """Every varchar column of every mart, scanned for NHS-number, postcode and date-of-birth
    shaped values (defence in depth beside dbt's no_identifiers test)."""
    findings = []
    columns = con.execute("""
        select table_name, column_name, data_type from information_schema.columns
        where table_schema = 'marts' order by table_name, ordinal_position""").fetchall()
    for table, column, data_type in columns:
        name = column.lower()
        if any(k in name for k in ("nhs_number", "date_of_birth", "birth_date", "dob")) or (
                "postcode" in name and name != "postcode_match_status"):
            findings.append({"table": table, "column": column, "rows": None,
                             "finding": "identifier-like column name"})
        if data_type.upper() != "VARCHAR":
            continue
        q = '"' + column.replace('"', '""') + '"'
        (n,) = con.execute(
            f"select count(*) from marts.{table} where regexp_full_match({q}, ?) "
            f"or regexp_full_match({q}, ?)", [NHS_NUMBER_PATTERN, POSTCODE_PATTERN]).fetchone()
        if n:
            findings.append({"table": table, "column": column, "rows": n,
                             "finding": "NHS-number or postcode shaped values"})
    return findings


def report_checks(facts: dict, identifiers: list[dict]) -> list[dict]:
    def check(name, severity, failed, detail):
        return {"name": f"report.{name}", "source": "report", "severity": severity,
                "status": "fail" if failed else "pass", "detail": detail}

    rejected_files = [f for f in facts["files"] if f["status"] != "loaded"]
    by = lambda rows, key: _count(rows, key)  # noqa: E731
    checks = [
        check("no_identifiers_in_marts", "error", bool(identifiers),
              "; ".join(f"{i['table']}.{i['column']}: {i['finding']}"
                        + (f" ({i['rows']} rows)" if i["rows"] else "") for i in identifiers)
              or "no NHS number, postcode or date of birth in any mart"),
        check("rejected_files", "warn", bool(rejected_files),
              f"{len(rejected_files)} file(s) refused whole: "
              + "; ".join(f"{f['source_file']}: {f['rejection_reason']}" for f in rejected_files)
              if rejected_files else "no file refused"),
        check("rejected_rows", "warn", bool(facts["rejects"]),
              f"{len(facts['rejects']):,} row(s) rejected: " + _fmt_counts(by(facts["rejects"], "code"))),
        check("field_warnings", "warn", bool(facts["warnings"]),
              f"{len(facts['warnings']):,} field warning(s): " + _fmt_counts(by(facts["warnings"], "field"))),
    ]
    exclusions = by(facts["exclusions"], "reason")
    for reason in ("aged under 50 at the fracture", "duplicate episode",
                   "fracture after the extract date"):
        slug = reason.replace(" ", "_")
        checks.append(check(f"exclusions.{slug}", "warn", bool(exclusions.get(reason)),
                            f"{exclusions.get(reason, 0):,} record(s) excluded: {reason}"))
    latest = facts["latest_year"]
    high_unknown = [v for v in facts["volumes"] if v["audit_year"] == latest and v["cohort_records"]
                    and v["unknown_deprivation"] / v["cohort_records"] > UNKNOWN_DEPRIVATION_WARN_SHARE]
    checks.append(check("unknown_deprivation", "warn", bool(high_unknown),
                        f"{len(high_unknown)} FLS(s) with more than "
                        f"{UNKNOWN_DEPRIVATION_WARN_SHARE:.0%} of {latest} cohort records of unknown "
                        "deprivation" + (": " + ", ".join(v["fls_code"] for v in high_unknown)
                                         if high_unknown else "")))
    not_met = sorted({r["fls_code"] for r in facts["completeness"]
                      if r["audit_year"] == latest and not r["fls_meets_kpi_1"]})
    checks.append(check("kpi_1_data_completeness", "warn", bool(not_met),
                        f"{len(not_met)} FLS(s) do not meet KPI 1 (data completeness) in {latest}"
                        + (": " + ", ".join(not_met) if not_met else "")))
    return checks


def _count(rows: list[dict], key: str) -> dict:
    out: dict = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def _fmt_counts(counts: dict) -> str:
    return ", ".join(f"{k or '(none)'} {v:,}" for k, v in counts.items())


# --------------------------------------------------------------------------------------------
# validate
# --------------------------------------------------------------------------------------------

def problems(facts: dict) -> list[dict]:
    """Every problem of the extract with the file and line it traces to (no raw values)."""
    out = []
    for f in facts["files"]:
        if f["status"] != "loaded":
            out.append({"kind": "rejected file", "code": "file_rejected", "field": "",
                        "reason": f["rejection_reason"], "fls_code": "", "source_file": f["source_file"],
                        "line_number": ""})
    for r in facts["rejects"]:
        out.append({"kind": "rejected row", "code": r["code"], "field": r["field"] or "",
                    "reason": r["reason"], "fls_code": r["fls_code"],
                    "source_file": r["source_file"], "line_number": r["line_number"]})
    for w in facts["warnings"]:
        out.append({"kind": "warning", "code": w["reason"], "field": w["field"], "reason": w["reason"],
                    "fls_code": w["fls_code"], "source_file": w["source_file"],
                    "line_number": w["line_number"]})
    for x in facts["exclusions"]:
        out.append({"kind": "exclusion", "code": x["reason"], "field": "", "reason": x["reason"],
                    "fls_code": x["fls_code"], "source_file": x["source_file"],
                    "line_number": x["line_number"]})
    return out


def validate(warehouse: Path, out_dir: Path | None = None, run_results: Path | None = None,
             run_gx: bool = True, gx_suites: set[str] | None = None) -> Validation:
    from flsdb.quality import report

    out_dir = out_dir or output_dir()
    run_results = run_results or default_run_results()
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        facts = gather_facts(con)
        checks = dbt_checks(run_results)
        gx_checks: list[dict] = []
        if run_gx:
            from flsdb.quality.expectations import run_suites
            gx_checks = run_suites(con, out_dir / "gx", out_dir / "data_docs", facts["extract_date"],
                                   only=gx_suites)
        identifiers = identifier_scan(con)
    finally:
        con.close()
    checks += gx_checks + report_checks(facts, identifiers)
    e = facts["extract_date"]
    validation = Validation(
        verdict=verdict_of(checks), extract_date=e.isoformat() if e else None,
        warehouse=str(warehouse), generated_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        checks=checks, facts=facts)
    facts["problems"] = problems(facts)
    facts["identifiers"] = identifiers
    facts["gx_ran"] = run_gx
    facts["run_results"] = str(run_results)
    (out_dir / "validation.json").write_text(json.dumps(validation.as_json(), indent=2, default=str)
                                             + "\n", encoding="utf-8")
    problem_columns = ["kind", "code", "field", "reason", "fls_code", "source_file", "line_number"]
    write_csv(out_dir / "problems.csv", problem_columns,
              ([problem.get(column) for column in problem_columns] for problem in facts["problems"]))
    (out_dir / "report.html").write_text(report.render(validation), encoding="utf-8")
    return validation
