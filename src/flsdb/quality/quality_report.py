"""The data-quality report, rendered from a flsdb.quality.validate.Validation on the templates of
templates/ (Jinja2, autoescape: file names, reasons and FLS codes come from submissions and may
hold markup such as `<img src=x onerror=...>`). It renders only: every figure comes from the dbt
models of models/quality/ and the marts, through validate, and from the extract history, through
flsdb.quality.changes.

Pages, each self-contained (inline CSS, no script, nothing fetched), written into the quality
output folder:
- report.html: what an audit lead reviews before signing off, in plain words and on a few
  screens: the verdict, what needs a decision, blocking failures, warnings ranked by the share of
  a service's (or the nation's) rows or records they touch, what changed since the last approved
  extract, and problems by service;
- checks.html: every check with its source and technical name, the thresholds and why they are
  where they are, and KPI 1's completeness by service and field;
- changes.html: every change since the last approved extract, one per row.
The problems one by one are in problems.csv and in each service's feedback file
(flsdb.quality.feedback), which the report links to.

INTERNAL pages: they name the files services sent and the lines of problems in them, and show no
row as sent (the rows themselves stay in the raw schema). Never published.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

#: how many rows of each list the main page shows (the rest: changes.html, problems.csv)
MAIN_PAGE_ROWS = 8
#: how many services a warning names on the main page before "and N more"
SERVICES_NAMED = 8


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("flsdb.quality", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["share"] = share
    env.filters["count"] = count
    env.filters["anchor"] = anchor
    env.globals["threshold_words"] = threshold_words
    env.globals["measured_words"] = measured_words
    return env


def share(value, digits: int = 1) -> str:
    """0.0246 -> '2.5%'; a share too small to show at one decimal keeps two significant digits."""
    if value is None:
        return ""
    if value and abs(value) < 10 ** -(digits + 2):
        return f"{100 * value:.2g}%"
    return f"{100 * value:.{digits}f}%"


def count(value) -> str:
    if value is None:
        return ""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def measured_words(check: dict) -> str:
    """A data-quality check's measured value: a share as a percentage, a count as a count."""
    value = check.get("measured_value")
    if value is None:
        return "nothing to measure"
    if (check.get("measured_as") or "").startswith("service share") or not float(value).is_integer():
        return share(value)
    return count(value)


def threshold_words(check: dict) -> str:
    """A check's threshold in words, in the unit it is measured in."""
    value, measured = check.get("threshold_value"), check.get("measured_as") or ""
    if check.get("severity") == "info":
        return "for information"
    if check.get("source") == "gx":
        mostly = check.get("mostly")
        return f"it holds in fewer than {share(mostly, 0)} of rows" if mostly else "any row fails"
    if check.get("source") == "dbt":
        return "any row fails"
    if value is None:
        return "\u2013"
    if measured.startswith("service share of "):
        unit = measured.removeprefix("service share of ").replace("rows", "rows submitted")
        return f"above {share(value)} of a service's {unit}"
    if value == 0:
        return "any"
    if measured == "problems" or value >= 1:
        return f"above {count(value)}"
    return f"above {share(value)}"


def anchor(name: str) -> str:
    """A check's name as an HTML id (checks.html#<anchor>)."""
    return "check-" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


# --------------------------------------------------------------------------------------------
# Warnings ranked by impact
# --------------------------------------------------------------------------------------------

def impact(check: dict, by_check_service: dict) -> dict:
    """How much a failed check touches, in words, with the share it is ranked by (None: not
    measured as a share) and the services it concerns."""
    services = list(check.get("services") or [])
    if check["source"] == "dq" and check.get("measured_as", "").startswith("service share"):
        top = by_check_service.get((check.get("check_name"), services[0])) if services else None
        national = check.get("national_share")
        words = []
        if top:
            words.append(f"{share(top['share_of_service'])} of {top['fls_code']}'s {top['measured_over']} "
                         f"({count(top['rows_affected'])} of {count(top['service_total'])})")
        if national is not None:
            words.append(f"{share(national, 2)} of all services' {top['measured_over'] if top else 'rows'}")
        return {"share": check.get("measured_value"), "text": "; ".join(words), "services": services}
    if check["source"] == "dq" and check.get("measured_as") == "problems":
        national = check.get("national_share")
        text = f"{count(check.get('measured_value'))} found"
        if national:
            text += f" ({share(national, 2)} of all services' rows)"
        return {"share": national, "text": text, "services": services}
    if check["source"] == "dq":
        # a measure of its own: its value, and what the model says is behind it
        value = check.get("measured_value")
        is_share = value is not None and 0 < value <= 1 and not float(value).is_integer()
        text = measured_words(check) + (f": {check['dq_detail']}" if check.get("dq_detail") else "")
        return {"share": value if is_share else None, "text": text, "services": services}
    if check["source"] == "gx" and check.get("unexpected_count"):
        part = check["unexpected_count"] / (check.get("element_count") or 1)
        sample = " of a random sample" if check.get("sampled") else ""
        failed = "missing" if ".expect_column_values_to_not_be_null[" in check["name"] else "not so"
        return {"share": part, "services": services,
                "text": f"{failed} in {share(part)} of the rows{sample} ({count(check['unexpected_count'])} "
                        f"of {count(check.get('element_count') or 0)})"}
    failing = check.get("failures")
    if str(check.get("unique_id", "")).startswith("unit_test."):
        text = "the unit test failed: the model no longer computes its pinned example"
    elif failing:
        text = f"{count(failing)} row{'s' if failing != 1 else ''} break it"
    else:
        text = "failed"
    return {"share": None, "services": services, "text": text}


