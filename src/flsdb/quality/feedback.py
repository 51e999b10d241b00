"""One feedback file per service, for the audit team to send back before the deadline.

`flsdb validate` writes, into output/quality/feedback/, `<FLS code>.html` and `<FLS code>.csv` for
every service that sent rows, has records, or is active in the latest audit year: the service's
problems one by one (quality.dq_problems), each with its file, line and field, what was found and
what to do (seeds/dq_problem_actions.csv), and its KPI 1 key fields below the threshold. A file
holds that service's rows only: no other service's code, name, file names or counts, and no
national figure. Problems of no service (a file refused whole) are in the report only.

The folder is rewritten on every validation, so that a service whose problems are resolved is not
sent last month's file.
"""

from __future__ import annotations

import re
from pathlib import Path

from flsdb.quality.quality_report import completeness_kpi, environment
from flsdb.safe_csv import write_csv

CSV_COLUMNS = ("fls_code", "source_file", "line_number", "field", "problem", "what_was_found",
               "what_to_do", "kind", "code")


def service_codes(facts: dict) -> list[str]:
    """The services that get a feedback file."""
    codes = {r["fls_code"] for r in facts.get("check_services", []) if r["fls_code"]}
    codes |= {r["fls_code"] for r in facts.get("volumes", [])
              if r["audit_year"] == facts.get("latest_year") and r["is_active_in_year"]}
    codes |= {p["fls_code"] for p in facts.get("problems", []) if p["fls_code"]}
    return sorted(codes)


def service_context(v, code: str) -> dict:
    """What one service's file shows: its own rows and figures, nothing of another service."""
    f = v.facts
    mine = [p for p in f.get("problems", []) if p["fls_code"] == code]
    sent = {r["measured_over"]: r["service_total"] for r in f.get("check_services", [])
            if r["fls_code"] == code}
    fields = [r for r in f.get("completeness", []) if r["fls_code"] == code]
    return {
        "code": code,
        "name": next((r["fls_name"] for r in f.get("fls", []) if r["fls_code"] == code), ""),
        "extract_date": v.extract_date, "generated_at": v.generated_at,
        "synthetic": f.get("synthetic"), "latest_year": f.get("latest_year"),
        "problems": sorted(mine, key=lambda p: (p["title"] or "", p["source_file"] or "",
                                                p["line_number"] or 0, p["field"] or "")),
        "rows_submitted": sent.get("rows submitted"), "records": sent.get("records"),
        "cohort_records": sent.get("cohort records"),
        "fields_below": [r for r in fields if r["completeness_pct"] is not None
                         and not r["is_at_least_80_pct_complete"]],
        "kpi_1_met": fields[0]["fls_meets_kpi_1"] if fields else None,
        "kpi_1_pct": (f.get("kpi_1") or {}).get("key_field_threshold_pct"),
        "completeness_kpi": completeness_kpi(f),
    }


def write(v, folder: Path) -> list[Path]:
    """Write every service's feedback file into `folder` (emptied of earlier ones first)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in [*folder.glob("*.html"), *folder.glob("*.csv")]:
        old.unlink()
    template = environment().get_template("feedback.html")
    written = []
    for code in service_codes(v.facts):
        values = service_context(v, code)
        stem = re.sub(r"[^A-Za-z0-9_-]", "_", code)     # registry codes; never a path
        html = folder / f"{stem}.html"
        html.write_text(template.render(**values), encoding="utf-8")
        csv_path = write_csv(folder / f"{stem}.csv", list(CSV_COLUMNS), (
            [code, p["source_file"], p["line_number"], p["field"], p["title"], p["description"],
             p["action"], p["kind"], p["code"]] for p in values["problems"]))
        written += [html, csv_path]
    return written


__all__ = ["write", "service_codes", "service_context", "CSV_COLUMNS"]
