"""Charts that several page families draw, over datasets written once for the whole site:

- a KPI's funnel plot (data/funnel-<year>-kpi-<n>.js): on the funnel page, and on the page of
  every FLS that is an alert or an alarm on that KPI, with the FLS ringed;
- the caterpillar plots of a year (data/caterpillar-<year>.js): one chart per KPI on the
  caterpillar page, and every KPI with the FLS highlighted on each FLS page.

Rows are published_kpi_results' and published_funnel_limits' own (flsdb.publish.site_data);
suppressed results are not drawn (charts.plotted).
"""

from __future__ import annotations

import pandas as pd

from flsdb.publish import charts as ch
from flsdb.publish import charts_outliers as co
from flsdb.publish.site_data import SiteData
from flsdb.publish.site_render import Charts, Renderer


def funnel_points(data: SiteData, kpi: int, year: int) -> tuple[pd.DataFrame, pd.DataFrame, float | None]:
    """(FLS points with their status, published curve, national value) of one KPI's funnel plot."""
    points = ch.plotted(data.rows(audit_year=year, geography_level="fls", kpi_number=kpi, breakdown="all"))
    points = points.assign(status=[ch.funnel_status(r) for r in
                                   points[["is_outlier_alert", "is_outlier_alarm", "outlier_direction"]]
                                   .to_dict("records")])
    limits = data.funnel_limits
    curve = limits.loc[(limits["audit_year"] == year) & (limits["kpi_number"] == kpi)]
    national = None if curve.empty else float(curve["national_value_pct"].iloc[0])
    return points, curve, national


def funnel_kpis(data: SiteData) -> list[int]:
    """The KPIs with a published funnel curve."""
    return sorted(int(k) for k in data.funnel_limits["kpi_number"].unique())


def funnel_x_title(data: SiteData, kpi: int) -> str:
    return ("expected fragility fractures in the catchment (log scale)"
            if data.value_type[kpi] == "ratio_to_expected" else "patients in the denominator (log scale)")


def funnel_key(data: SiteData, out: Renderer, kpi: int) -> tuple[str, pd.DataFrame, float] | None:
    """(the shared dataset key, the published curve, the national value) of KPI `kpi`'s funnel
    plot of the report year, or None when there is nothing to plot."""
    year = data.year
    limits = data.funnel_limits
    curve = limits.loc[(limits["audit_year"] == year) & (limits["kpi_number"] == kpi)]
    if curve.empty:
        return None
    national = float(curve["national_value_pct"].iloc[0])
    key = f"funnel-{year}-kpi-{kpi}"
    if key not in out.shared:
        points, _, _ = funnel_points(data, kpi, year)
        if points.empty:
            return None
        out.share(key, ch.funnel_data(points, curve, national, data.value_type[kpi]))
    return key, curve, national


LIMIT_WORDS = ("95% (thin) and 99.8% (thick) control limits adjusted for overdispersion (solid) and unadjusted "
               "(dotted), drawn within the range the value can take")


def funnel_chart(data: SiteData, out: Renderer, charts: Charts, kpi: int, table: str | None = "below") -> dict | None:
    """KPI `kpi`'s funnel plot of the report year (the funnel page), or None."""
    found = funnel_key(data, out, kpi)
    if found is None:
        return None
    key, curve, national = found
    caption = ch.funnel_caption(curve)
    return charts.render(
        ch.funnel_spec(funnel_x_title(data, kpi)), None, f"Funnel plot, KPI {kpi}, {data.year}: {caption}",
        f"Funnel plot of FLS results for KPI {kpi} against their denominator, around the national value "
        f"{national:.1f}%: {LIMIT_WORDS}; {caption}.", shared=key, table=table)


def fls_funnel_chart(data: SiteData, out: Renderer, charts: Charts, kpi: int, code: str) -> dict | None:
    """KPI `kpi`'s funnel plot with FLS `code` ringed (its page), or None when it is not on it."""
    row = data.one(data.year, "fls", kpi, geography_code=code)
    if row is None or row["is_suppressed"] or pd.isna(row["value_pct"]):
        return None
    found = funnel_key(data, out, kpi)
    if found is None:
        return None
    key, curve, _ = found
    mine = {"geography_name": row["geography_name"], "denominator": row["denominator"],
            "value_pct": row["value_pct"], "status": ch.funnel_status(row),
            **{c: row[c] for c in ch.KEY_COLUMNS}}
    return charts.render(
        ch.funnel_spec(funnel_x_title(data, kpi), highlight=True),
        {"highlight": ch._dicts([mine], ch.FUNNEL_POINT_COLUMNS)},
        f"KPI {kpi} funnel plot, {data.year}, this FLS ringed: {ch.funnel_caption(curve)}",
        f"Funnel plot of all FLSs' KPI {kpi} results with {LIMIT_WORDS}; this FLS is ringed in black.",
        shared=key, table=None)


def caterpillar_rows(data: SiteData) -> pd.DataFrame:
    """Every FLS result of the report year a caterpillar plot draws: plotted, with an interval."""
    rows = ch.plotted(data.rows(audit_year=data.year, geography_level="fls", breakdown="all"))
    return rows.loc[rows["ci_lower_pct"].notna() & rows["ci_upper_pct"].notna()]


def caterpillar_key(data: SiteData, out: Renderer) -> str | None:
    """data/caterpillar-<year>.js: the rows of caterpillar_rows, shared by every page drawing them."""
    rows = caterpillar_rows(data)
    return None if rows.empty else out.share(f"caterpillar-{data.year}", lambda: co.caterpillar_data(rows))
