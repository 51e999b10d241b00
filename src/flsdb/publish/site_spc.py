"""The report site's SPC part (issue 14 part 4): on every FLS page and on the England and Wales,
England and Wales pages (monthly/), a table of each KPI's variation and assurance with its icon,
and one SPC chart per KPI of the monthly series, with its numbers month by month.

It reads the published tier only (published_kpi_monthly, published_kpi_spc_summary, the KPI
definitions and, when published, the seasonal profile of KPI 2/3's expected counts); the KPIs are
those with a published monthly series, in the order of the KPI definitions. Suppressed months are
not drawn, and a series ends at its last month with a value (flsdb.publish.site_data).
"""

from __future__ import annotations

import calendar

import pandas as pd

from flsdb.publish import charts as ch
from flsdb.publish import charts_spc as spc
from flsdb.publish.cells import DASH, SUPPRESSED, fmt_count, fmt_pct, reason, table
from flsdb.publish.kpi_words import kpi_list
from flsdb.publish.site_data import SiteData
from flsdb.publish.site_render import Charts, Renderer

#: Geography levels that get a page of their own in monthly/ (FLSs have theirs in fls/).
PAGE_LEVELS = ("national", "country")


MONTH_COLUMNS = ["geography_level", "geography_code", "geography_name", "kpi_number", "month_start", "month",
                 "numerator", "denominator", "value_pct", "spc_group", "centre_pct", "lower", "upper",
                 "target_pct", "point_type", "is_suppressed", "suppression_reason"]


def by_series(data: SiteData) -> dict:
    """{(level, code): {"name", "months": {kpi: [month rows in time order]}, "summary": {kpi: row}}}
    of the published series, prepared once for every page: months as text, the process limits
    bounded to the range each KPI's value can take (charts.bounded), missing values None."""
    found: dict = {}
    monthly = data.monthly
    if monthly is not None and not monthly.empty:
        frame = monthly.sort_values(["geography_level", "geography_code", "kpi_number", "month_start"])
        value_types = frame["kpi_number"].map(data.value_type)
        frame = frame.assign(month=pd.to_datetime(frame["month_start"]).dt.strftime("%Y-%m-%d"),
                             lower=ch.bounded_values(frame["lower_limit_pct"], value_types),
                             upper=ch.bounded_values(frame["upper_limit_pct"], value_types))[MONTH_COLUMNS]
        for r in frame.astype(object).where(frame.notna(), None).to_dict("records"):
            entry = found.setdefault((r["geography_level"], r["geography_code"]),
                                     {"name": r["geography_name"], "months": {}, "summary": {}})
            entry["months"].setdefault(int(r["kpi_number"]), []).append(r)
    summary = data.spc_summary
    if summary is not None and not summary.empty:
        for r in summary.astype(object).where(summary.notna(), None).to_dict("records"):
            entry = found.get((r["geography_level"], r["geography_code"]))
            if entry is not None:
                entry["summary"][int(r["kpi_number"])] = r
    return found


def _month(value) -> str:
    return DASH if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%b %Y")


def _month_words(month: str | None) -> str:
    return DASH if month is None else f"{calendar.month_abbr[int(month[5:7])]} {month[:4]}"


def month_table(data: SiteData, kpi: int, months: list[dict], caption: str) -> dict:
    """The numbers of one chart, month by month (suppressed months say so; limits as drawn)."""
    decimals = data.decimals(kpi)
    rows = []
    for r in months:
        s = bool(r["is_suppressed"])
        counts = SUPPRESSED if s else f"{fmt_count(r['numerator'])} / {fmt_count(r['denominator'], decimals=decimals)}"
        point = (SUPPRESSED if s else DASH if r["value_pct"] is None else spc.POINT_LABELS.get(r["point_type"]))
        limits = DASH if r["lower"] is None or r["upper"] is None else f"{fmt_pct(r['lower'])} to {fmt_pct(r['upper'])}"
        rows.append([_month_words(r["month"]), fmt_pct(r["value_pct"], reason(r)), counts, point, fmt_pct(r["centre_pct"]),
                     limits])
    return table(caption, ["month", "value", "numerator / denominator", "point", "mean", "process limits"],
                 rows, {1, 2, 4, 5})


