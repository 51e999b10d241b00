"""Charts of the report site: Vega-Lite specs made with Altair, and the rows each page plots.

Each chart's spec is built (and validated by Altair) once, over named datasets; a page then
inlines the spec with its own rows in the spec's top-level `datasets` (templates/macros.html,
`chart`). This keeps 75+ FLS pages fast and the spec identical from page to page. Nothing here
computes a published number: rows come from the published tier (flsdb.publish.site_data), and
suppressed results have no value to plot.
"""

from __future__ import annotations

import functools
import math

import altair as alt
import pandas as pd

QUINTILE_LABELS = {"1": "1 (most deprived)", "2": "2", "3": "3", "4": "4", "5": "5 (least deprived)",
                   "unknown": "unknown"}


def _json_safe(value):
    """NaN and infinities (which JSON cannot hold) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return _json_safe(value.item())
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _records(frame: pd.DataFrame, columns: list[str]) -> list[dict]:
    return _json_safe(frame[list(dict.fromkeys(columns))].astype(object).to_dict("records"))


class Charts:
    """The charts of one page; each is a dict that templates/macros.html `chart` renders."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.count = 0

    def render(self, spec: dict, datasets: dict[str, list[dict]], title: str, description: str) -> dict:
        self.count += 1
        full = dict(spec)
        full["datasets"] = datasets
        return {"id": f"{self.prefix}-chart-{self.count}", "spec": _json_safe(full), "title": title,
                "description": description}


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


@functools.cache
def trend_spec(width: int = 170) -> dict:
    base = alt.Chart().encode(
        x=alt.X("audit_year:O", title="audit year"),
        y=alt.Y("value_pct:Q", title="%"),
        color=alt.Color("series:N", title=None, scale=alt.Scale(range=["#999999", "#0072B2"])),
        shape=alt.Shape("series:N", legend=None),
        tooltip=["kpi_label:N", "series:N", "audit_year:O", alt.Tooltip("value_pct:Q", format=".1f")],
    )
    layered = alt.layer(base.mark_line(), base.mark_point(filled=True, size=60), data=alt.NamedData("values"))
    return _spec(layered.properties(width=width, height=120).facet(
        facet=alt.Facet("kpi_label:N", title=None, sort=KPI_SORT), columns=4,
    ).resolve_scale(y="independent"))


def trend_data(rows: pd.DataFrame) -> dict:
    return {"values": _records(rows, ["kpi_label", "kpi_number", "series", "value_pct", *KEY_COLUMNS])}


@functools.cache
def comparison_spec() -> dict:
    """Dot with 95% interval per geography, faceted by KPI; dashed line = national value."""
    base = alt.Chart()
    bars = base.mark_rule(color="#555555").encode(
        y=alt.Y("geography_name:N", title=None), x=alt.X("ci_lower_pct:Q", title="%"), x2="ci_upper_pct:Q")
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
    base = alt.Chart().encode(
        x=alt.X("breakdown_value:O", title="deprivation quintile (1 most, 5 least deprived)"),
        y=alt.Y("value_pct:Q", title="%"),
        color=alt.Color("year:N", title="audit year", scale=alt.Scale(range=["#999999", "#0072B2", "#009E73"])),
        shape=alt.Shape("year:N", title="audit year"),
        tooltip=["kpi_label:N", "year:N", "breakdown_value:O", alt.Tooltip("value_pct:Q", format=".1f")],
    )
    return _spec(alt.layer(base.mark_line(), base.mark_point(filled=True, size=60),
                           data=alt.NamedData("values")).properties(width=170, height=130).facet(
        facet=alt.Facet("kpi_label:N", title=None, sort=KPI_SORT), columns=4,
    ).resolve_scale(y="independent"))


def gradient_data(rows: pd.DataFrame) -> dict:
    data = rows.assign(year=rows["audit_year"].astype(str))
    return {"values": _records(data, ["kpi_label", "kpi_number", "year", "value_pct", *KEY_COLUMNS])}


FUNNEL_STATUS = ["within limits", "alert (outside 95%)", "alarm (outside 99.8%)"]


#: How each published curve is drawn (issue 15): the limits adjusted for overdispersion solid,
#: the unadjusted ones dotted; the 99.8% limits thicker than the 95% ones.
FUNNEL_ADJUSTMENT = {"adjusted for overdispersion": ("", [1, 0]), "unadjusted": ("_unadjusted", [2, 3])}
FUNNEL_LEVELS = {"95% limits": ("95", 1.0), "99.8% limits": ("998", 2.2)}


