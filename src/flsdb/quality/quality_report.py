"""The data-quality report: one self-contained HTML page (inline CSS, no script, nothing fetched)
for an audit lead, rendered from a flsdb.quality.validate.Validation. It renders only: every
figure comes from the dbt models of models/quality/ and the marts, through validate.

Every value is escaped (Jinja2 autoescape): file names, reasons and FLS codes come from
submissions and may hold markup such as `<img src=x onerror=...>`.

It is an INTERNAL page: it names the files and lines of every problem (a file name is the FLS's
own), but shows no row as sent; the rows themselves stay in the raw schema. It is never
published; the publication outputs are built from the marts only.
"""

from __future__ import annotations

from collections import defaultdict

import jinja2

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Arial, sans-serif; margin: 0 auto;
       max-width: 1300px; padding: 0 1.2em 3em; color: #1d1d1d; line-height: 1.4; }
h1 { margin-bottom: .2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
.banner { background: #fff3cd; border: 2px solid #c99a00; padding: .6em 1em; font-weight: 600; margin: 1em 0; }
.internal { background: #f8d7da; border: 2px solid #a71d2a; padding: .6em 1em; margin: 1em 0; }
.verdict { font-size: 1.8em; font-weight: 700; padding: .5em 1em; border-radius: 6px; display: inline-block; }
.v-PASS { background: #d4edda; color: #155724; } .v-WARN { background: #fff3cd; color: #7a5a00; }
.v-FAIL { background: #f8d7da; color: #721c24; }
table { border-collapse: collapse; font-size: .86em; margin: .6em 0; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f1f1f1; position: sticky; top: 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.fail-error { color: #a71d2a; font-weight: 700; } .fail-warn { color: #8a6100; font-weight: 700; }
.pass { color: #2f7d32; }
.heat td { text-align: center; min-width: 2.6em; } .heat th.rot { writing-mode: vertical-rl; transform: rotate(180deg); }
code, .mono { font-family: ui-monospace, Consolas, monospace; font-size: .92em; }
.lines { max-width: 60em; word-break: break-word; }
details { margin: .4em 0; } summary { cursor: pointer; font-weight: 600; }
.small { font-size: .85em; color: #555; }
"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>FLS-DB data-quality report{% if v.extract_date %} - extract {{ v.extract_date }}{% endif %}</title>
<style>{{ css }}</style></head><body>
{% if f.synthetic %}<div class="banner">SYNTHETIC DATA. Everything on this page was built from the synthetic
generator's submissions: invented services and invented patients. No figure here describes a real
NHS organisation or person.</div>{% endif %}
<h1>FLS-DB data-quality report</h1>
<p>Extract date <b>{{ v.extract_date or "unknown" }}</b> &middot; warehouse <code>{{ v.warehouse }}</code>
&middot; generated {{ v.generated_at }}</p>
<div class="internal"><b>INTERNAL - not for publication.</b> This page names the files services sent and
the lines of every problem in them. Share it only with the audit team. It shows no row as sent; published
outputs are built from the marts, which hold no identifiers.</div>

<h2 id="verdict">Verdict</h2>
<p><span class="verdict v-{{ verdict_class }}">{{ v.verdict }}</span></p>
<p>{% if v.verdict == "FAIL" %}Publication is <b>blocked</b>: {{ blocking|length }} blocking check(s) failed
(listed below). Fix them and run <code>flsdb validate</code> again.
{% elif v.verdict == "PASS WITH WARNINGS" %}Nothing blocks publication. {{ warnings|length }} check(s) raised
warnings: review them before approving.{% else %}Every check passed.{% endif %}</p>
<table><tr><th>source</th><th>checks</th><th>passed</th><th>blocking failures</th><th>warnings</th></tr>
{% for s in sources %}<tr><td>{{ s.name }}</td><td class="num">{{ s.total }}</td><td class="num">{{ s.passed }}</td>
<td class="num{% if s.errors %} fail-error{% endif %}">{{ s.errors }}</td><td class="num{% if s.warns %} fail-warn{% endif %}">{{ s.warns }}</td></tr>{% endfor %}
</table>
{% if blocking %}<h3>Blocking failures</h3>
<table><tr><th>what was checked</th><th>found</th><th class="small">check</th></tr>
{% for c in blocking %}<tr><td class="fail-error">{{ c.description }}</td><td>{{ c.found }}</td><td class="small mono">{{ c.name }}</td></tr>{% endfor %}
</table>{% endif %}
{% if warnings %}<h3>Warnings</h3>
<table><tr><th>what was checked</th><th>found</th><th class="small">check</th></tr>
{% for c in warnings %}<tr><td class="fail-warn">{{ c.description }}</td><td>{{ c.found }}</td><td class="small mono">{{ c.name }}</td></tr>{% endfor %}
</table>{% endif %}

<h2 id="checks">Data-quality checks</h2>
<p class="small">Computed by the dbt models of <code>models/quality/</code> (<code>quality.dq_checks</code>);
thresholds from <code>seeds/dq_thresholds.csv</code>. A check passes when the value measured is at most the threshold.</p>
<table><tr><th>what is checked</th><th>measured</th><th>threshold</th><th>severity</th><th>result</th><th>detail</th></tr>
{% for c in dq_rows %}<tr><td>{{ c.description }}</td><td class="num">{{ c.measured }}</td><td class="num">{{ c.threshold }}</td>
<td>{{ 'blocking' if c.severity == 'error' else 'warning' }}</td><td class="{{ 'pass' if c.status == 'pass' else 'fail-' ~ c.severity }}">{{ 'passed' if c.status == 'pass' else 'failed' }}</td>
<td class="small">{{ c.detail }}</td></tr>{% endfor %}
</table>

<h2 id="per-fls">Per FLS</h2>
<p class="small">Rejected rows and field warnings count every version submitted; exclusions, duplicates and
unknown deprivation count the current version of each record. Volume is cohort records in {{ f.latest_year }}
against {{ f.latest_year - 1 if f.latest_year else "" }}; a fall of more than {{ drop_limit }} is flagged.</p>
<table><tr><th>FLS</th><th>name</th><th>rejected rows by reason</th><th>exclusions by reason</th>
<th>warnings by field</th><th>duplicates</th><th>unknown deprivation ({{ f.latest_year }} cohort)</th>
<th>cohort {{ f.latest_year - 1 if f.latest_year else "" }}</th><th>cohort {{ f.latest_year }}</th><th>change</th></tr>
{% for r in fls_rows %}<tr><td>{{ r.fls_code }}</td><td>{{ r.fls_name }}</td>
<td>{{ r.rejects }}</td><td>{{ r.exclusions }}</td><td>{{ r.warnings }}</td><td class="num">{{ r.duplicates }}</td>
<td class="num">{{ r.unknown_share }}</td><td class="num">{{ r.previous }}</td><td class="num">{{ r.current }}</td>
<td class="num{% if r.drop %} fail-warn{% endif %}">{{ r.change }}</td></tr>{% endfor %}
</table>

<h2 id="kpi-1">KPI 1 data completeness ({{ f.latest_year }})</h2>
<p class="small">Share of cohort records with each key field recorded (6.01 and 6.06 over records due at 16
weeks, 7.01 at 52 weeks). Red below {{ heat.pct }}%. An FLS meets KPI 1 when fewer than {{ heat.fewer_than }} fields are below {{ heat.pct }}%.</p>
<table class="heat"><tr><th>FLS</th>{% for name in heat.fields %}<th class="rot">{{ name }}</th>{% endfor %}<th>fields &ge; {{ heat.pct }}%</th><th>KPI 1</th></tr>
{% for row in heat.rows %}<tr><th>{{ row.fls_code }}</th>{% for cell in row.cells %}<td style="background:{{ cell.colour }}" title="{{ cell.title }}">{{ cell.text }}</td>{% endfor %}
<td class="num">{{ row.fields_ok }}/{{ row.key_fields }}</td><td class="{{ 'pass' if row.meets else 'fail-warn' }}">{{ 'met' if row.meets else 'not met' }}</td></tr>{% endfor %}
</table>

<h2 id="dbt">dbt tests</h2>
<p>Read from <code>{{ f.run_results }}</code>. {{ dbt_summary }}</p>
{% if dbt_failed %}<table><tr><th>what was tested</th><th>severity</th><th>detail</th><th class="small">test</th></tr>
{% for c in dbt_failed %}<tr><td class="fail-{{ c.severity }}">{{ c.description }}</td><td>{{ c.severity }}</td><td>{{ c.detail }}</td><td class="small mono">{{ c.name }}</td></tr>{% endfor %}</table>{% endif %}
<details><summary>All {{ dbt_checks|length }} dbt checks</summary>
<table><tr><th>what is tested</th><th>severity</th><th>status</th><th class="small">test</th></tr>
{% for c in dbt_checks %}<tr><td>{{ c.description }}</td><td>{{ c.severity }}</td><td class="{{ 'pass' if c.status == 'pass' else 'fail-' ~ c.severity }}">{{ c.status }}</td><td class="small mono">{{ c.name }}</td></tr>{% endfor %}
</table></details>

<h2 id="gx">Great Expectations</h2>
{% if f.gx_ran %}<p>A second look with Great Expectations: the small tables whole, the big ones on a random
sample (suites in <code>src/flsdb/quality/expectations.py</code>, run by <code>gx_run.py</code>). Full results:
<a href="data_docs/index.html">GX Data Docs</a> (offline; unstyled; no submitted value is shown there).</p>
<table><tr><th>suite</th><th>expectations</th><th>passed</th><th>blocking failures</th><th>warnings</th></tr>
{% for s in gx_suites %}<tr><td>{{ s.name }}</td><td class="num">{{ s.total }}</td><td class="num">{{ s.passed }}</td>
<td class="num{% if s.errors %} fail-error{% endif %}">{{ s.errors }}</td><td class="num{% if s.warns %} fail-warn{% endif %}">{{ s.warns }}</td></tr>{% endfor %}</table>
{% if gx_failed %}<table><tr><th>what was checked</th><th>severity</th><th>found</th><th class="small">expectation</th></tr>
{% for c in gx_failed %}<tr><td class="fail-{{ c.severity }}">{{ c.description }}</td><td>{{ c.severity }}</td><td>{{ c.found }}</td><td class="small mono">{{ c.name }}</td></tr>{% endfor %}</table>{% endif %}
{% else %}<p>Great Expectations was not run for this validation (<code>--no-gx</code>).</p>{% endif %}

<h2 id="trace">Every problem, traced to its file and line</h2>
<p>{{ problem_count }} problem(s). Line numbers are physical lines of the submitted file (the header is line 1).
Also written to <code>problems.csv</code> beside this page.</p>
{% for group in trace %}<h3>{{ group.title }} ({{ group.count }})</h3>
<table><tr><th>FLS</th><th>file</th><th>problem</th><th>rows</th><th>lines</th></tr>
{% for r in group.rows %}<tr><td>{{ r.fls_code }}</td><td class="mono">{{ r.source_file }}</td><td>{{ r.what }}</td>
<td class="num">{{ r.count }}</td><td class="mono lines">{{ r.lines }}</td></tr>{% endfor %}</table>{% endfor %}
<p class="small">Generated by <code>flsdb validate</code>. Checks: dbt tests (severity from the project), the
data-quality models (<code>quality.dq_checks</code>), and Great Expectations suites (critical = blocking).
validation.json holds every check.</p>
</body></html>
"""


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


def _counts(rows, key) -> str:
    out: dict = defaultdict(int)
    for r in rows:
        out[r[key] or "(none)"] += 1
    return "; ".join(f"{k} {n:,}" for k, n in sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def _compress(lines: list[int]) -> str:
    """[2, 3, 4, 9] -> '2-4, 9'."""
    lines = sorted(set(int(x) for x in lines if x not in (None, "")))
    parts, start, prev = [], None, None
    for n in lines:
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}" if start == prev else f"{start}-{prev}")
            start = prev = n
    if start is not None:
        parts.append(f"{start}" if start == prev else f"{start}-{prev}")
    return ", ".join(parts)


def _summaries(checks, key) -> list[dict]:
    groups: dict = defaultdict(list)
    for c in checks:
        groups[c[key]].append(c)
    return [{"name": name, "total": len(cs), "passed": sum(c["status"] == "pass" for c in cs),
             "errors": sum(c["status"] == "fail" and c["severity"] == "error" for c in cs),
             "warns": sum(c["status"] == "fail" and c["severity"] == "warn" for c in cs)}
            for name, cs in groups.items()]


KIND_TITLES = {  # dq_problems.problem_kind -> section title, in the report's order
    "file refused": "Files refused whole",
    "row rejected": "Rejected rows",
    "newer version rejected": "Newer versions rejected (the previous accepted version stands)",
    "warning": "Field warnings (value treated as not recorded)",
    "exclusion": "Excluded records (outside the audit's scope)",
    "unknown deprivation": "Cohort records of unknown deprivation",
    "withdrawn": "Withdrawn files and records (flsdb withdraw: not in the audit)",
    "file missing from landing": "Files no longer in the landing folder (still in the audit until withdrawn)",
}


def _share(value) -> str:
    return "" if value is None else f"{value:.1%}"


def render(v) -> str:
    f = v.facts
    latest = f["latest_year"]
    by_fls: dict = defaultdict(lambda: defaultdict(list))
    for p in f["problems"]:
        by_fls[p["fls_code"]][p["kind"]].append(p)
    volumes = {(r["fls_code"], r["audit_year"]): r for r in f["volumes"]}
    names = {r["fls_code"]: r["fls_name"] for r in f["fls"]}
    codes = sorted({r["fls_code"] for r in f["volumes"] if r["records"]}
                   | {code for code in by_fls if code})
    drop_limit = f["thresholds"].get("cohort_volume_drop_share")
    fls_rows = []
    for code in codes:
        cur = volumes.get((code, latest), {})
        change = cur.get("cohort_change_share")
        excl = by_fls[code]["exclusion"]
        fls_rows.append({
            "fls_code": code, "fls_name": names.get(code, "(not in registry)"),
            "rejects": _counts(by_fls[code]["row rejected"], "code"),
            "exclusions": _counts(excl, "reason"),
            "warnings": _counts(by_fls[code]["warning"], "field"),
            "duplicates": sum(x["reason"] == "duplicate episode" for x in excl),
            "unknown_share": _share(cur.get("unknown_deprivation_share")),
            "previous": f"{cur['previous_year_cohort_records']:,}" if cur.get("previous_year_cohort_records") else "",
            "current": f"{cur['cohort_records']:,}" if cur.get("cohort_records") else "",
            "change": f"{100 * change:+.1f}%" if change is not None else ("new" if cur.get("cohort_records") else ""),
            "drop": change is not None and drop_limit is not None and -change > drop_limit,
        })

    heat_fields: list[str] = []
    heat_rows: dict = {}
    kpi_1 = f.get("kpi_1") or {}
    threshold = float(kpi_1.get("key_field_threshold_pct") or 0)
    max_below = kpi_1.get("max_key_fields_below_threshold")
    for r in f["completeness"]:
        if r["field_name"] not in heat_fields:
            heat_fields.append(r["field_name"])
        row = heat_rows.setdefault(r["fls_code"], {"fls_code": r["fls_code"], "cells": [],
                                                   "fields_ok": r["fields_at_least_80_pct_complete"],
                                                   "key_fields": r["key_fields"],
                                                   "meets": r["fls_meets_kpi_1"]})
        pct = r["completeness_pct"]
        row["cells"].append({"colour": _colour(pct, r["is_at_least_80_pct_complete"], threshold),
                             "text": "" if pct is None else f"{pct:.0f}",
                             "title": f"{r['fls_code']} {r['field_name']}: "
                                      + ("nothing to measure" if pct is None else
                                         f"{pct:.1f}% of {r['records_measured']:,}")})

    trace = []
    for kind, title in KIND_TITLES.items():
        grouped: dict = defaultdict(list)
        for p in by_kind(f["problems"], kind):
            if kind in ("file refused", "withdrawn", "file missing from landing"):
                what = p["description"] if kind != "file refused" else p["reason"]
            elif kind == "warning":
                what = f"{p['field']}: {p['code']}"
            else:
                what = p["code"] + (f" ({p['field']})" if p["field"] else "")
            grouped[(p["fls_code"], p["source_file"], what)].append(p["line_number"])
        if not grouped:
            continue
        rows = [{"fls_code": k[0], "source_file": k[1], "what": k[2], "count": len(lines),
                 "lines": _compress(lines)} for k, lines in sorted(grouped.items())]
        trace.append({"title": title, "count": sum(r["count"] for r in rows), "rows": rows})

    dbt_checks = [c for c in v.checks if c["source"] == "dbt"]
    gx_checks = [c for c in v.checks if c["source"] == "gx"]
    dq_rows = [{**c, "measured": _measure(c["measured_value"]), "threshold": _measure(c["threshold_value"]),
                "detail": c.get("dq_detail") or ""}
               for c in v.checks if c["source"] == "dq"]
    dbt_failed = [c for c in dbt_checks if c["status"] == "fail"]
    tests = [c for c in dbt_checks if c["name"] != "dbt.build"]
    dbt_summary = (f"{len(tests)} tests and failures: {sum(c['status'] == 'pass' for c in tests)} passed, "
                   f"{sum(c['status'] == 'fail' and c['severity'] == 'error' for c in dbt_checks)} blocking, "
                   f"{sum(c['status'] == 'fail' and c['severity'] == 'warn' for c in dbt_checks)} warnings.")
    gx_failed = [{**c, "found": _found(c)} for c in gx_checks if c["status"] == "fail"]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    return env.from_string(TEMPLATE).render(
        v=v, f=f, css=CSS,
        verdict_class={"PASS": "PASS", "FAIL": "FAIL"}.get(v.verdict, "WARN"),
        blocking=[{**c, "found": _found(c)} for c in v.blocking_failures],
        warnings=[{**c, "found": _found(c)} for c in v.warnings],
        sources=_summaries(v.checks, "source"), fls_rows=fls_rows, dq_rows=dq_rows,
        drop_limit=_share(drop_limit),
        heat={"fields": heat_fields, "rows": [heat_rows[k] for k in sorted(heat_rows)],
              "pct": f"{threshold:g}", "fewer_than": "" if max_below is None else int(max_below) + 1},
        dbt_checks=dbt_checks, dbt_failed=dbt_failed, dbt_summary=dbt_summary,
        gx_suites=_summaries(gx_checks, "suite") if gx_checks else [],
        gx_failed=gx_failed,
        trace=trace, problem_count=f"{len(f['problems']):,}",
    )


def _found(c: dict) -> str:
    """What a failed check found, in words: GX's counts, else the check's detail."""
    if c["source"] != "gx":
        return c["detail"]
    if c.get("unexpected_count"):
        return (f"{c['unexpected_count']:,} of {c['element_count'] or 0:,} rows"
                + (f" of a random sample of {c['rows_checked']:,}" if c.get("sampled") else ""))
    return "failed" + (" (" + c["detail"].split(": raised ", 1)[1] + ")" if ": raised " in c["detail"] else "")


def by_kind(problems: list[dict], kind: str) -> list[dict]:
    return [p for p in problems if p["kind"] == kind]


def _measure(value) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:.1%}"


__all__ = ["render"]