def _summary_row(data: SiteData, kpi: int, s: dict | None) -> tuple[list, dict]:
    if s is None:
        variation, assurance, latest, points = "no series", "", DASH, "0"
    else:
        variation = (f"latest month {SUPPRESSED}" if s["is_latest_point_suppressed"]
                     else spc.variation_icon(s["variation"]))
        assurance = ("withheld (small numbers)" if s["spc_lines_withheld"]
                     else spc.assurance_icon(s["assurance"]))
        latest = (SUPPRESSED if s["is_latest_point_suppressed"]
                  else f"{fmt_pct(s['latest_value_pct'])} ({_month(s['latest_point_month_start'])})")
        points = f"{int(s['points'])}"
    target = s["target_pct"] if s is not None else None
    attrs = {"data-spc-kpi": kpi,
             "data-variation": "" if s is None or not isinstance(s["variation"], str) else s["variation"],
             "data-assurance": "" if s is None or not isinstance(s["assurance"], str) else s["assurance"]}
    return ([f"KPI {kpi}", data.kpi_name[kpi], latest, points, variation, assurance,
             DASH if target is None else f"{float(target):.0f}%"], attrs)


def spc_section(data: SiteData, charts: Charts, series: dict, level: str, code: str, name: str) -> dict | None:
    """{"table", "charts"} of one geography's monthly series, or None when it has none."""
    entry = series.get((level, code))
    if entry is None or not entry["months"]:
        return None
    rows, attrs, entries = [], [], []
    for kpi in [k for k in data.kpi_numbers if k in entry["months"]]:
        label, months, s = data.label(kpi), entry["months"][kpi], entry["summary"].get(kpi)
        cells, attr = _summary_row(data, kpi, s)
        rows.append(cells)
        attrs.append(attr)
        has_limits = any(r["upper"] is not None for r in months)
        entries.append({"kpi": kpi, "name": data.kpi_name[kpi],
                        "chart": charts.render(spc.spc_spec(), spc.spc_data(months), f"{label}: monthly SPC chart",
                                               spc.describe(s, label, has_limits), table="below"),
                        "table": month_table(data, kpi, months, f"{name}: {label}, by month")})
    every = [r["month"] for months in entry["months"].values() for r in months]
    return {"table": table(f"{name}: variation and assurance of the monthly KPIs, "
                           f"{_month_words(min(every))} to {_month_words(max(every))}",
                           ["KPI", "name", "latest point", "points", "variation", "assurance", "target"],
                           rows, {2, 3, 6}, attrs),
            "charts": entries}


def seasonal_profile(data: SiteData) -> dict | None:
    """The seasonal shares behind KPI 2/3's monthly expected counts (docs/specification/monitoring.md
    section 1), when the published tier has them: one row per month of the year, one column per KPI."""
    profile = data.seasonal_profile
    if profile is None or profile.empty:
        return None
    kpis = sorted(int(k) for k in profile["kpi_number"].unique())
    shares = profile.pivot_table(index="month_of_year", columns="kpi_number", values="share", aggfunc="first")
    rows = [[calendar.month_name[int(month)],
             *[DASH if pd.isna(shares.loc[month].get(k)) else f"{100 * float(shares.loc[month][k]):.1f}%" for k in kpis]]
            for month in sorted(shares.index)]
    years = profile.groupby("kpi_number")["years_used"].first()
    return {"kpis": kpi_list(kpis), "years_used": [(data.label(k), _years_words(years.get(k))) for k in kpis],
            "table": table(f"Seasonal profile of expected fractures: share of the year's fractures in each month, "
                           f"{kpi_list(kpis)}", ["month", *[data.label(k) for k in kpis]], rows,
                           range(1, 1 + len(kpis)))}


def _years_words(value) -> str:
    """years_used in words: a count of complete audit years (0: the flat share), or their list."""
    if value is None or pd.isna(value):
        return "no complete audit year: days in the month over days in the year"
    try:
        count = int(value)
    except (TypeError, ValueError):
        return f"audit years {value}"
    if count == 0:
        return "no complete audit year: days in the month over days in the year"
    return f"{count} complete audit {'year' if count == 1 else 'years'}"


def spc_pages(data: SiteData, out: Renderer, series: dict) -> None:
    """monthly/index.html and one page per national and country geography."""
    geographies = sorted((key for key in series if key[0] in PAGE_LEVELS),
                         key=lambda key: (PAGE_LEVELS.index(key[0]), key[1]))
    profile = seasonal_profile(data)
    links = []
    for level, code in geographies:
        name = str(series[(level, code)]["name"] or code)
        charts = out.charts(f"spc-{code}")
        out.page(f"monthly/{code}.html", "spc_page.html", f"Monthly run charts: {name}", f"monthly-{code}", charts,
                 spc=spc_section(data, charts, series, level, code, name), name=name, profile=profile)
        links.append({"href": f"{code}.html", "name": name, "level": level})
    out.page("monthly/index.html", "spc_index.html", "Monthly run charts", "monthly-index", links=links,
             profile=profile)
