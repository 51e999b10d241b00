"""SPC ("plot the dots") charts of the report site: one XmR or run chart per monthly KPI series,
drawn as NHS England's *Making Data Count* draws them, and the variation / assurance icons.

Everything comes from the published tier as it is (published_kpi_monthly,
published_kpi_spc_summary, published_kpi_definitions): the mean, limits, point types, variation
and assurance are computed once, in SQL (the int_spc_* models); a suppressed month has no value and
is not drawn, and the limits are drawn within the range the value can take (charts.bounded). Charts
follow flsdb.publish.charts: one Altair spec over named datasets, built once, and each page gives
its own rows.
"""

from __future__ import annotations

import functools

import altair as alt
from markupsafe import Markup, escape

from flsdb.publish.charts import CHART_DECIMALS, _spec

#: point_type -> legend label; a run chart's points (no limits, no point type) are their own kind.
POINT_LABELS = {"common_cause": "common cause", "special_cause_improvement": "special cause: improvement",
                "special_cause_concern": "special cause: concern", None: "run chart (no limits)"}
#: Making Data Count colours: common cause grey, improvement blue, concern orange.
POINT_COLOURS = {"common cause": "#A6A6A6", "special cause: improvement": "#289DE0",
                 "special cause: concern": "#FAB428", "run chart (no limits)": "#595959"}
LINE_STYLES = {"mean": ("#000000", [1, 0]), "process limits": ("#595959", [6, 3]),
               "target": ("#CC0000", [2, 2])}

VARIATION_ICONS = {  # (letter, colour, words): never colour alone
    "common_cause": ("~", "#A6A6A6", "common cause variation"),
    "special_cause_improvement": ("H", "#289DE0", "special cause variation: improvement (higher)"),
    "special_cause_concern": ("L", "#FAB428", "special cause variation: concern (lower)"),
}
ASSURANCE_ICONS = {
    "consistent_pass": ("P", "#289DE0", "consistently passes the target"),
    "consistent_fail": ("F", "#FAB428", "consistently fails the target"),
    "inconsistent": ("?", "#A6A6A6", "may pass or fail the target (hit and miss)"),
    "none": ("\u2013", "#FFFFFF", "no target"),
}


def _icon(letter: str, colour: str, words: str) -> Markup:
    """An inline SVG disc with a letter, followed by the words (offline; no icon font)."""
    ink = "#000000" if colour in ("#FAB428", "#A6A6A6", "#FFFFFF") else "#FFFFFF"
    return Markup('<span class="spc-icon"><svg width="22" height="22" viewBox="0 0 22 22" aria-hidden="true" '
                  'focusable="false"><circle cx="11" cy="11" r="10" fill="{}" stroke="#595959"/>'
                  '<text x="11" y="15.5" text-anchor="middle" font-size="13" font-weight="bold" '
                  'font-family="sans-serif" fill="{}">{}</text></svg> {}</span>').format(colour, ink, letter, words)


def variation_icon(variation) -> Markup | str:
    if not isinstance(variation, str):
        return "no limits (run chart, or fewer points)"
    return _icon(*VARIATION_ICONS[variation]) if variation in VARIATION_ICONS else escape(variation)


def assurance_icon(assurance) -> Markup | str:
    if not isinstance(assurance, str):
        return "not judged (no limits)"
    return _icon(*ASSURANCE_ICONS[assurance]) if assurance in ASSURANCE_ICONS else escape(assurance)