def ranked(checks: list[dict], by_check_service: dict) -> list[dict]:
    """Failed checks with their impact, the largest share first; those with no share last."""
    rows = [{**c, "impact": impact(c, by_check_service)} for c in checks]
    return sorted(rows, key=lambda c: (c["impact"]["share"] is None, -(c["impact"]["share"] or 0),
                                       c["name"]))


# --------------------------------------------------------------------------------------------
# Problems by service
# --------------------------------------------------------------------------------------------

def problem_columns(facts: dict) -> list[dict]:
    """The checks that count problems at services, with any problem at any service: the columns of
    the main page's table of problems by service, warnings before information."""
    seen: dict = {}
    for row in facts.get("check_services", []):
        if row["fls_code"] is None:
            continue
        column = seen.setdefault(row["check_name"], {"check_name": row["check_name"],
                                                     "label": row["short_label"],
                                                     "severity": row["severity"],
                                                     "threshold": threshold_words(row),
                                                     "measured_over": row["measured_over"],
                                                     "any": False})
        column["any"] = column["any"] or row["problems"] > 0
    # warnings first, then information; alphabetical within each
    return sorted((c for c in seen.values() if c["any"]),
                  key=lambda c: (c["severity"] == "info", c["label"]))


def services_table(facts: dict, names: dict) -> list[dict]:
    """One row per service with its rows submitted and, per problem column, the rows affected and
    their share (flagged above the threshold); the services furthest above a threshold first."""
    latest = {r["fls_code"]: r for r in facts.get("volumes", []) if r["audit_year"] == facts.get("latest_year")}
    kpi_1 = {r["fls_code"]: r["fls_meets_kpi_1"] for r in facts.get("completeness", [])}
    rows: dict = {}
    for r in facts.get("check_services", []):
        if r["fls_code"] is None:
            continue
        row = rows.setdefault(r["fls_code"], {"fls_code": r["fls_code"],
                                              "fls_name": names.get(r["fls_code"], "(not in registry)"),
                                              "rows_submitted": None, "cells": {}, "worst": 0.0,
                                              "problems": 0})
        if r["measured_over"] == "rows submitted":
            row["rows_submitted"] = r["service_total"]
        row["cells"][r["check_name"]] = r
        row["problems"] += r["problems"]
        if r["is_above_threshold"] and r["threshold_value"]:
            row["worst"] = max(row["worst"], (r["share_of_service"] or 0) / r["threshold_value"])
        elif r["is_above_threshold"]:
            row["worst"] = max(row["worst"], float(r["problems"]))
    for code, row in rows.items():
        volume = latest.get(code, {})
        row["cohort_change"] = volume.get("cohort_change_share")
        row["kpi_1_met"] = kpi_1.get(code)
    return sorted(rows.values(), key=lambda r: (-r["worst"], -r["problems"], r["fls_code"]))


# --------------------------------------------------------------------------------------------
# KPI 1 heat map (details page)
# --------------------------------------------------------------------------------------------

def _colour(pct: float | None, complete_enough: bool | None, threshold: float) -> str:
    """Green when the field is complete enough for KPI 1 (the mart's flag), red, darker the
    lower, when it is not. `threshold` is KPI 1's key_field_threshold_pct (the KPI seed)."""
    if pct is None:
        return "#eeeeee"
    if not complete_enough:
        strength = min(1.0, max(0.0, (threshold - pct) / (threshold / 2)))
        return f"rgb({255}, {int(205 - 90 * strength)}, {int(205 - 90 * strength)})"
    strength = min(1.0, max(0.0, (pct - threshold) / max(100 - threshold, 1)))
    return f"rgb({int(230 - 60 * strength)}, {int(245 - 15 * strength)}, {int(225 - 50 * strength)})"


def completeness_kpi(facts: dict) -> str:
    """The data-completeness KPI's label ("KPI n"), from the KPI seed: no template writes its number."""
    kpi = (facts.get("kpi_1") or {}).get("kpi_number")
    return f"KPI {kpi}" if kpi is not None else "the data-completeness KPI"


