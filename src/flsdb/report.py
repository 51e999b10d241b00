"""`flsdb report`: a static, self-contained, offline HTML site built from the PUBLISHED marts.

The site is built only for an approved extract (output/approval.json, written by `flsdb publish`)
and reads only the published, read-only DuckDB file (output/published/flsdb_marts.duckdb), never
the warehouse. It contains:

- index.html                 the report at a glance for one audit year (default: the latest);
- national-trends.html       KPI trends across the audit years;
- national-geography.html    country and region comparisons;
- national-deprivation.html  deprivation gradients (quintiles 1-5) for KPIs 4-11;
- national-funnels.html      funnel plots (95% and 99.8% limits) for KPIs 2, 3 and 7;
- fls/index.html, fls/<code>.html  one page per FLS;
- downloads/                 the publication tables (suppressed), CSV and Parquet, with a data
                             dictionary.

Small-number suppression (kpi-spec.md) is applied in one place, `publishable_results`: every
page, chart and download is built from its output, in which a suppressed result has no
numerator, denominator, value, interval, rating or outlier flag. Charts leave suppressed
results out. Charts are Vega-Lite specs made with Altair, inlined in the page, drawn by the
vega/vega-lite/vega-embed JavaScript bundle that vl-convert-python ships (the bundle Altair itself
inlines with `save(..., inline=True)`), copied once into assets/ (or inlined into every page
with `standalone=True`). No CDN, no network.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import json
import math
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import duckdb
import jinja2
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from flsdb import paths
from flsdb.atomic import swap_in_folder
from flsdb.publish_marts import read_manifest, published_db_path
from flsdb.safe_csv import neutralise_frame

Z_95 = 1.959964
Z_998 = 3.090232
FUNNEL_KPIS = (2, 3, 7)
DEPRIVATION_KPIS = tuple(range(4, 12))
QUINTILE_LABELS = {"1": "1 (most deprived)", "2": "2", "3": "3", "4": "4", "5": "5 (least deprived)",
                   "unknown": "unknown"}
RATING_LABELS = {  # text and symbol, so that colour is never the only cue
    "green": ("\u2714 Green", "green"),
    "amber": ("\u25b2 Amber", "amber"),
    "red": ("\u2716 Red", "red"),
    "met": ("\u2714 Met", "green"),
    "not met": ("\u2716 Not met", "red"),
}
# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies).
RATING_COLOURS = {"green": "#009E73", "amber": "#E69F00", "red": "#D55E00", "not rated": "#999999"}
SUPPRESSED = "suppressed"

#: Columns of kpi_results blanked in a suppressed row (everything derived from the small numbers).
SUPPRESSED_COLUMNS = ("numerator", "denominator", "value_pct", "ci_lower_pct", "ci_upper_pct",
                      "rating", "funnel_lower_95_pct", "funnel_upper_95_pct", "funnel_lower_998_pct",
                      "funnel_upper_998_pct", "is_outlier_alert", "is_outlier_alarm",
                      "outlier_direction")


class ReportError(RuntimeError):
    """The report cannot be built (not approved, nothing published, missing dependency)."""


# ---------------------------------------------------------------------------------------------
# Approval and inputs
# ---------------------------------------------------------------------------------------------

def output_dir() -> Path:
    """Where `flsdb publish` and `flsdb report` write: $FLSDB_OUTPUT or output/."""
    value = Path(os.environ.get("FLSDB_OUTPUT", "output"))
    return value if value.is_absolute() else paths.PROJECT_DIR / value


def read_approval(out_dir: Path) -> dict:
    """The quality gate's approval, or ReportError when there is none or it is not approved."""
    approval_path = Path(out_dir) / "approval.json"
    if not approval_path.exists():
        raise ReportError(f"no approval at {approval_path}: run `flsdb publish` (the quality gate) first")
    try:
        approval = json.loads(approval_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{approval_path} is not valid JSON: {exc}") from exc
    if approval.get("status") != "approved":
        raise ReportError(f"the extract is not approved (status {approval.get('status')!r} in {approval_path})")
    return approval


def suppression_limits() -> tuple[float, float]:
    """(minimum denominator, maximum small count): the dbt vars of dbt_project.yml."""
    try:
        project = yaml.safe_load((paths.PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
        project_vars = project.get("vars", {})
        return (float(project_vars["suppression_min_denominator"]),
                float(project_vars["suppression_max_small_count"]))
    except (OSError, KeyError, TypeError):
        return 10.0, 4.0


def is_small_number(numerator, denominator, limits: tuple[float, float]) -> bool:
    """kpi-spec.md's rule, for counts that kpi_results does not flag (field completeness)."""
    min_denominator, max_small = limits
    if denominator is None or pd.isna(denominator) or denominator < min_denominator:
        return True
    if numerator is None or pd.isna(numerator):
        return False
    return 1 <= numerator <= max_small or 1 <= denominator - numerator <= max_small


def vega_javascript() -> str:
    """The vega + vega-lite + vega-embed bundle matching Altair's Vega-Lite version."""
    try:
        import vl_convert
    except ImportError as exc:  # pragma: no cover - depends on the installed pins
        raise ReportError(
            "the report needs vl-convert-python (it ships the Vega JavaScript bundle that is "
            "inlined for offline use); install the project's pinned requirements") from exc
    from altair.utils._importers import vl_version_for_vl_convert

    return vl_convert.javascript_bundle(vl_version=vl_version_for_vl_convert())


# ---------------------------------------------------------------------------------------------
# Data: read the published marts, apply suppression once
# ---------------------------------------------------------------------------------------------

@dataclass
class ReportData:
    results: pd.DataFrame          # publishable kpi_results (suppressed cells blank)
    completeness: pd.DataFrame     # publishable kpi_data_completeness
    records: dict[int, int]        # records submitted per audit year
    fls: pd.DataFrame              # dim_fls
    kpis: pd.DataFrame             # kpi_definitions
    years: list[int]
    is_synthetic: bool
    extract_date: str | None
    built_at: str | None
    limits: tuple[float, float] = field(default=(10.0, 4.0))


def publishable_results(results: pd.DataFrame) -> pd.DataFrame:
    """kpi_results as it may be published: a suppressed result keeps its keys and the
    `is_suppressed` flag, and loses every number derived from its counts. The national value
    shown beside a result is blanked too when the national result itself is suppressed."""
    out = results.copy()
    suppressed = out["is_suppressed"].fillna(True).astype(bool)
    for column in SUPPRESSED_COLUMNS:
        if column in out:
            out[column] = out[column].astype(object).where(~suppressed, None)
    national = out.loc[out["geography_level"] == "national",
                       ["audit_year", "kpi_number", "breakdown", "breakdown_value", "is_suppressed"]]
    national = national.rename(columns={"is_suppressed": "_national_suppressed"})
    out = out.merge(national, how="left", on=["audit_year", "kpi_number", "breakdown", "breakdown_value"])
    out["national_value_pct"] = out["national_value_pct"].astype(object).where(
        ~out["_national_suppressed"].fillna(True).astype(bool), None)
    out = out.drop(columns="_national_suppressed")
    return out


def publishable_completeness(completeness: pd.DataFrame, limits: tuple[float, float]) -> pd.DataFrame:
    out = completeness.copy()
    out["is_suppressed"] = [is_small_number(n, d, limits)
                            for n, d in zip(out["records_recorded"], out["records_measured"])]
    for column in ("records_measured", "records_recorded", "completeness_pct",
                   "is_at_least_80_pct_complete"):
        out[column] = out[column].astype(object).where(~out["is_suppressed"], None)
    return out


def load_report_data(db_path: Path) -> ReportData:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        results = con.execute("select * from marts.kpi_results").df()
        completeness = con.execute(
            "select * from marts.kpi_data_completeness order by fls_code, audit_year, field_order").df()
        records = dict(con.execute(
            "select audit_year, count(*) from marts.fct_episodes group by 1 order by 1").fetchall())
        fls = con.execute("select * from marts.dim_fls order by fls_code").df()
        kpis = con.execute("select * from reference.kpi_definitions order by kpi_number").df()
        info = con.execute("select built_at, extract_date, is_synthetic_data "
                           "from publication.publication_info").fetchone()
    finally:
        con.close()
    limits = suppression_limits()
    years = sorted(int(y) for y in results["audit_year"].unique())
    is_synthetic = bool(results["is_synthetic_data"].any()) or bool(info[2])
    return ReportData(
        results=publishable_results(results),
        completeness=publishable_completeness(completeness, limits),
        records={int(k): int(v) for k, v in records.items()},
        fls=fls, kpis=kpis, years=years, is_synthetic=is_synthetic,
        extract_date=str(info[1]) if info[1] is not None else None,
        built_at=str(info[0]) if info[0] is not None else None, limits=limits,
    )


# ---------------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------------

def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def fmt_pct(value, suppressed: bool = False) -> str:
    if suppressed:
        return SUPPRESSED
    if _missing(value):
        return "\u2013"
    return f"{float(value):.1f}%"


def fmt_count(value, suppressed: bool = False, decimals: int = 0) -> str:
    if suppressed:
        return SUPPRESSED
    if _missing(value):
        return "\u2013"
    return f"{float(value):,.{decimals}f}"


def fmt_ci(lower, upper, suppressed: bool = False) -> str:
    if suppressed:
        return SUPPRESSED
    if _missing(lower) or _missing(upper):
        return "\u2013"
    return f"{float(lower):.1f}\u2013{float(upper):.1f}%"


def direction(current, previous) -> tuple[str, str]:
    """(symbol, words) for the change from previous to current, at one decimal place."""
    if _missing(current) or _missing(previous):
        return "", "no comparison"
    diff = round(float(current), 1) - round(float(previous), 1)
    if diff > 0:
        return "\u25b2", "up"
    if diff < 0:
        return "\u25bc", "down"
    return "\u25ac", "no change"


def rating_html(rating, suppressed: bool = False) -> str:
    if suppressed:
        return f'<span class="rating rating-none">{SUPPRESSED}</span>'
    if _missing(rating):
        return '<span class="rating rating-none">not rated</span>'
    label, css = RATING_LABELS.get(rating, (str(rating), "none"))
    return f'<span class="rating rating-{css}">{html.escape(label)}</span>'


def outlier_text(row) -> str:
    if row.get("is_suppressed"):
        return SUPPRESSED
    if row.get("geography_level") != "fls" or _missing(row.get("funnel_lower_95_pct")):
        return "\u2013"
    if row.get("is_outlier_alarm"):
        return f"\u26a0 alarm ({row.get('outlier_direction')}, outside 99.8% limits)"
    if row.get("is_outlier_alert"):
        return f"\u26a0 alert ({row.get('outlier_direction')}, outside 95% limits)"
    return "within limits"


def kpi_label(number: int, short: str) -> str:
    return f"KPI {number}: {short}"


# ---------------------------------------------------------------------------------------------
# Charts (Altair -> Vega-Lite spec, embedded in the page)
#
# Each chart's spec is built (and validated by Altair) once, over named datasets; a page then
# inlines the spec with its own rows in the spec's top-level `datasets`. This keeps 75+ FLS
# pages fast and the spec identical from page to page.
# ---------------------------------------------------------------------------------------------

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
    """Renders the charts of one page; each becomes a <figure> with the spec and data inlined."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.count = 0

    def render(self, spec: dict, datasets: dict[str, list[dict]], title: str, description: str) -> str:
        self.count += 1
        chart_id = f"{self.prefix}-chart-{self.count}"
        full = dict(spec)
        full["datasets"] = datasets
        spec_json = json.dumps(_json_safe(full), allow_nan=False, default=str).replace("</", "<\\/")
        return (
            f'<figure class="chart">\n'
            f'<figcaption>{html.escape(title)}</figcaption>\n'
            f'<div class="vl-chart" id="{chart_id}" role="img" aria-label="{html.escape(description)}"></div>\n'
            f'<script type="application/json" class="vl-spec" data-target="{chart_id}">{spec_json}</script>\n'
            f'<p class="chart-note">{html.escape(description)} The table beside this chart has the same numbers.</p>\n'
            f'</figure>'
        )


def _plotted(frame: pd.DataFrame) -> pd.DataFrame:
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


def funnel_limits(national_pct: float, value_type: str, low: float, high: float, steps: int = 120) -> pd.DataFrame:
    """Funnel limits on a grid of denominators, by the same formulas as kpi_results."""
    rows = []
    p0 = national_pct / 100.0
    low = max(low, 1e-6)
    for i in range(steps + 1):
        n = low * (high / low) ** (i / steps)
        for label, z in (("95% limits", Z_95), ("99.8% limits", Z_998)):
            if value_type == "ratio_to_expected":
                spread = math.sqrt(p0 / n)
                lower, upper = max(0.0, p0 - z * spread), p0 + z * spread
            else:
                spread = math.sqrt(p0 * (1 - p0) / n)
                lower, upper = max(0.0, p0 - z * spread), min(1.0, p0 + z * spread)
            for bound, value in (("lower", lower), ("upper", upper)):
                rows.append({"denominator": n, "limit": label, "line": f"{label} {bound}", "pct": 100 * value})
    return pd.DataFrame(rows)


FUNNEL_STATUS = ["within limits", "alert (outside 95%)", "alarm (outside 99.8%)"]


@functools.cache
def funnel_spec(x_title: str, highlight: bool = False) -> dict:
    lines = alt.Chart(alt.NamedData("limits")).mark_line(color="#555555").encode(
        x=alt.X("denominator:Q", title=x_title, scale=alt.Scale(type="log")),
        y=alt.Y("pct:Q", title="%"),
        detail="line:N",
        strokeDash=alt.StrokeDash("limit:N", title="control limits",
                                  scale=alt.Scale(domain=["95% limits", "99.8% limits"],
                                                  range=[[6, 3], [2, 2]])),
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


def funnel_data(points: pd.DataFrame, national_pct: float, value_type: str,
                highlight: str | None = None) -> dict:
    low, high = float(points["denominator"].min()), float(points["denominator"].max())
    limits = funnel_limits(national_pct, value_type, low * 0.9, high * 1.1)
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


# ---------------------------------------------------------------------------------------------
# Page templates
# ---------------------------------------------------------------------------------------------

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:0;color:#1b1b1b;line-height:1.45}
header,main,footer{max-width:1180px;margin:0 auto;padding:0 1rem}
.synthetic-banner{background:#5c2d91;color:#fff;text-align:center;font-weight:700;padding:.6rem;letter-spacing:.05em}
nav ul{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.4rem 1.2rem}
nav a{color:#005ea5}
table{border-collapse:collapse;margin:.6rem 0 1.4rem;font-size:.92rem}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border:1px solid #b1b4b6;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f3f2f1}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.rating{padding:.05rem .4rem;border-radius:3px;font-weight:600;white-space:nowrap}
.rating-green{background:#cce5d6;color:#00452a}
.rating-amber{background:#fde7c0;color:#5a3a00}
.rating-red{background:#f6d0bf;color:#6b1d00}
.rating-none{background:#eeeeee;color:#333333}
.up,.down,.same{font-weight:700}
.headline{display:flex;flex-wrap:wrap;gap:1rem}
.headline div{border:1px solid #b1b4b6;padding:.6rem 1rem;min-width:11rem}
.headline strong{font-size:1.6rem;display:block}
figure.chart{margin:1rem 0;overflow-x:auto}
figure.chart figcaption{font-weight:600}
.chart-note,.note{color:#505a5f;font-size:.88rem}
footer{border-top:1px solid #b1b4b6;margin-top:2rem;padding-top:.5rem;color:#505a5f;font-size:.85rem}
#console-errors,#console-warnings{display:none}
"""

PAGE = jinja2.Environment(autoescape=False).from_string("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}{% if synthetic %} (SYNTHETIC DATA){% endif %} - FLS-DB</title>
<style>{{ css }}</style>
<script>
window.__chartErrors = []; window.__chartWarnings = [];
window.addEventListener("error", function (e) { window.__chartErrors.push(String(e.message)); });
(function () {
  var err = console.error, warn = console.warn;
  console.error = function () { window.__chartErrors.push(Array.prototype.map.call(arguments, String).join(" ")); err.apply(console, arguments); };
  console.warn = function () { window.__chartWarnings.push(Array.prototype.map.call(arguments, String).join(" ")); warn.apply(console, arguments); };
})();
</script>
{{ js_tag }}
</head>
<body data-page="{{ page_id }}">
{% if synthetic %}<div class="synthetic-banner" role="note">SYNTHETIC DATA &mdash; made-up records and invented services, for demonstration only. No result here describes a real NHS organisation or patient.</div>{% endif %}
<header>
<p><strong>FLS-DB</strong> &middot; Fracture Liaison Service Database &middot; extract {{ extract_date }}</p>
<nav aria-label="site"><ul>
<li><a href="{{ root }}index.html">Report at a glance</a></li>
<li><a href="{{ root }}national-trends.html">KPI trends</a></li>
<li><a href="{{ root }}national-geography.html">Countries and regions</a></li>
<li><a href="{{ root }}national-deprivation.html">Deprivation</a></li>
<li><a href="{{ root }}national-funnels.html">Funnel plots</a></li>
<li><a href="{{ root }}fls/index.html">FLS results</a></li>
<li><a href="{{ root }}downloads/index.html">Downloads</a></li>
</ul></nav>
<h1>{{ title }}</h1>
</header>
<main>
{{ body }}
</main>
<footer>
<p>Small numbers are suppressed: a result is shown as &ldquo;suppressed&rdquo;, and left out of every chart,
when its denominator is below {{ min_den }}, or its numerator or denominator minus numerator is between 1 and {{ max_small }}.
Ratings: &#10004; green / met, &#9650; amber, &#10006; red / not met (green at 80% or more, amber 50&ndash;79%, red below 50%;
KPI 7 green at 50% or more). KPI 2 and 3 compare identified patients with the expected number of fragility fractures in the catchment
and can exceed 100%. National deprivation quintiles pool England (IMD 2019) and Wales (WIMD 2019), each relative to its own country.</p>
<p>Built {{ built_at }} from the published marts{% if synthetic %} &mdash; SYNTHETIC DATA{% endif %}.</p>
</footer>
<pre id="console-errors"></pre><pre id="console-warnings"></pre>
<script>
(function () {
  var specs = document.querySelectorAll("script.vl-spec");
  var pending = [];
  specs.forEach(function (node) {
    var target = document.getElementById(node.dataset.target);
    var spec = JSON.parse(node.textContent);
    pending.push(vegaEmbed(target, spec, {renderer: "svg", actions: false})
      .then(function () { target.dataset.rendered = "true"; })
      .catch(function (error) { target.dataset.error = String(error); console.error(error); }));
  });
  Promise.all(pending).then(function () {
    document.body.dataset.chartsRendered = String(document.querySelectorAll('.vl-chart[data-rendered="true"]').length);
    document.body.dataset.chartsTotal = String(specs.length);
    document.getElementById("console-errors").textContent = JSON.stringify(window.__chartErrors);
    document.getElementById("console-warnings").textContent = JSON.stringify(window.__chartWarnings);
  });
})();
</script>
</body>
</html>
""")


def _table(caption: str, headers: list[str], rows: list[list[str]], num_cols: set[int] | None = None,
           row_attrs: list[str] | None = None) -> str:
    num_cols = num_cols or set()
    head = "".join(f'<th scope="col">{html.escape(h)}</th>' for h in headers)
    body = []
    for index, row in enumerate(rows):
        cells = []
        for col, cell in enumerate(row):
            tag = "th scope=\"row\"" if col == 0 else "td"
            css = ' class="num"' if col in num_cols else ""
            cells.append(f"<{tag}{css}>{cell}</{tag.split()[0]}>")
        attrs = f" {row_attrs[index]}" if row_attrs else ""
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    return (f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def _esc(value) -> str:
    return html.escape("" if _missing(value) else str(value))


# ---------------------------------------------------------------------------------------------
# The site
# ---------------------------------------------------------------------------------------------

class SiteBuilder:
    def __init__(self, data: ReportData, site_dir: Path, year: int, standalone: bool = False):
        self.data = data
        self.site_dir = site_dir
        self.year = year
        self.previous_year = max((y for y in data.years if y < year), default=None)
        self.standalone = standalone
        self.js = vega_javascript()
        kpis = data.kpis.set_index("kpi_number")
        self.kpi_short = {int(k): str(v) for k, v in kpis["kpi_short_name"].items()}
        self.kpi_name = {int(k): str(v) for k, v in kpis["kpi_name"].items()}
        self.value_type = {int(k): str(v) for k, v in kpis["value_type"].items()}
        results = data.results.copy()
        results["kpi_label"] = [kpi_label(int(k), self.kpi_short[int(k)]) for k in results["kpi_number"]]
        self.results = results
        records = results.to_dict("records")
        self.index = {(r["audit_year"], r["geography_level"], r["geography_code"], r["kpi_number"],
                       r["breakdown"], r["breakdown_value"]): r for r in records}
        national_codes = results.loc[results["geography_level"] == "national", "geography_code"].unique()
        self.national_code = national_codes[0] if len(national_codes) else None
        self.code_by_name = {(r["geography_level"], r["geography_name"]): r["geography_code"] for r in records}
        fls_rows = results.loc[results["geography_level"] == "fls"]
        self.by_fls = {code: group for code, group in fls_rows.groupby("geography_code")}
        self.pages: list[Path] = []

    # -- plumbing ----------------------------------------------------------------------------
    def write_page(self, relative: str, title: str, body: str, page_id: str) -> Path:
        depth = relative.count("/")
        root = "../" * depth
        if self.standalone:
            js_tag = "<script>\n" + self.js.replace("</script", "<\\/script") + "\n</script>"
        else:
            js_tag = f'<script src="{root}assets/vega-bundle.js"></script>'
        text = PAGE.render(
            title=html.escape(title), synthetic=self.data.is_synthetic, css=CSS, js_tag=js_tag,
            page_id=page_id, root=root, body=body, extract_date=_esc(self.data.extract_date),
            built_at=_esc(self.data.built_at), min_den=f"{self.data.limits[0]:g}",
            max_small=f"{self.data.limits[1]:g}",
        )
        path = self.site_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.pages.append(path)
        return path

    def rows(self, **filters) -> pd.DataFrame:
        frame = self.results
        if "geography_level" in filters and filters["geography_level"] == "fls" and "geography_code" in filters:
            frame = self.by_fls.get(filters["geography_code"], frame.iloc[0:0])
        mask = pd.Series(True, index=frame.index)
        for column, value in filters.items():
            if isinstance(value, (list, tuple, set)):
                mask &= frame[column].isin(list(value))
            else:
                mask &= frame[column] == value
        return frame.loc[mask]

    def one(self, audit_year, geography_level, kpi_number, breakdown, geography_code=None,
            breakdown_value="all", geography_name=None) -> dict | None:
        """One result, by its key (geography_code may be left out for national)."""
        if geography_name is not None:
            geography_code = self.code_by_name.get((geography_level, geography_name))
        if geography_level == "national" and geography_code is None:
            geography_code = self.national_code
        return self.index.get((audit_year, geography_level, geography_code, kpi_number, breakdown,
                               breakdown_value))

    # -- report at a glance -----------------------------------------------------------------
    def green_shares(self, year: int) -> pd.DataFrame:
        fls = self.rows(audit_year=year, geography_level="fls", breakdown="all")
        out = []
        for kpi in range(1, 12):
            rows = fls.loc[(fls["kpi_number"] == kpi) & fls["rating"].notna()]
            rated = len(rows)
            green = int(rows["rating"].isin(["green", "met"]).sum())
            out.append({"kpi_number": kpi, "kpi_label": kpi_label(kpi, self.kpi_short[kpi]),
                        "rated": rated, "green": green,
                        "green_share_pct": (100.0 * green / rated) if rated else None})
        return pd.DataFrame(out)

    def glance(self) -> None:
        y, p = self.year, self.previous_year
        charts = Charts("glance")
        parts = []
        records_now = self.data.records.get(y)
        records_prev = self.data.records.get(p) if p else None
        parts.append('<section aria-labelledby="records"><h2 id="records">Records submitted</h2><div class="headline">')
        parts.append(f'<div id="records-{y}">{y}<strong>{fmt_count(records_now)}</strong>records submitted</div>')
        if p:
            parts.append(f'<div id="records-{p}">{p}<strong>{fmt_count(records_prev)}</strong>records submitted</div>')
        parts.append("</div></section>")

        green = self.green_shares(y).set_index("kpi_number")
        rows, attrs = [], []
        for kpi in range(1, 12):
            cur = self.one(audit_year=y, geography_level="national", kpi_number=kpi, breakdown="all")
            prev = self.one(audit_year=p, geography_level="national", kpi_number=kpi, breakdown="all") if p else None
            cur_v = cur["value_pct"] if cur else None
            prev_v = prev["value_pct"] if prev else None
            symbol, words = direction(cur_v, prev_v)
            css = {"up": "up", "down": "down"}.get(words, "same")
            g = green.loc[kpi]
            share = ("not rated" if not g["rated"] else
                     f"{g['green_share_pct']:.0f}% ({int(g['green'])} of {int(g['rated'])})")
            target = cur.get("target_pct") if cur else None
            rows.append([
                f"KPI {kpi}", html.escape(self.kpi_name[kpi]),
                fmt_pct(cur_v, bool(cur and cur["is_suppressed"])),
                f'<span class="{css}" aria-hidden="true">{symbol}</span> {words}',
                fmt_pct(prev_v, bool(prev and prev["is_suppressed"])),
                "\u2013" if _missing(target) else f"{float(target):.0f}%",
                share,
            ])
            attrs.append(f'data-kpi="{kpi}" data-direction="{words}"')
        parts.append('<section aria-labelledby="kpis"><h2 id="kpis">Key performance indicators, England and Wales</h2>')
        parts.append(_table(
            f"National KPI values, {y} against {p}" if p else f"National KPI values, {y}",
            ["KPI", "name", f"{y}", "change", f"{p}" if p else "previous year", "target",
             "FLSs rated green (KPI 1: met)"],
            rows, num_cols={2, 4, 5}, row_attrs=attrs))
        parts.append('<p class="note">&#9650; up / &#9660; down compares the values at one decimal place. '
                     'KPI 1 nationally is the share of FLSs that meet it. The share of FLSs rated green '
                     'counts FLSs with a published (not suppressed) rating.</p>')
        national = self.rows(audit_year=[y, p] if p else [y], geography_level="national", breakdown="all")
        parts.append(charts.render(glance_spec(), glance_data(_plotted(national)), f"National KPI values, {y} and {p}",
                                   f"Dot plot of each KPI's national value in {y} (diamonds) and {p} (circles)."))
        parts.append(charts.render(green_share_spec(), {"values": _records(green.reset_index().dropna(subset=["green_share_pct"]), ["kpi_label", "kpi_number", "green_share_pct", "green", "rated"])},
                                   f"Share of FLSs rated green, {y}",
                                   f"Bar chart of the percentage of FLSs rated green (or meeting KPI 1) on each KPI in {y}."))
        parts.append("</section>")

        dep = self.rows(audit_year=y, geography_level="national", breakdown="deprivation_quintile",
                        kpi_number=list(DEPRIVATION_KPIS), breakdown_value=["1", "5"])
        rows, attrs = [], []
        for kpi in DEPRIVATION_KPIS:
            most = self.one(audit_year=y, geography_level="national", kpi_number=kpi,
                            breakdown="deprivation_quintile", breakdown_value="1")
            least = self.one(audit_year=y, geography_level="national", kpi_number=kpi,
                             breakdown="deprivation_quintile", breakdown_value="5")
            gap = None
            if most and least and not most["is_suppressed"] and not least["is_suppressed"]:
                gap = float(least["value_pct"]) - float(most["value_pct"])
            rows.append([f"KPI {kpi}", html.escape(self.kpi_name[kpi]),
                         fmt_pct(most and most["value_pct"], bool(most and most["is_suppressed"])),
                         fmt_pct(least and least["value_pct"], bool(least and least["is_suppressed"])),
                         "\u2013" if gap is None else f"{gap:+.1f} points"])
            attrs.append(f'data-kpi="{kpi}"')
        parts.append('<section aria-labelledby="deprivation"><h2 id="deprivation">Inequalities: most against least deprived</h2>')
        kpi7 = self.one(audit_year=y, geography_level="national", kpi_number=7,
                        breakdown="deprivation_quintile", breakdown_value="1")
        kpi7_least = self.one(audit_year=y, geography_level="national", kpi_number=7,
                              breakdown="deprivation_quintile", breakdown_value="5")
        if kpi7 and kpi7_least:
            parts.append(
                f'<p id="kpi7-deprivation">Bone therapy recommended (KPI 7), {y}: most deprived '
                f'<strong>{fmt_pct(kpi7["value_pct"], kpi7["is_suppressed"])}</strong>, least deprived '
                f'<strong>{fmt_pct(kpi7_least["value_pct"], kpi7_least["is_suppressed"])}</strong>.</p>')
        parts.append(_table(f"KPIs 4-11 by deprivation quintile, {y}: most (1) and least (5) deprived",
                            ["KPI", "name", "most deprived (1)", "least deprived (5)", "least minus most"],
                            rows, num_cols={2, 3, 4}, row_attrs=attrs))
        parts.append('<p class="note">Quintiles pool England (IMD 2019) and Wales (WIMD 2019), each relative '
                     'to its own country. All five quintiles: <a href="national-deprivation.html">deprivation gradients</a>.</p>')
        parts.append(charts.render(deprivation_pair_spec(), deprivation_pair_data(_plotted(dep)),
                                   f"Most against least deprived, {y}",
                                   f"Dot plot of KPIs 4 to 11 in {y}: most deprived quintile (squares) and least deprived (circles)."))
        parts.append("</section>")
        self.write_page("index.html", f"Report at a glance, {y}", "\n".join(parts), "glance")

    # -- national pages ---------------------------------------------------------------------
    def trends(self) -> None:
        charts = Charts("trends")
        national = self.rows(geography_level="national", breakdown="all").copy()
        national["series"] = "England and Wales"
        body = [charts.render(trend_spec(), trend_data(_plotted(national)), "National KPI values by audit year",
                              "Small multiples, one per KPI: the national value in each audit year.")]
        rows = []
        for kpi in range(1, 12):
            row = [f"KPI {kpi}", html.escape(self.kpi_name[kpi])]
            for year in self.data.years:
                r = self.one(audit_year=year, geography_level="national", kpi_number=kpi, breakdown="all")
                row.append(fmt_pct(r and r["value_pct"], bool(r and r["is_suppressed"])))
            rows.append(row)
        body.append(_table("National KPI values by audit year", ["KPI", "name", *map(str, self.data.years)],
                           rows, num_cols=set(range(2, 2 + len(self.data.years)))))
        self.write_page("national-trends.html", "KPI trends across audit years", "\n".join(body), "trends")

    def geography(self) -> None:
        charts = Charts("geography")
        y = self.year
        body = []
        for level, title in (("country", "Countries"), ("region", "Regions")):
            frame = self.rows(audit_year=y, geography_level=level, breakdown="all")
            body.append(f"<h2>{title}, {y}</h2>")
            body.append(charts.render(
                comparison_spec(), comparison_data(_plotted(frame)), f"{title}: KPI values with 95% confidence intervals, {y}",
                f"One panel per KPI: each {level}'s value (dot) with its 95% confidence interval (line); "
                "the dashed line is the national value."))
            names = sorted(frame["geography_name"].dropna().unique())
            rows = []
            for kpi in range(1, 12):
                row = [f"KPI {kpi}: {html.escape(self.kpi_short[kpi])}"]
                for name in names:
                    r = self.one(audit_year=y, geography_level=level, kpi_number=kpi, breakdown="all",
                                 geography_name=name)
                    if r is None:
                        row.append("\u2013")
                    else:
                        row.append(f"{fmt_pct(r['value_pct'], r['is_suppressed'])}<br><small>"
                                   f"{fmt_ci(r['ci_lower_pct'], r['ci_upper_pct'], r['is_suppressed'])}</small>")
                national = self.one(audit_year=y, geography_level="national", kpi_number=kpi, breakdown="all")
                row.append(fmt_pct(national and national["value_pct"]))
                rows.append(row)
            body.append(_table(f"{title}: KPI values (95% confidence interval), {y}",
                               ["KPI", *map(html.escape, names), "England and Wales"], rows,
                               num_cols=set(range(1, len(names) + 2))))
        self.write_page("national-geography.html", f"Country and region comparisons, {y}", "\n".join(body),
                        "geography")

    def deprivation(self) -> None:
        charts = Charts("deprivation")
        frame = self.rows(geography_level="national", breakdown="deprivation_quintile",
                          kpi_number=list(DEPRIVATION_KPIS))
        gradient = _plotted(frame.loc[frame["breakdown_value"] != "unknown"])
        body = ['<p class="note">National quintiles pool England (IMD 2019) and Wales (WIMD 2019), each '
                'relative to its own country. Quintile 1 is the most deprived fifth of areas.</p>',
                charts.render(gradient_spec(), gradient_data(gradient), "KPIs 4-11 by deprivation quintile",
                              "Small multiples, one per KPI: the national value in each deprivation quintile, "
                              "one line per audit year.")]
        quintiles = ["1", "2", "3", "4", "5", "unknown"]
        for year in self.data.years:
            rows = []
            for kpi in DEPRIVATION_KPIS:
                row = [f"KPI {kpi}: {html.escape(self.kpi_short[kpi])}"]
                for q in quintiles:
                    r = self.one(audit_year=year, geography_level="national", kpi_number=kpi,
                                 breakdown="deprivation_quintile", breakdown_value=q)
                    row.append(fmt_pct(r and r["value_pct"], bool(r and r["is_suppressed"])))
                rows.append(row)
            body.append(_table(f"KPIs 4-11 by deprivation quintile, England and Wales, {year}",
                               ["KPI", *[QUINTILE_LABELS[q] for q in quintiles]], rows,
                               num_cols=set(range(1, 7))))
        self.write_page("national-deprivation.html", "Deprivation gradients", "\n".join(body), "deprivation")

    def funnel_points(self, kpi: int, year: int) -> tuple[pd.DataFrame, float | None]:
        frame = _plotted(self.rows(audit_year=year, geography_level="fls", kpi_number=kpi, breakdown="all")).copy()
        frame["status"] = [
            "alarm (outside 99.8%)" if alarm else "alert (outside 95%)" if alert else "within limits"
            for alert, alarm in zip(frame["is_outlier_alert"], frame["is_outlier_alarm"])]
        national = self.one(audit_year=year, geography_level="national", kpi_number=kpi, breakdown="all")
        return frame, (None if not national or _missing(national["value_pct"]) else float(national["value_pct"]))

    def funnel_x_title(self, kpi: int) -> str:
        return ("expected fragility fractures in the catchment (log scale)"
                if self.value_type[kpi] == "ratio_to_expected" else "patients in the denominator (log scale)")

    def funnels(self) -> None:
        charts = Charts("funnels")
        y = self.year
        body = ['<p class="note">Each dot is an FLS. An FLS outside the 95% limits is an alert; outside the '
                '99.8% limits, an alarm. Suppressed results are not drawn.</p>']
        for kpi in FUNNEL_KPIS:
            points, national = self.funnel_points(kpi, y)
            body.append(f"<h2>KPI {kpi}: {html.escape(self.kpi_name[kpi])}, {y}</h2>")
            if national is None or points.empty:
                body.append("<p>No results to plot.</p>")
                continue
            body.append(charts.render(
                funnel_spec(self.funnel_x_title(kpi)), funnel_data(points, national, self.value_type[kpi]),
                f"Funnel plot, KPI {kpi}, {y}",
                f"Funnel plot of FLS results for KPI {kpi} against their denominator, around the national "
                f"value {national:.1f}%, with 95% (dashed) and 99.8% (dotted) control limits."))
            outliers = points.loc[points["is_outlier_alert"].astype(bool)].sort_values("value_pct")
            rows = [[_esc(r.geography_name), _esc(r.geography_code), fmt_pct(r.value_pct),
                     fmt_count(r.denominator, decimals=1 if self.value_type[kpi] == "ratio_to_expected" else 0),
                     html.escape(outlier_text(r._asdict()))]
                    for r in outliers.itertuples()]
            body.append(_table(f"KPI {kpi}, {y}: FLSs outside the 95% limits", ["FLS", "code", "value",
                               "denominator", "outlier"], rows, num_cols={2, 3}) if rows else
                        "<p>No FLS lies outside the 95% limits.</p>")
        self.write_page("national-funnels.html", f"Funnel plots, {y}", "\n".join(body), "funnels")

    # -- FLS pages --------------------------------------------------------------------------
    def fls_codes(self) -> list[str]:
        return sorted(self.rows(geography_level="fls")["geography_code"].unique())

    def fls_index(self) -> None:
        fls = self.data.fls.set_index("fls_code")
        rows = []
        for code in self.fls_codes():
            info = fls.loc[code] if code in fls.index else None
            year_rows = self.rows(audit_year=self.year, geography_level="fls", geography_code=code, breakdown="all")
            counts = year_rows["rating"].value_counts()
            summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("green", "amber", "red")) if len(year_rows) else "no results"
            rows.append([f'<a href="{_esc(code)}.html">{_esc(info["fls_name"] if info is not None else code)}</a>',
                         _esc(code), _esc(info["region_name"] if info is not None else ""),
                         _esc(info["country_name"] if info is not None else ""), summary])
        body = _table(f"FLSs and their ratings, {self.year}", ["FLS", "code", "region", "country",
                      f"ratings {self.year} (KPIs 2-11)"], rows)
        self.write_page("fls/index.html", "FLS results", body, "fls-index")

    def fls_page(self, code: str) -> None:
        charts = Charts(f"fls-{code}")
        y = self.year
        fls = self.data.fls.set_index("fls_code")
        info = fls.loc[code] if code in fls.index else None
        name = str(info["fls_name"]) if info is not None else code
        parts = []
        if info is not None:
            parts.append(f'<p>{_esc(code)} &middot; {_esc(info["region_name"])} &middot; {_esc(info["country_name"])}'
                         f'{" &middot; invented service (SYNTHETIC)" if bool(info.get("is_synthetic")) else ""}</p>')
        mine = self.rows(audit_year=y, geography_level="fls", geography_code=code, breakdown="all")
        rows, attrs = [], []
        for kpi in range(1, 12):
            r = self.one(audit_year=y, geography_level="fls", geography_code=code, kpi_number=kpi, breakdown="all")
            if r is None:
                rows.append([f"KPI {kpi}", html.escape(self.kpi_name[kpi]), "no result", "", "", "", "", ""])
                attrs.append(f'data-kpi="{kpi}" data-suppressed="false"')
                continue
            s = bool(r["is_suppressed"])
            decimals = 1 if self.value_type[kpi] == "ratio_to_expected" else 0
            counts = (SUPPRESSED if s else
                      f"{fmt_count(r['numerator'])} / {fmt_count(r['denominator'], decimals=decimals)}")
            rows.append([f"KPI {kpi}", html.escape(self.kpi_name[kpi]), fmt_pct(r["value_pct"], s),
                         fmt_ci(r["ci_lower_pct"], r["ci_upper_pct"], s), counts,
                         fmt_pct(r["national_value_pct"]), rating_html(r["rating"], s),
                         html.escape(outlier_text(r))])
            attrs.append(f'data-kpi="{kpi}" data-suppressed="{str(s).lower()}"')
        parts.append(f"<h2>Key performance indicators, {y}</h2>")
        parts.append(_table(f"{name}: KPIs, {y}, beside the national value",
                            ["KPI", "name", "value", "95% CI", "numerator / denominator", "national",
                             "rating", "outlier flag"], rows, num_cols={2, 3, 4, 5}, row_attrs=attrs))
        parts.append('<p class="note">KPI 1 at FLS level counts key fields at least 80% complete (of 17). '
                     'KPI 2 and 3 denominators are expected fractures.</p>')
        plotted = _plotted(mine)
        if len(plotted):
            parts.append(charts.render(fls_kpi_spec(), fls_kpi_data(plotted), f"{name}: KPI values and national values, {y}",
                                       "Dot plot: the FLS's value (blue dot) with its 95% confidence interval "
                                       "(grey line) and the national value (orange tick) for each KPI."))
        # trend
        trend = self.rows(geography_level="fls", geography_code=code, breakdown="all").copy()
        trend["series"] = "this FLS"
        national = self.rows(geography_level="national", breakdown="all").copy()
        national["series"] = "England and Wales"
        both = pd.concat([_plotted(trend), _plotted(national)])
        parts.append("<h2>Trend</h2>")
        if len(both):
            parts.append(charts.render(trend_spec(150), trend_data(both), f"{name}: KPI values by audit year",
                                       "Small multiples, one per KPI: this FLS's value (blue) and the national "
                                       "value (grey) in each audit year."))
        rows = []
        for kpi in range(1, 12):
            row = [f"KPI {kpi}: {html.escape(self.kpi_short[kpi])}"]
            for year in self.data.years:
                r = self.one(audit_year=year, geography_level="fls", geography_code=code, kpi_number=kpi,
                             breakdown="all")
                row.append("\u2013" if r is None else
                           f"{fmt_pct(r['value_pct'], r['is_suppressed'])} {rating_html(r['rating'], r['is_suppressed']) if not r['is_suppressed'] else ''}")
            rows.append(row)
        parts.append(_table(f"{name}: KPI values by audit year", ["KPI", *map(str, self.data.years)], rows,
                            num_cols=set(range(1, 1 + len(self.data.years)))))
        # outliers
        flagged = mine.loc[mine["is_outlier_alert"].fillna(False).astype(bool)]
        parts.append("<h2>Outlier flags</h2>")
        if len(flagged):
            parts.append("<ul>" + "".join(
                f"<li>KPI {int(r['kpi_number'])} {html.escape(self.kpi_short[int(r['kpi_number'])])}: "
                f"{html.escape(outlier_text(r))}</li>" for r in flagged.to_dict("records")) + "</ul>")
        else:
            parts.append(f"<p>No published result of this FLS lies outside the 95% funnel limits in {y}.</p>")
        # data completeness
        comp = self.data.completeness
        comp = comp.loc[(comp["fls_code"] == code) & (comp["audit_year"] == y)]
        parts.append(f"<h2>Data completeness, {y}</h2>")
        if len(comp):
            first = comp.iloc[0]
            kpi1 = self.one(audit_year=y, geography_level="fls", geography_code=code, kpi_number=1, breakdown="all")
            if kpi1 is not None and kpi1["is_suppressed"]:
                verdict = "KPI 1: suppressed (small numbers)."
            else:
                verdict = (f"KPI 1: {int(first['fields_at_least_80_pct_complete'])} of {int(first['key_fields'])} "
                           f"key fields at least 80% complete: {'&#10004; met' if first['fls_meets_kpi_1'] else '&#10006; not met'}.")
            parts.append(f"<p>{verdict}</p>")
            rows = []
            for r in comp.to_dict("records"):
                s = bool(r["is_suppressed"])
                ok = r["is_at_least_80_pct_complete"]
                rows.append([_esc(r["field_name"]), fmt_pct(r["completeness_pct"], s),
                             SUPPRESSED if s else f"{fmt_count(r['records_recorded'])} of {fmt_count(r['records_measured'])}",
                             SUPPRESSED if s else ("&#10004; yes" if ok else "&#10006; no")])
            parts.append(_table(f"{name}: completeness of the 17 key fields, {y}",
                                ["field", "complete", "records", "at least 80%"], rows, num_cols={1, 2}))
        else:
            parts.append("<p>No records this year.</p>")
        # funnel position for KPI 7
        points, national_v = self.funnel_points(7, y)
        if national_v is not None and code in set(points["geography_code"]):
            parts.append(f"<h2>Position on the KPI 7 funnel plot, {y}</h2>")
            parts.append(charts.render(
                funnel_spec(self.funnel_x_title(7), highlight=True),
                funnel_data(points, national_v, self.value_type[7], highlight=code),
                f"KPI 7 funnel plot, {y}, this FLS ringed",
                "Funnel plot of all FLSs' KPI 7 results with 95% and 99.8% limits; this FLS is ringed in black."))
        self.write_page(f"fls/{code}.html", f"{name}", "\n".join(parts), f"fls-{code}")

    # -- downloads --------------------------------------------------------------------------
    def downloads(self) -> None:
        folder = self.site_dir / "downloads"
        folder.mkdir(parents=True, exist_ok=True)
        files = write_publication_tables(self.data, folder)
        dictionary = pd.read_csv(folder / "data_dictionary.csv", dtype=str, keep_default_na=False)
        rows = [[_esc(r["file"]), _esc(r["column"]), _esc(r["type"]), _esc(r["description"])]
                for r in dictionary.to_dict("records")]
        links = "".join(f'<li><a href="{html.escape(p.name)}">{html.escape(p.name)}</a></li>' for p in files)
        body = (f"<p>The published results with small-number suppression applied: a suppressed cell is blank "
                f"and <code>is_suppressed</code> is true. No patient identifiers.</p><ul>{links}</ul>"
                + _table("Data dictionary", ["file", "column", "type", "description"], rows))
        self.write_page("downloads/index.html", "Downloads: publication tables", body, "downloads")

    def build(self) -> list[Path]:
        if not self.standalone:
            assets = self.site_dir / "assets"
            assets.mkdir(parents=True, exist_ok=True)
            (assets / "vega-bundle.js").write_text(self.js, encoding="utf-8")
        self.glance()
        self.trends()
        self.geography()
        self.deprivation()
        self.funnels()
        self.fls_index()
        for code in self.fls_codes():
            self.fls_page(code)
        self.downloads()
        return self.pages


# ---------------------------------------------------------------------------------------------
# Publication tables
# ---------------------------------------------------------------------------------------------

RESULT_COLUMNS = {
    "audit_year": ("integer", "Calendar year of the index fracture."),
    "geography_level": ("text", "national, country, region or fls."),
    "geography_code": ("text", "K04000001 England and Wales; E92000001 / W92000004; region code; FLS code."),
    "geography_name": ("text", "Name of the geography (FLS names are invented when the data is synthetic)."),
    "kpi_number": ("integer", "KPI 1-11 (kpi-spec.md)."),
    "kpi_name": ("text", "Name of the KPI."),
    "breakdown": ("text", "all, deprivation_quintile, sex, age_band, fracture_site or care_home."),
    "breakdown_value": ("text", "all when breakdown = all; quintile 1 (most deprived) to 5, or unknown; ..."),
    "numerator": ("number", "Patients meeting the KPI (KPI 1: fields or FLSs). Blank when suppressed."),
    "denominator": ("number", "Patients in the denominator; expected fractures for KPI 2 and 3 (1 decimal). Blank when suppressed."),
    "value_pct": ("number", "100 x numerator / denominator, 1 decimal. Blank when suppressed."),
    "ci_lower_pct": ("number", "Lower 95% confidence limit (Wilson; exact Poisson for KPI 2 and 3). Blank when suppressed."),
    "ci_upper_pct": ("number", "Upper 95% confidence limit. Blank when suppressed."),
    "national_value_pct": ("number", "National value of the same year, KPI and breakdown value."),
    "target_pct": ("number", "The KPI's target."),
    "rating": ("text", "green / amber / red (KPI 7 green / red; KPI 1 met / not met at FLS level). Blank when suppressed."),
    "is_outlier_alert": ("boolean", "FLS result outside the 95% funnel limits. Blank when suppressed."),
    "is_outlier_alarm": ("boolean", "FLS result outside the 99.8% funnel limits. Blank when suppressed."),
    "outlier_direction": ("text", "high or low for an alert. Blank when suppressed."),
    "is_suppressed": ("boolean", "True when the result is suppressed: denominator below the minimum, or numerator or denominator minus numerator between 1 and the small count (kpi-spec.md)."),
    "is_synthetic_data": ("boolean", "True when built from SYNTHETIC data."),
}

COMPLETENESS_COLUMNS = {
    "audit_year": ("integer", "Audit year."),
    "fls_code": ("text", "The FLS."),
    "field_order": ("integer", "Position of the field in KPI 1's list of 17 key fields."),
    "field_name": ("text", "The key field, named as in dataset.md."),
    "records_measured": ("integer", "Records the field is measured over. Blank when suppressed."),
    "records_recorded": ("integer", "Of those, records with the field recorded. Blank when suppressed."),
    "completeness_pct": ("number", "100 x records_recorded / records_measured, 1 decimal. Blank when suppressed."),
    "is_at_least_80_pct_complete": ("boolean", "At least 80% complete. Blank when suppressed."),
    "is_suppressed": ("boolean", "True when the field's counts are suppressed by the small-number rule."),
    "is_synthetic_data": ("boolean", "True when built from SYNTHETIC data."),
}

def _publication_frames(data: ReportData) -> dict[str, pd.DataFrame]:
    results = data.results[list(RESULT_COLUMNS)].copy()
    ratio = results["kpi_number"].isin([2, 3])
    for column in ("value_pct", "ci_lower_pct", "ci_upper_pct", "national_value_pct", "target_pct"):
        results[column] = pd.to_numeric(results[column], errors="coerce").round(1) + 0.0  # no -0.0
    numerator = pd.to_numeric(results["numerator"], errors="coerce")
    denominator = pd.to_numeric(results["denominator"], errors="coerce")
    results["numerator"] = numerator.round(0).astype("Int64")
    results["denominator"] = denominator.where(ratio, denominator.round(0)).round(1)
    for column in ("is_outlier_alert", "is_outlier_alarm"):
        results[column] = results[column].astype("boolean")
    results = results.sort_values(["audit_year", "geography_level", "geography_code", "kpi_number",
                                   "breakdown", "breakdown_value"]).reset_index(drop=True)
    comp = data.completeness[list(COMPLETENESS_COLUMNS)].copy()
    for column in ("records_measured", "records_recorded"):
        comp[column] = pd.to_numeric(comp[column], errors="coerce").astype("Int64")
    comp["completeness_pct"] = pd.to_numeric(comp["completeness_pct"], errors="coerce").round(1)
    comp["is_at_least_80_pct_complete"] = comp["is_at_least_80_pct_complete"].astype("boolean")
    return {"kpi_results_published": results, "kpi_data_completeness_published": comp}


def write_publication_tables(data: ReportData, folder: Path) -> list[Path]:
    """The suppressed publication tables as CSV and Parquet, and the data dictionary."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in _publication_frames(data).items():
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet")
        neutralise_frame(frame).to_csv(folder / f"{name}.csv", index=False, na_rep="")
        written += [folder / f"{name}.csv", folder / f"{name}.parquet"]
    dictionary = [{"file": f"{file}.csv / .parquet", "column": column, "type": kind, "description": text}
                  for file, columns in (("kpi_results_published", RESULT_COLUMNS),
                                        ("kpi_data_completeness_published", COMPLETENESS_COLUMNS))
                  for column, (kind, text) in columns.items()]
    neutralise_frame(pd.DataFrame(dictionary)).to_csv(folder / "data_dictionary.csv", index=False)
    written.append(folder / "data_dictionary.csv")
    return written


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

def build_site(out_dir: Path, year: int | None = None, standalone: bool = False,
               require_approval: bool = True) -> Path:
    """Build output_dir/site/ from output_dir/published/ for an approved extract.
    Returns the path of the report at a glance (site/index.html). The site is written to a
    temporary folder and swapped in, so a half-built site is never served."""
    out_dir = Path(out_dir)
    approval = read_approval(out_dir) if require_approval else {}
    db_path = published_db_path(out_dir)
    if not db_path.exists():
        raise ReportError(f"no published marts at {db_path}: run `flsdb publish` first")
    manifest = read_manifest(out_dir)
    approved_date = str(approval.get("extract_date") or "")[:10]
    published_date = str(manifest.get("extract_date") or "")[:10]
    if approved_date and published_date and approved_date != published_date:
        raise ReportError(f"the published marts (extract {published_date}) are not the approved extract "
                          f"({approved_date}): run `flsdb publish` again")
    data = load_report_data(db_path)
    if not data.years:
        raise ReportError("the published marts hold no KPI results")
    chosen = year if year is not None else max(data.years)
    if chosen not in data.years:
        raise ReportError(f"no results for audit year {chosen}; audit years present: {data.years}")
    site = out_dir / "site"
    tmp = out_dir / f".site-tmp-{uuid.uuid4().hex[:8]}"
    try:
        SiteBuilder(data, tmp, chosen, standalone=standalone).build()
        (tmp / "site.json").write_text(json.dumps({
            "audit_year": chosen, "extract_date": data.extract_date, "is_synthetic": data.is_synthetic,
            "built_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "published_database_sha256": manifest.get("database_sha256"),
            "approval": {k: approval.get(k) for k in ("status", "verdict", "extract_date", "approved_at")},
        }, indent=2) + "\n", encoding="utf-8")
        swap_in_folder(tmp, site)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return site / "index.html"
