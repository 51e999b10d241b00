"""The FLS pages of the report site: fls/index.html and one page per FLS, in the order a lead
reads them:

1. this year's KPIs against the target and the nation, with the gap to the target (KPI 1, a
   service's share of key fields complete, beside the median FLS's share: like with like);
2. the trends across audit years;
3. the monthly SPC summary (variation and assurance);
4. the service's outliers this year, each once, each with its funnel plot (this FLS ringed),
   and its entries of earlier years in the outlier register;
5. the monthly SPC charts, the key fields' completeness and the caterpillar plots.
"""

from __future__ import annotations

import pandas as pd
from markupsafe import Markup

from flsdb.publish import charts as ch
from flsdb.publish import charts_outliers as co
from flsdb.publish import site_figures as fig
from flsdb.publish import site_outliers as so
from flsdb.publish import site_spc
from flsdb.publish.cells import (DASH, SUPPRESSED, _missing, fmt_ci, fmt_count, fmt_pct, outlier_words,
                                 rating_cell, reason, table, withheld)
from flsdb.publish.site_data import SiteData
from flsdb.publish.site_render import Charts, Renderer


def pages(data: SiteData, out: Renderer, series: dict) -> None:
    """fls/index.html and every FLS's page (`series`: site_spc.by_series)."""
    fls_index(data, out)
    completeness = dict(tuple(data.completeness.loc[data.completeness["audit_year"] == data.year]
                              .groupby("fls_code")))
    register = dict(tuple(so.register(data).groupby("fls_code")))
    caterpillar = fig.caterpillar_key(data, out)
    on_caterpillar = set(fig.caterpillar_rows(data)["geography_code"])
    for code in sorted(data.by_fls):
        fls_page(data, out, code, series=series, completeness=completeness.get(code),
                 register=register.get(code), caterpillar=caterpillar if code in on_caterpillar else None)


def fls_index(data: SiteData, out: Renderer) -> None:
    fls = data.fls.set_index("fls_code")
    services = []
    for code in sorted(data.by_fls):
        info = fls.loc[code] if code in fls.index else None
        year_rows = data.rows(audit_year=data.year, geography_level="fls", geography_code=code, breakdown="all")
        counts = year_rows["rating"].value_counts()
        services.append({
            "code": code, "name": info["fls_name"] if info is not None else code,
            "region": info["region_name"] if info is not None else "",
            "country": info["country_name"] if info is not None else "",
            "summary": ", ".join(f"{counts.get(k, 0)} {k}" for k in ("green", "amber", "red"))
            if len(year_rows) else "no results"})
    out.page("fls/index.html", "fls_index.html", "FLS results", "fls-index", year=data.year, services=services)


def _gap(row: dict, target: float | None) -> str:
    """The value minus the target, in percentage points."""
    if row["is_suppressed"]:
        return SUPPRESSED
    if target is None or _missing(row["value_pct"]):
        return DASH
    gap = float(row["value_pct"]) - target
    return f"{gap:+.1f} points" + (" (target met)" if gap >= 0 else "")


def kpi_rows(data: SiteData, code: str) -> tuple[list, list, list[dict]]:
    """The rows of the page's first table, and the rows its chart plots (with `comparator_pct`)."""
    y = data.year
    rows, attrs, plotted = [], [], []
    for kpi in data.kpi_numbers:
        r = data.one(y, "fls", kpi, geography_code=code)
        comparator, words = data.comparator(y, kpi)
        target = data.target.get(kpi)
        if r is None:
            rows.append([f"KPI {kpi}", data.kpi_name[kpi], "no result", "", "", "", "", "", ""])
            attrs.append({"data-kpi": kpi, "data-suppressed": "false"})
            continue
        s = bool(r["is_suppressed"])
        counts = (SUPPRESSED if s else
                  f"{fmt_count(r['numerator'])} / {fmt_count(r['denominator'], decimals=data.decimals(kpi))}")
        national = DASH if comparator is None else f"{fmt_pct(comparator)}" + (
            f" ({words})" if kpi in data.completeness_kpis else "")
        rows.append([f"KPI {kpi}", data.kpi_name[kpi], fmt_pct(r["value_pct"], reason(r)),
                     fmt_ci(r["ci_lower_pct"], r["ci_upper_pct"], s), counts,
                     DASH if target is None else f"{target:.0f}%", _gap(r, target), national,
                     rating_cell(r["rating"], s)])
        attrs.append({"data-kpi": kpi, "data-suppressed": str(s).lower()})
        if not s and not _missing(r["value_pct"]):
            plotted.append({**r, "comparator_pct": comparator, "target_pct": target})
    return rows, attrs, plotted


