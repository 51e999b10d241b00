"""Charts of the report site: Vega-Lite specs made with Altair, and the rows each chart plots.

Each spec is built (and validated by Altair) once, over named datasets, and written once per site
into assets/specs.js (flsdb.publish.site_render); a page names the spec and gives its own rows,
or names a shared dataset file (data/<key>.js) that many pages load, such as the funnel plot of
a KPI. Nothing here computes a published number: rows come from the published tier
(flsdb.publish.site_data), and suppressed results have no value to plot. The one change made to
a published number before drawing it: a control limit is drawn within the range the value can
take (`bounded`), 0 to 100% for proportions and completeness, at least 0 for the
identification ratios, which can exceed 100%.
"""

from __future__ import annotations

import functools
import math

import altair as alt
import numpy as np
import pandas as pd

QUINTILE_LABELS = {"1": "1 (most deprived)", "2": "2", "3": "3", "4": "4", "5": "5 (least deprived)",
                   "unknown": "unknown"}
#: value_type of the KPIs whose value can exceed 100% (observed against expected).
RATIO_TYPE = "ratio_to_expected"


def value_range(value_type: str) -> tuple[float, float | None]:
    """(lowest, highest) value a KPI of this value_type can take, in %; None: no upper bound."""
    return (0.0, None) if value_type == RATIO_TYPE else (0.0, 100.0)


def bounded(values: pd.Series, value_type: str) -> pd.Series:
    """Limits drawn within the range the value can take (docs/specification/monitoring.md section 2)."""
    low, high = value_range(value_type)
    return pd.to_numeric(values, errors="coerce").clip(lower=low, upper=high)


#: Decimals a chart's numbers keep: far below a pixel (the tables give the published values).
CHART_DECIMALS = 4


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    """Rows as JSON-ready dicts: native Python values, NaN and NaT as null, numbers rounded to
    CHART_DECIMALS."""
    sub = frame[list(dict.fromkeys(columns))].round(CHART_DECIMALS)
    return sub.astype(object).where(sub.notna(), None).to_dict("records")


def bounded_pair(lower, upper, value_type: str) -> tuple:
    """A pair of limits as shown in a table: within the range the value can take, like the charts."""
    low, high = value_range(value_type)

    def one(value):
        if value is None or pd.isna(value):
            return None
        value = max(float(value), low)
        return value if high is None else min(value, high)
    return one(lower), one(upper)


def _clean(value):
    """One value as JSON-ready: native Python, missing as None, a float rounded."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else round(float(value), CHART_DECIMALS)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def _dicts(records: list[dict], columns: list[str]) -> list[dict]:
    """`_records` for rows that are dicts already (such as SiteData.one's)."""
    return [{c: _clean(r.get(c)) for c in dict.fromkeys(columns)} for r in records]


def bounded_values(values, value_types) -> np.ndarray:
    """`bounded` for a column of many KPIs at once: each value within its KPI's range."""
    upper = np.where(np.asarray(value_types) == RATIO_TYPE, np.inf, 100.0)
    return np.minimum(np.maximum(pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float), 0.0), upper)