@functools.cache
def funnel_spec(x_title: str, highlight: bool = False) -> dict:
    lines = alt.Chart(alt.NamedData("limits")).mark_line(color="#555555").encode(
        x=alt.X("denominator:Q", title=x_title, scale=alt.Scale(type="log")),
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
        color=alt.Color("status:N", title="FLS result",
                        scale=alt.Scale(domain=FUNNEL_STATUS, range=["#0072B2", "#E69F00", "#D55E00"])),
        shape=alt.Shape("status:N", title="FLS result",
                        scale=alt.Scale(domain=FUNNEL_STATUS, range=["circle", "triangle-up", "diamond"])),
        tooltip=["geography_name:N", "geography_code:N", alt.Tooltip("value_pct:Q", format=".1f"),
                 alt.Tooltip("denominator:Q", format=",.1f"), "status:N"],
    )
    layers = [lines, centre, dots]
    if highlight:
        layers.append(alt.Chart(alt.NamedData("highlight")).mark_point(
            size=260, color="#000000", strokeWidth=2).encode(x="denominator:Q", y="value_pct:Q"))
    return _spec(alt.layer(*layers).properties(width=520, height=320))


def funnel_lines(curve: pd.DataFrame) -> pd.DataFrame:
    """The published curves (one row per denominator, adjusted and unadjusted limits) as the lines
    the chart draws."""
    rows = []
    for adjustment, (column_suffix, _) in FUNNEL_ADJUSTMENT.items():
        for label, (level, _) in FUNNEL_LEVELS.items():
            for bound in ("lower", "upper"):
                rows.append(pd.DataFrame({
                    "denominator": curve["denominator"], "adjustment": adjustment, "limit": label,
                    "line": f"{adjustment} {label} {bound}",
                    "pct": curve[f"{bound}_{level}{column_suffix}_pct"]}))
    return pd.concat(rows, ignore_index=True)


def funnel_caption(curve: pd.DataFrame) -> str:
    """The caption's overdispersion figures, as published on the curve's rows (phi, tau2)."""
    phi, tau2 = curve["overdispersion_phi"].iloc[0], curve["overdispersion_tau2"].iloc[0]
    text = (f"overdispersion \u03c6 = {'n/a' if pd.isna(phi) else f'{float(phi):.2f}'}, "
            f"\u03c4\u00b2 = {'n/a' if pd.isna(tau2) else f'{float(tau2):.3g}'}")
    if not pd.isna(tau2) and float(tau2) == 0:
        text += " (no adjustment: the solid and dotted limits coincide)"
    return text


def funnel_data(points: pd.DataFrame, curve: pd.DataFrame, national_pct: float,
                highlight: str | None = None) -> dict:
    limits = funnel_lines(curve)
    columns = ["geography_name", "denominator", "value_pct", "status", *KEY_COLUMNS]
    data = {"limits": _records(limits, list(limits.columns)), "centre": [{"pct": national_pct}],
            "points": _records(points, columns)}
    if highlight is not None:
        data["highlight"] = _records(points.loc[points["geography_code"] == highlight], columns)
    return data


@functools.cache
def fls_kpi_spec() -> dict:
    base = alt.Chart().encode(y=alt.Y("kpi_label:N", title=None, sort=KPI_SORT))
    ci = base.mark_rule(color="#555555").encode(x=alt.X("ci_lower_pct:Q", title="%"), x2="ci_upper_pct:Q")
    own = base.mark_point(filled=True, size=90, color="#0072B2", shape="circle").encode(
        x="value_pct:Q", tooltip=["kpi_label:N", alt.Tooltip("value_pct:Q", format=".1f"),
                                  alt.Tooltip("national_value_pct:Q", format=".1f")])
    national = base.mark_tick(color="#D55E00", thickness=3, size=18).encode(x="national_value_pct:Q")
    return _spec(alt.layer(ci, own, national, data=alt.NamedData("values")).properties(
        width=460, height=alt.Step(24)))


def fls_kpi_data(rows: pd.DataFrame) -> dict:
    return {"values": _records(rows, ["kpi_label", "kpi_number", "value_pct", "ci_lower_pct", "ci_upper_pct",
                                      "national_value_pct", *KEY_COLUMNS])}
