"""The report site's SPC part (issue 14 part 4): on every FLS page and on the England and Wales,
England and Wales pages (monthly/), a table of each KPI's variation and assurance with its icon,
and one SPC chart per KPI of the monthly series.

It reads the published tier only (published_kpi_monthly, published_kpi_spc_summary, the KPI
definitions), as flsdb.publish.site does; the KPIs are those with a published monthly series, in
the order of the KPI definitions. Suppressed months are not drawn (flsdb.publish.charts_spc).
"""

from __future__ import annotations

import pandas as pd

from flsdb.publish import charts as ch
from flsdb.publish import charts_spc as spc
from flsdb.publish.cells import DASH, SUPPRESSED, fmt_count, fmt_pct, reason, table

#: Geography levels that get a page of their own in monthly/ (FLSs have theirs in fls/).
PAGE_LEVELS = ("national", "country")


def _by_series(builder) -> tuple[dict, dict]:
    """{(level, code): months} and {(level, code): summary rows}, computed once per site."""
    if not hasattr(builder, "_spc_index"):
        data = builder.data
        monthly = data.monthly if data.monthly is not None else pd.DataFrame(
            columns=["geography_level", "geography_code", "kpi_number"])
        summary = data.spc_summary if data.spc_summary is not None else pd.DataFrame(
            columns=["geography_level", "geography_code", "kpi_number"])
        builder._spc_index = (dict(tuple(monthly.groupby(["geography_level", "geography_code"]))),
                              dict(tuple(summary.groupby(["geography_level", "geography_code"]))))
    return builder._spc_index


def _month(value) -> str:
    return DASH if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%b %Y")


def month_table(builder, series: pd.DataFrame, caption: str) -> dict:
    """The numbers of one chart, month by month (suppressed months say so)."""
    decimals = 1 if builder.value_type.get(int(series["kpi_number"].iloc[0])) == "ratio_to_expected" else 0
    rows = []
    for r in series.sort_values("month_start").to_dict("records"):
        s = bool(r["is_suppressed"])
        counts = SUPPRESSED if s else f"{fmt_count(r['numerator'])} / {fmt_count(r['denominator'], decimals=decimals)}"
        point = (SUPPRESSED if s else DASH if pd.isna(r["value_pct"]) else
                 spc.POINT_LABELS.get(r["point_type"] if isinstance(r["point_type"], str) else None))
        limits = (DASH if pd.isna(r["lower_limit_pct"]) or pd.isna(r["upper_limit_pct"])
                  else f"{fmt_pct(r['lower_limit_pct'])} to {fmt_pct(r['upper_limit_pct'])}")
        rows.append([_month(r["month_start"]), fmt_pct(r["value_pct"], reason(r)), counts, point,
                     fmt_pct(r["centre_pct"]), limits])
    return table(caption, ["month", "value", "numerator / denominator", "point", "mean", "process limits"],
                 rows, {1, 2, 4, 5})


def spc_section(builder, level: str, code: str, name: str) -> dict | None:
    """{"table", "charts"} of one geography's monthly series, or None when it has none."""
    months_by, summary_by = _by_series(builder)
    months = months_by.get((level, code))
    if months is None or months.empty:
        return None
    summary = summary_by.get((level, code))
    summary = {} if summary is None else {int(r["kpi_number"]): r for r in summary.to_dict("records")}
    present = {int(k) for k in months["kpi_number"].unique()}
    kpis = [k for k in builder.kpis if k in present]
    charts = ch.Charts(f"spc-{code}")
    rows, attrs, entries = [], [], []
    for kpi in kpis:
        label = f"KPI {kpi}: {builder.kpi_short[kpi]}"
        s = summary.get(kpi)
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
        rows.append([f"KPI {kpi}", builder.kpi_name[kpi], latest, points, variation, assurance,
                     DASH if target is None or pd.isna(target) else f"{float(target):.0f}%"])
        attrs.append({"data-spc-kpi": kpi, "data-variation": "" if s is None or not isinstance(s["variation"], str)
                      else s["variation"],
                      "data-assurance": "" if s is None or not isinstance(s["assurance"], str) else s["assurance"]})
        series = months.loc[months["kpi_number"] == kpi]
        has_limits = bool(series["upper_limit_pct"].notna().any())
        entries.append({"kpi": kpi, "name": builder.kpi_name[kpi],
                        "chart": charts.render(spc.spc_spec(), spc.spc_data(series), f"{label}: monthly SPC chart",
                                               spc.describe(s, label, has_limits)),
                        "table": month_table(builder, series, f"{name}: {label}, by month")})
    first, last = _month(months["month_start"].min()), _month(months["month_start"].max())
    return {"table": table(f"{name}: variation and assurance of the monthly KPIs, {first} to {last}",
                           ["KPI", "name", "latest point", "points", "variation", "assurance", "target"],
                           rows, {2, 3, 6}, attrs),
            "charts": entries}


def spc_pages(builder) -> None:
    """monthly/index.html and one page per national and country geography."""
    months_by, _ = _by_series(builder)
    geographies = sorted({key for key in months_by if key[0] in PAGE_LEVELS},
                         key=lambda key: (PAGE_LEVELS.index(key[0]), key[1]))
    links = []
    for level, code in geographies:
        names = months_by[(level, code)]["geography_name"].dropna()
        name = str(names.iloc[0]) if len(names) else code
        section = spc_section(builder, level, code, name)
        builder.write_page(f"monthly/{code}.html", "spc_page.html", f"Monthly run charts: {name}",
                           f"monthly-{code}", spc=section, name=name)
        links.append({"href": f"{code}.html", "name": name, "level": level})
    builder.write_page("monthly/index.html", "spc_index.html", "Monthly run charts", "monthly-index",
                       links=links)