def plotted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows that may be drawn: not suppressed and with a value."""
    keep = (~frame["is_suppressed"].astype(bool)) & frame["value_pct"].notna()
    return frame.loc[keep]


def _spec(chart) -> dict:
    spec = chart.to_dict()
    spec.pop("datasets", None)
    return spec


KEY_COLUMNS = ["geography_code", "audit_year", "kpi_number", "breakdown", "breakdown_value"]
KPI_SORT = alt.SortField("kpi_number")
#: Small multiples of 11 KPIs: each panel draws its own x-axis, so that no empty slot of the
#: last row gets an axis of its own (an "empty 12th panel").
OWN_X_AXIS = {"x": "independent"}


@functools.cache
def glance_spec() -> dict:
    return _spec(alt.Chart(alt.NamedData("values")).mark_point(size=110, filled=True).encode(
        y=alt.Y("kpi_label:N", title=None, sort=KPI_SORT),
        x=alt.X("value_pct:Q", title="national value (%)"),
        color=alt.Color("year:N", title="audit year", scale=alt.Scale(range=["#999999", "#0072B2"])),
        shape=alt.Shape("year:N", title="audit year", scale=alt.Scale(range=["circle", "diamond"])),
        tooltip=["kpi_label:N", "year:N", alt.Tooltip("value_pct:Q", format=".1f")],
    ).properties(width=460, height=300))


def glance_data(rows: pd.DataFrame) -> dict:
    data = rows.assign(year=rows["audit_year"].astype(str))
    return {"values": _records(data, ["kpi_label", "kpi_number", "year", "value_pct", *KEY_COLUMNS])}


@functools.cache
def deprivation_pair_spec() -> dict:
    return _spec(alt.Chart(alt.NamedData("values")).mark_point(size=110, filled=True).encode(
        y=alt.Y("kpi_label:N", title=None, sort=KPI_SORT),
        x=alt.X("value_pct:Q", title="national value (%)"),
        color=alt.Color("quintile:N", title="deprivation", scale=alt.Scale(range=["#D55E00", "#0072B2"])),
        shape=alt.Shape("quintile:N", title="deprivation", scale=alt.Scale(range=["square", "circle"])),
        tooltip=["kpi_label:N", "quintile:N", alt.Tooltip("value_pct:Q", format=".1f")],
    ).properties(width=460, height=260))


def deprivation_pair_data(rows: pd.DataFrame) -> dict:
    data = rows.assign(quintile=rows["breakdown_value"].map(QUINTILE_LABELS))
    return {"values": _records(data, ["kpi_label", "kpi_number", "quintile", "value_pct", *KEY_COLUMNS])}


@functools.cache
def green_share_spec() -> dict:
    return _spec(alt.Chart(alt.NamedData("values")).mark_bar(color="#009E73").encode(
        y=alt.Y("kpi_label:N", title=None, sort=KPI_SORT),
        x=alt.X("green_share_pct:Q", title="FLSs rated green or met (%)", scale=alt.Scale(domain=[0, 100])),
        tooltip=["kpi_label:N", alt.Tooltip("green_share_pct:Q", format=".1f"), "green:Q", "rated:Q"],
    ).properties(width=460, height=300))


#: Said in the caption of every chart of small multiples with their own scales.
OWN_SCALE_WORDS = "Each panel has its own vertical scale, so compare the lines within a panel, not the heights across panels."


def _lines_and_points(x, y, field: str, title, colours: list[str], shapes: list[str], tooltip: list):
    """A line and a point per series: one legend (the points', colour and shape together), the
    lines coloured alike without a legend of their own (else the legend shows twice)."""
    scale = alt.Scale(range=colours)
    base = alt.Chart().encode(x=x, y=y)
    line = base.mark_line().encode(color=alt.Color(field, legend=None, scale=scale))
    points = base.mark_point(filled=True, size=60).encode(
        color=alt.Color(field, title=title, scale=scale),
        shape=alt.Shape(field, title=title, scale=alt.Scale(range=shapes)), tooltip=tooltip)
    return alt.layer(line, points, data=alt.NamedData("values"))


@functools.cache
def trend_spec(width: int = 170) -> dict:
    """One panel per KPI, its own y-scale (OWN_SCALE_WORDS) starting at 0."""
    layered = _lines_and_points(
        alt.X("audit_year:O", title="audit year", axis=alt.Axis(labelAngle=0)),
        alt.Y("value_pct:Q", title="% (own scale)", scale=alt.Scale(zero=True)), "series:N", None,
        ["#999999", "#0072B2"], ["circle", "square"],
        ["kpi_label:N", "series:N", "audit_year:O", alt.Tooltip("value_pct:Q", format=".1f")])
    return _spec(layered.properties(width=width, height=120).facet(
        facet=alt.Facet("kpi_label:N", title=None, sort=KPI_SORT), columns=4,
    ).resolve_scale(y="independent").resolve_axis(**OWN_X_AXIS))


TREND_COLUMNS = ["kpi_label", "kpi_number", "series", "value_pct", *KEY_COLUMNS]


def trend_data(rows) -> dict:
    """A frame, or a list of row dicts."""
    return {"values": _dicts(rows, TREND_COLUMNS) if isinstance(rows, list) else _records(rows, TREND_COLUMNS)}


@functools.cache
def comparison_spec() -> dict:
    """Dot with 95% interval per geography, faceted by KPI; dashed line = national value."""
    base = alt.Chart()
    bars = base.mark_rule(color="#555555").encode(
        y=alt.Y("geography_name:N", title=None), x=alt.X("ci_lower_pct:Q", title="% (own scale)"), x2="ci_upper_pct:Q")
    points = base.mark_point(filled=True, size=60, color="#0072B2").encode(
        y="geography_name:N", x="value_pct:Q",
        tooltip=["geography_name:N", "kpi_label:N", alt.Tooltip("value_pct:Q", format=".1f"),
                 alt.Tooltip("ci_lower_pct:Q", format=".1f"), alt.Tooltip("ci_upper_pct:Q", format=".1f")])
    national = base.mark_rule(color="#D55E00", strokeDash=[4, 3]).encode(x="mean(national_value_pct):Q")
    return _spec(alt.layer(bars, points, national, data=alt.NamedData("values")).properties(
        width=200, height=alt.Step(16)).facet(
        facet=alt.Facet("kpi_label:N", title=None, sort=KPI_SORT), columns=3,
    ).resolve_scale(x="independent"))


def comparison_data(rows: pd.DataFrame) -> dict:
    return {"values": _records(rows, ["kpi_label", "kpi_number", "geography_name", "value_pct", "ci_lower_pct",
                                      "ci_upper_pct", "national_value_pct", *KEY_COLUMNS])}


@functools.cache
def gradient_spec() -> dict:
    """One panel per KPI: the value by quintile, a line per audit year."""
    layered = _lines_and_points(
        alt.X("breakdown_value:O", title="quintile (1 most deprived)", axis=alt.Axis(labelAngle=0)),
        alt.Y("value_pct:Q", title="% (own scale)"), "year:N", "audit year",
        ["#999999", "#0072B2", "#009E73"], ["circle", "square", "diamond"],
        ["kpi_label:N", "year:N", "breakdown_value:O", alt.Tooltip("value_pct:Q", format=".1f")])
    return _spec(layered.properties(width=170, height=130).facet(
        facet=alt.Facet("kpi_label:N", title=None, sort=KPI_SORT), columns=4,
    ).resolve_scale(y="independent").resolve_axis(**OWN_X_AXIS))


def gradient_data(rows: pd.DataFrame) -> dict:
    data = rows.assign(year=rows["audit_year"].astype(str))
    return {"values": _records(data, ["kpi_label", "kpi_number", "year", "value_pct", *KEY_COLUMNS])}


# -- funnel plots -------------------------------------------------------------------------------

#: An FLS's place on a funnel plot. Higher is better for every KPI (docs/specification/monitoring.md section 2),
#: so only a low outlier is a concern (the HQIP outlier process); a high one is good performance.
FUNNEL_STATUS = {"within limits": ("#0072B2", "circle"),
                 "above the limits (good)": ("#009E73", "square"),
                 "low alert (below 95%)": ("#E69F00", "triangle-down"),
                 "low alarm (below 99.8%)": ("#D55E00", "diamond")}

#: How each published curve is drawn (issue 15): the limits adjusted for overdispersion solid,
#: the unadjusted ones dotted; the 99.8% limits thicker than the 95% ones.
FUNNEL_ADJUSTMENT = {"adjusted for overdispersion": ("", [1, 0]), "unadjusted": ("_unadjusted", [2, 3])}
FUNNEL_LEVELS = {"95% limits": ("95", 1.0), "99.8% limits": ("998", 2.2)}
#: The published curve's limit columns, drawn as one line each (the spec folds them).
FUNNEL_LINES = [f"{bound}_{level}{suffix}_pct" for suffix, _ in FUNNEL_ADJUSTMENT.values()
                for level, _ in FUNNEL_LEVELS.values() for bound in ("lower", "upper")]


def funnel_status(row: dict) -> str:
    alert = row.get("is_outlier_alert")
    if alert is None or pd.isna(alert) or not alert:
        return "within limits"
    if row.get("outlier_direction") == "high":
        return "above the limits (good)"
    return "low alarm (below 99.8%)" if row.get("is_outlier_alarm") else "low alert (below 95%)"


@functools.cache
def funnel_spec(x_title: str, highlight: bool = False) -> dict:
    """Points over the published limit curves (dataset `limits`: one row per denominator, one
    column per line, folded here). The x-axis spans the data only, labels do not overlap."""
    x_scale = alt.Scale(type="log", nice=False, zero=False)
    # labels at 1, 2 and 5 times a power of ten only ("100", "200", "500", "1,000"), never overlapping
    x_axis = alt.Axis(format=",", labelOverlap="greedy", labelSeparation=6,
                      labelExpr="test(regexp('^[125][,0]*$'), datum.label) ? datum.label : ''")
    adjustment = "indexof(datum.line, 'unadjusted') >= 0 ? 'unadjusted' : 'adjusted for overdispersion'"
    level = "indexof(datum.line, '998') >= 0 ? '99.8% limits' : '95% limits'"
    lines = alt.Chart(alt.NamedData("limits")).transform_fold(
        FUNNEL_LINES, as_=["line", "pct"]).transform_filter("isValid(datum.pct)").transform_calculate(
        adjustment=adjustment, limit=level).mark_line(color="#555555").encode(
        x=alt.X("denominator:Q", title=x_title, scale=x_scale, axis=x_axis),
        y=alt.Y("pct:Q", title="%"),
        detail="line:N",
        strokeDash=alt.StrokeDash("adjustment:N", title="control limits",
                                  scale=alt.Scale(domain=list(FUNNEL_ADJUSTMENT),
                                                  range=[dash for _, dash in FUNNEL_ADJUSTMENT.values()])),
        strokeWidth=alt.StrokeWidth("limit:N", title="limit",
                                    scale=alt.Scale(domain=list(FUNNEL_LEVELS),
                                                    range=[width for _, width in FUNNEL_LEVELS.values()])),
    )
    centre = alt.Chart(alt.NamedData("centre")).mark_rule(color="#000000").encode(y="pct:Q")
    dots = alt.Chart(alt.NamedData("points")).mark_point(filled=True, size=70).encode(
        x="denominator:Q", y="value_pct:Q",
        color=alt.Color("status:N", title="FLS result", scale=alt.Scale(
            domain=list(FUNNEL_STATUS), range=[c for c, _ in FUNNEL_STATUS.values()])),
        shape=alt.Shape("status:N", title="FLS result", scale=alt.Scale(
            domain=list(FUNNEL_STATUS), range=[s for _, s in FUNNEL_STATUS.values()])),
        tooltip=["geography_name:N", "geography_code:N", alt.Tooltip("value_pct:Q", format=".1f"),
                 alt.Tooltip("denominator:Q", format=",.1f"), "status:N"],
    )
    layers = [lines, centre, dots]
    if highlight:
        layers.append(alt.Chart(alt.NamedData("highlight")).mark_point(
            size=260, color="#000000", strokeWidth=2).encode(x="denominator:Q", y="value_pct:Q"))
    return _spec(alt.layer(*layers).properties(width=520, height=320))


def funnel_limits(curve: pd.DataFrame, value_type: str) -> list[dict]:
    """The published curve, one row per denominator, each limit bounded to the value's range."""
    limits = curve[["denominator"]].copy()
    for column in FUNNEL_LINES:
        limits[column] = bounded(curve[column], value_type)
    return _records(limits, list(limits.columns))


def funnel_caption(curve: pd.DataFrame) -> str:
    """The caption's overdispersion figures, as published on the curve's rows (phi, tau2)."""
    phi, tau2 = curve["overdispersion_phi"].iloc[0], curve["overdispersion_tau2"].iloc[0]
    text = (f"overdispersion \u03c6 = {'n/a' if pd.isna(phi) else f'{float(phi):.2f}'}, "
            f"\u03c4\u00b2 = {'n/a' if pd.isna(tau2) else f'{float(tau2):.3g}'}")
    if not pd.isna(tau2) and float(tau2) == 0:
        text += " (no adjustment: the solid and dotted limits coincide)"
    return text


FUNNEL_POINT_COLUMNS = ["geography_name", "denominator", "value_pct", "status", *KEY_COLUMNS]


def funnel_data(points: pd.DataFrame, curve: pd.DataFrame, national_pct: float, value_type: str) -> dict:
    """The datasets of one KPI's funnel plot (shared by the funnel page and the FLS pages)."""
    return {"limits": funnel_limits(curve, value_type), "centre": [{"pct": national_pct}],
            "points": _records(points, FUNNEL_POINT_COLUMNS)}


# -- an FLS against the nation ------------------------------------------------------------------

@functools.cache
def fls_kpi_spec() -> dict:
    """Each KPI: the FLS's value and 95% interval against the comparator (`comparator_pct`: the
    national value, or for KPI 1 the median FLS's share, like with like)."""
    base = alt.Chart().encode(y=alt.Y("kpi_label:N", title=None, sort=KPI_SORT))
    ci = base.mark_rule(color="#555555").encode(x=alt.X("ci_lower_pct:Q", title="%"), x2="ci_upper_pct:Q")
    own = base.mark_point(filled=True, size=90, color="#0072B2", shape="circle").encode(
        x="value_pct:Q", tooltip=["kpi_label:N", alt.Tooltip("value_pct:Q", format=".1f"),
                                  alt.Tooltip("comparator_pct:Q", format=".1f", title="England and Wales"),
                                  alt.Tooltip("target_pct:Q", format=".0f", title="target")])
    national = base.mark_tick(color="#D55E00", thickness=3, size=18).encode(x="comparator_pct:Q")
    target = base.mark_point(shape="cross", color="#333333", size=70, opacity=0.8).encode(x="target_pct:Q")
    return _spec(alt.layer(ci, own, national, target, data=alt.NamedData("values")).properties(
        width=460, height=alt.Step(24)))


def fls_kpi_data(rows: list[dict]) -> dict:
    return {"values": _dicts(rows, ["kpi_label", "kpi_number", "value_pct", "ci_lower_pct", "ci_upper_pct",
                                    "comparator_pct", "target_pct", *KEY_COLUMNS])}