def heat_map(facts: dict) -> dict:
    fields: list[str] = []
    rows: dict = {}
    kpi_1 = facts.get("kpi_1") or {}
    threshold = float(kpi_1.get("key_field_threshold_pct") or 0)
    max_below = kpi_1.get("max_key_fields_below_threshold")
    for r in facts.get("completeness", []):
        if r["field_name"] not in fields:
            fields.append(r["field_name"])
        row = rows.setdefault(r["fls_code"], {"fls_code": r["fls_code"], "cells": [],
                                              "fields_ok": r["fields_at_least_80_pct_complete"],
                                              "key_fields": r["key_fields"],
                                              "meets": r["fls_meets_kpi_1"]})
        pct = r["completeness_pct"]
        row["cells"].append({"colour": _colour(pct, r["is_at_least_80_pct_complete"], threshold),
                             "text": "" if pct is None else f"{pct:.0f}",
                             "title": f"{r['fls_code']} {r['field_name']}: "
                                      + ("nothing to measure" if pct is None else
                                         f"{pct:.1f}% of {r['records_measured']:,}")})
    return {"fields": fields, "rows": [rows[k] for k in sorted(rows)], "pct": f"{threshold:g}",
            "fewer_than": "" if max_below is None else int(max_below) + 1}


# --------------------------------------------------------------------------------------------
# Pages
# --------------------------------------------------------------------------------------------

def _found(c: dict) -> str:
    """What a failed check found, in words: GX's counts, else the check's detail."""
    if c["source"] != "gx":
        return c["detail"]
    if c.get("unexpected_count"):
        return (f"{c['unexpected_count']:,} of {c['element_count'] or 0:,} rows"
                + (f" of a random sample of {c['rows_checked']:,}" if c.get("sampled") else ""))
    return "failed" + (" (" + c["detail"].split(": raised ", 1)[1] + ")" if ": raised " in c["detail"] else "")


def context(v) -> dict:
    """Everything the three pages show, from the validation."""
    f = v.facts
    names = {r["fls_code"]: r["fls_name"] for r in f.get("fls", [])}
    by_check_service = {(r["check_name"], r["fls_code"]): r for r in f.get("check_services", [])}
    changes = f.get("changes")
    volumes_moved = [r for r in (changes.volumes if changes else []) if r["is_above_threshold"]]
    kpis = changes.kpis if changes else []
    restated = [r for r in kpis if r["change"] == "restated"]
    levels = ["national", "country", "region", "fls"]
    return {
        "v": v, "f": f, "names": names, "synthetic": f.get("synthetic"),
        "verdict_class": {"PASS": "PASS", "FAIL": "FAIL"}.get(v.verdict, "WARN"),
        "counts": v.check_counts(),
        "blocking": ranked(v.blocking_failures, by_check_service),
        "warnings": ranked(v.warnings, by_check_service),
        "information": [{**c, "impact": impact(c, by_check_service)} for c in v.information],
        "services_named": SERVICES_NAMED, "main_rows": MAIN_PAGE_ROWS,
        "columns": problem_columns(f), "services": services_table(f, names),
        "changes": changes, "volumes_moved": volumes_moved,
        "volume_threshold": next((r["threshold_value"] for r in (changes.volumes if changes else [])), None),
        "restated": restated,
        "restated_by_level": [{"level": level, "count": sum(r["geography_level"] == level for r in restated)}
                              for level in levels],
        "kpis_added": sum(r["change"] == "added" for r in kpis),
        "kpis_removed": sum(r["change"] == "removed" for r in kpis),
        "problems_new": sum(r["change"] == "new" for r in (changes.problems if changes else [])),
        "problems_resolved": sum(r["change"] == "resolved" for r in (changes.problems if changes else [])),
        "problem_count": len(f.get("problems", [])),
        "heat": heat_map(f),
        "completeness_kpi": completeness_kpi(f),
        "found": _found,
        "dq_checks": [c for c in v.checks if c["source"] == "dq"],
        "gx_checks": [c for c in v.checks if c["source"] == "gx"],
        "dbt_checks": [c for c in v.checks if c["source"] == "dbt"],
    }


def render(v, page: str = "report.html") -> str:
    return environment().get_template(page).render(**context(v))


def write(v, out_dir: Path) -> list[Path]:
    """report.html, checks.html and changes.html into `out_dir`."""
    env = environment()
    values = context(v)
    written = []
    for page in ("report.html", "checks.html", "changes.html"):
        path = Path(out_dir) / page
        path.write_text(env.get_template(page).render(**values), encoding="utf-8")
        written.append(path)
    return written


__all__ = ["render", "write", "environment", "share", "count"]