def trend_rows(data: SiteData, code: str) -> tuple[list[dict], list]:
    """(this FLS's and the comparators' values by audit year, the table's rows)."""
    both, rows = [], []
    for kpi in data.kpi_numbers:
        cells = [data.label(kpi)]
        for year in data.years:
            r = data.one(year, "fls", kpi, geography_code=code)
            cells.append(DASH if r is None else withheld(r["suppression_reason"]) if r["is_suppressed"] else
                         Markup("{} {}").format(fmt_pct(r["value_pct"]), rating_cell(r["rating"])))
            if r is not None and not r["is_suppressed"] and not _missing(r["value_pct"]):
                both.append({**r, "series": "this FLS"})
            value, _ = data.comparator(year, kpi)
            if value is not None:
                both.append({"kpi_label": data.label(kpi), "kpi_number": kpi, "audit_year": year, "value_pct": value,
                             "series": "England and Wales", "geography_code": None, "breakdown": "all",
                             "breakdown_value": "all"})
        rows.append(cells)
    return both, rows


def completeness_part(data: SiteData, name: str, comp: pd.DataFrame | None) -> tuple[dict | None, str | None]:
    """(the key fields' table, KPI 1's verdict in words) of the report year."""
    if comp is None or comp.empty:
        return None, None
    threshold, words = data.words["key_field_threshold"], data.words["completeness"]
    first = comp.iloc[0]
    median, services = data.completeness_medians.get(data.year, (None, 0))
    verdict = (f"{words}: {int(first['fields_at_least_80_pct_complete'])} of {int(first['key_fields'])} "
               f"key fields at least {threshold} complete: {'✔ met' if first['fls_meets_kpi_1'] else '✖ not met'}."
               + ("" if median is None else f" The median FLS has {fmt_pct(median)} of its key fields at least "
                                            f"{threshold} complete ({services} FLSs)."))
    rows = []
    for r in comp.to_dict("records"):
        s = bool(r["is_suppressed"])
        ok = r["is_at_least_80_pct_complete"]
        rows.append([r["field_name"], fmt_pct(r["completeness_pct"], s and "small numbers"),
                     SUPPRESSED if s else f"{fmt_count(r['records_recorded'])} of {fmt_count(r['records_measured'])}",
                     SUPPRESSED if s else ("✔ yes" if ok else "✖ no")])
    return table(f"{name}: completeness of the {len(comp)} key fields, {data.year}",
                 ["field", "complete", "records", f"at least {threshold}"], rows, {1, 2}), verdict


