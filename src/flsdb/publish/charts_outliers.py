"""Caterpillar plots of the report site (issue 15; docs/specification/monitoring.md section 3), as the NHFD's:
every FLS ranked by its value, with its 95% confidence interval, against the national line.

The values and intervals are published_kpi_results' own (`value_pct`, `ci_lower_pct`,
`ci_upper_pct`); suppressed results have none and are not drawn (charts.plotted). The ranking is
a Vega-Lite window transform in the spec: Python orders nothing and computes nothing.

One dataset holds every FLS's results of the year (data/caterpillar-<year>.js, shared by the
caterpillar page and every FLS page); a parameter of the spec picks what a page shows: `kpi` on
the caterpillar page (one chart per KPI), `this_fls` on an FLS page (every KPI, that FLS
highlighted).
"""

from __future__ import annotations

import functools

import altair as alt
import pandas as pd

from flsdb.publish.charts import KEY_COLUMNS, KPI_SORT, _records, _spec

HIGHLIGHT_COLOUR, OTHER_COLOUR = "#D55E00", "#0072B2"


def _layers(highlight: bool, width: int, height: int):
    base = alt.Chart().transform_window(
        rank="row_number()", sort=[alt.SortField("value_pct"), alt.SortField("geography_code")],
        groupby=["kpi_number"])
    if highlight:
        base = base.transform_calculate(is_this_fls="datum.geography_code === this_fls")
    x = alt.X("rank:Q", title="FLSs ranked by value", axis=alt.Axis(labels=False, ticks=False, grid=False))
    colour = (alt.condition("datum.is_this_fls", alt.value(HIGHLIGHT_COLOUR), alt.value(OTHER_COLOUR))
              if highlight else alt.value(OTHER_COLOUR))
    size = alt.condition("datum.is_this_fls", alt.value(120), alt.value(30)) if highlight else alt.value(30)
    intervals = base.mark_rule().encode(x=x, y=alt.Y("ci_lower_pct:Q", title="% (95% confidence interval)"),
                                        y2="ci_upper_pct:Q", color=colour,
                                        strokeWidth=alt.condition("datum.is_this_fls", alt.value(2.5), alt.value(1))
                                        if highlight else alt.value(1))
    points = base.mark_point(filled=True).encode(
        x=x, y="value_pct:Q", color=colour, size=size,
        tooltip=["geography_name:N", "geography_code:N", alt.Tooltip("value_pct:Q", format=".1f"),
                 alt.Tooltip("ci_lower_pct:Q", format=".1f"), alt.Tooltip("ci_upper_pct:Q", format=".1f")])
    national = alt.Chart().mark_rule(color="#000000", strokeDash=[5, 3]).encode(y="mean(national_value_pct):Q")
    return alt.layer(intervals, points, national, data=alt.NamedData("values")).properties(
        width=width, height=height)


@functools.cache
def caterpillar_spec() -> dict:
    """One KPI (parameter `kpi`): its FLSs ranked, intervals as vertical lines, the national
    value dashed."""
    kpi = alt.param(name="kpi", value=0)
    chart = _layers(False, 620, 260).transform_filter("datum.kpi_number === kpi").add_params(kpi)
    return _spec(chart)


@functools.cache
def caterpillar_fls_spec() -> dict:
    """Every KPI, one panel each, with one FLS (parameter `this_fls`) highlighted (its FLS page)."""
    this_fls = alt.param(name="this_fls", value="")
    return _spec(_layers(True, 260, 150).facet(
        facet=alt.Facet("kpi_label:N", title=None, sort=KPI_SORT), columns=3,
    ).resolve_scale(y="independent").add_params(this_fls))


def caterpillar_data(rows: pd.DataFrame) -> dict:
    """The plotted (not suppressed) FLS results with an interval, every KPI of the year."""
    data = rows.loc[rows["ci_lower_pct"].notna() & rows["ci_upper_pct"].notna()]
    return {"values": _records(data, ["kpi_label", "kpi_number", "geography_name", "value_pct", "ci_lower_pct",
                                      "ci_upper_pct", "national_value_pct", *KEY_COLUMNS])}