@functools.cache
def spc_spec() -> dict:
    """Points coloured by type, joined by a thin line; mean, process limits and target as
    horizontal segments (dataset `lines`: one row per run of months at one level)."""
    x = alt.X("month:T", title="month of fracture", axis=alt.Axis(format="%b %Y"))
    y = alt.Y("value_pct:Q", title="%", scale=alt.Scale(zero=False))
    line = alt.Chart(alt.NamedData("points")).mark_line(color="#BFBFBF", strokeWidth=1).encode(
        x=x, y=y, detail="spc_group:N")
    dots = alt.Chart(alt.NamedData("points")).mark_point(filled=True, size=50, opacity=1).encode(
        x=x, y=y,
        color=alt.Color("point:N", title="point",
                        scale=alt.Scale(domain=list(POINT_COLOURS), range=list(POINT_COLOURS.values()))),
        shape=alt.Shape("point:N", legend=None,
                        scale=alt.Scale(domain=list(POINT_COLOURS),
                                        range=["circle", "triangle-up", "triangle-down", "circle"])),
        tooltip=[alt.Tooltip("month:T", format="%B %Y"), alt.Tooltip("value_pct:Q", format=".1f"),
                 "point:N", alt.Tooltip("numerator:Q", format=","), alt.Tooltip("denominator:Q", format=",.1f")])
    lines = alt.Chart(alt.NamedData("lines")).mark_rule(strokeWidth=1.5).encode(
        x=alt.X("month:T"), x2="until:T", y=alt.Y("pct:Q"),
        color=alt.Color("line:N", title="line", scale=alt.Scale(
            domain=list(LINE_STYLES), range=[c for c, _ in LINE_STYLES.values()])),
        strokeDash=alt.StrokeDash("line:N", legend=None, scale=alt.Scale(
            domain=list(LINE_STYLES), range=[d for _, d in LINE_STYLES.values()])),
        tooltip=["line:N", alt.Tooltip("pct:Q", format=".1f")])
    return _spec(alt.layer(lines, line, dots).resolve_scale(color="independent").properties(
        width=560, height=200))


def _segments(months: list[dict], column: str, line: str, bound: str) -> list[dict]:
    """One horizontal segment per run of consecutive months at the same level, from the first
    month of the run to the first month of the next run (a step), the last run to the last month:
    the x-axis ends at the series' last month."""
    segments = []
    for row in months:
        value = row[column]
        if value is None:
            continue
        last = segments[-1] if segments else None
        if last and last["pct"] == value:
            last["until"] = row["month"]
        else:
            if last:
                last["until"] = row["month"]
            segments.append({"month": row["month"], "until": row["month"], "pct": value,
                             "line": line, "segment": f"{line}{bound} {row['spc_group']}"})
    return segments


def _round(value):
    return None if value is None else round(float(value), CHART_DECIMALS)


def spc_data(months: list[dict]) -> dict:
    """The datasets of one series' chart, from its months in time order (site_spc.series_records:
    `month` as text, `lower` / `upper` the limits bounded to the range the value can take): its
    published points (suppressed months and months with no value are not points) and its lines,
    each group's mean and limits over the group's months, and the target over the whole series."""
    points = [{"month": r["month"], "value_pct": _round(r["value_pct"]),
               "point": POINT_LABELS.get(r["point_type"], str(r["point_type"])),
               "numerator": r["numerator"], "denominator": _round(r["denominator"]), "spc_group": r["spc_group"]}
              for r in months if not r["is_suppressed"] and r["value_pct"] is not None]
    lines = []
    groups: dict = {}
    for r in months:
        groups.setdefault(r["spc_group"], []).append(r)
    for group in sorted(groups, key=lambda g: (g is None, g)):
        rows = groups[group]
        for column, name, bound in (("centre_pct", "mean", ""), ("lower", "process limits", " lower"),
                                    ("upper", "process limits", " upper")):
            lines += _segments(rows, column, name, bound)
    target = next((r["target_pct"] for r in months if r["target_pct"] is not None), None)
    if target is not None and months:
        lines.append({"month": months[0]["month"], "until": months[-1]["month"],
                      "pct": float(target), "line": "target", "segment": "target"})
    for line in lines:
        line["pct"] = _round(line["pct"])
    return {"points": points, "lines": lines}


def describe(summary: dict | None, kpi_label: str, has_limits: bool) -> str:
    """The chart's text alternative."""
    if summary is None:
        return f"{kpi_label}: monthly values."
    kind = "XmR chart" if has_limits else "run chart (no process limits)"
    return (f"{kpi_label}: {kind} of the monthly values, {int(summary['points'])} points; points coloured by "
            f"type (grey common cause, blue improvement, orange concern), black line the mean, dashed grey the "
            f"process limits, dotted red the target.")