def outlier_part(data: SiteData, out: Renderer, charts: Charts, code: str,
                 entries: pd.DataFrame | None) -> tuple[list[dict], list[dict]]:
    """(this year's outliers, each with its words and funnel plot; the tables of earlier years')."""
    if entries is None or entries.empty:
        return [], []
    now = entries.loc[entries["audit_year"] == data.year]
    outliers = []
    for r in now.to_dict("records"):
        kpi = int(r["kpi_number"])
        high = r["outlier_direction"] == "high"
        level = "998" if r["outlier_level"] == "alarm" else "95"
        outliers.append({
            "kpi": kpi, "name": data.kpi_name[kpi], "high": high, "level": r["outlier_level"],
            "words": outlier_words(r["outlier_level"], r["outlier_direction"]),
            "value": fmt_pct(r["value_pct"]), "national": fmt_pct(r["national_value_pct"]),
            "limits": fmt_ci(*ch.bounded_pair(r[f"funnel_lower_{level}_pct"], r[f"funnel_upper_{level}_pct"],
                                              data.value_type[kpi])),
            "limit_level": "99.8%" if level == "998" else "95%",
            "status": None if high else so.status_text(r["status"]), "status_code": None if high else r["status"],
            "chart": fig.fls_funnel_chart(data, out, charts, kpi, code)})
    earlier = entries.loc[entries["audit_year"] != data.year]
    low, high = earlier.loc[earlier["outlier_direction"] != "high"], earlier.loc[earlier["outlier_direction"] == "high"]
    tables = [t for t in (so.register_table(data, low, "Low outliers of earlier audit years", False, None),
                          so.register_table(data, high, "High outliers of earlier audit years: better than expected",
                                            True, None)) if t is not None]
    return outliers, tables


def fls_page(data: SiteData, out: Renderer, code: str, series: dict, completeness: pd.DataFrame | None,
             register: pd.DataFrame | None, caterpillar: str | None) -> None:
    charts = out.charts(f"fls-{code}")
    y = data.year
    fls = data.fls.set_index("fls_code")
    info = fls.loc[code].to_dict() if code in fls.index else None
    name = str(info["fls_name"]) if info is not None else code
    rows, attrs, plotted = kpi_rows(data, code)
    kpi_table = table(f"{name}: KPIs, {y}, against the target and England and Wales",
                      ["KPI", "name", "value", "95% CI", "numerator / denominator", "target", "gap to target",
                       "England and Wales", "rating"], rows, {2, 3, 4, 5, 6, 7}, attrs)
    median = f"; for {data.words['completeness']} the median FLS" if data.completeness_kpis else ""
    kpi_chart = charts.render(
        ch.fls_kpi_spec(), ch.fls_kpi_data(plotted), f"{name}: KPI values against the target and England and Wales, {y}",
        "Dot plot: the FLS's value (blue dot) with its 95% confidence interval (grey line), England and Wales "
        f"(orange tick{median}) and the target (cross) for each KPI.", table="above") if plotted else None
    both, trend_table_rows = trend_rows(data, code)
    trend_chart = charts.render(
        ch.trend_spec(150), ch.trend_data(both), f"{name}: KPI values by audit year",
        f"Small multiples, one per KPI: this FLS's value (blue squares) and England and Wales (grey circles{median}) "
        f"in each audit year. {ch.OWN_SCALE_WORDS}") if both else None
    trend_table = table(f"{name}: KPI values by audit year", ["KPI", *map(str, data.years)], trend_table_rows,
                        range(1, 1 + len(data.years)))
    outliers, earlier = outlier_part(data, out, charts, code, register)
    completeness_table, verdict = completeness_part(data, name, completeness)
    caterpillar_chart = None
    if caterpillar is not None:
        caterpillar_chart = charts.render(
            co.caterpillar_fls_spec(), None, f"{name} among all FLSs, {y}: caterpillar plots",
            "One panel per KPI: every FLS ranked by its value with its 95% confidence interval; this FLS in "
            "orange and larger, the others in blue; the dashed line is the national value.",
            shared=caterpillar, params={"this_fls": code}, table=None)
    out.page(f"fls/{code}.html", "fls_page.html", name, f"fls-{code}", charts, code=code, info=info, year=y,
             kpi_table=kpi_table, kpi_chart=kpi_chart, trend_chart=trend_chart, trend_table=trend_table,
             spc=site_spc.spc_section(data, charts, series, "fls", code, name),
             outliers=outliers, earlier_outliers=earlier, completeness_table=completeness_table,
             kpi1_verdict=verdict, caterpillar_chart=caterpillar_chart)
