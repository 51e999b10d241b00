"""Cells of the site's tables: numbers formatted as text, and the few cells with markup.

Text cells are escaped by the templates (autoescape). A markup cell is built with
`Markup(...).format(...)`, which escapes every value it is given, so no published value reaches
a page unescaped.
"""

from __future__ import annotations

import functools
import math

import pandas as pd
import yaml
from markupsafe import Markup

from flsdb import paths

RATING_LABELS = {  # text and symbol, so that colour is never the only cue
    "green": ("\u2714 Green", "green"),
    "amber": ("\u25b2 Amber", "amber"),
    "red": ("\u2716 Red", "red"),
    "met": ("\u2714 Met", "green"),
    "not met": ("\u2716 Not met", "red"),
}
SUPPRESSED = "withheld"
DASH = "\u2013"


@functools.lru_cache(maxsize=1)
def _withheld_macro():
    from flsdb.publish.site_render import environment  # the site's templates (macros.html)

    return environment().get_template("macros.html").module.withheld


@functools.lru_cache(maxsize=1)
def suppression_limits() -> tuple[float, float]:
    """(minimum denominator, maximum small count): the dbt vars, quoted in the site's footer and in
    every withheld cell."""
    project = yaml.safe_load((paths.PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    project_vars = project["vars"]
    return (float(project_vars["suppression_min_denominator"]),
            float(project_vars["suppression_max_small_count"]))


def withheld(reason=None) -> Markup:
    """A withheld value and why (the macro `withheld` of templates/macros.html), from the published
    suppression_reason; without one, just "withheld"."""
    min_denominator, max_small_count = suppression_limits()
    return Markup(_withheld_macro()(reason, min_denominator, max_small_count))


def reason(row: dict):
    """The row's suppression_reason when it is withheld (False when published): what fmt_pct takes."""
    if not row.get("is_suppressed"):
        return False
    return row.get("suppression_reason") or True


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def fmt_pct(value, suppressed=False) -> str:
    """The value; when withheld, the reason (`suppressed` is a suppression_reason) or "withheld"."""
    if suppressed:
        return withheld(suppressed) if isinstance(suppressed, str) else SUPPRESSED
    return DASH if _missing(value) else f"{float(value):.1f}%"


def fmt_count(value, suppressed: bool = False, decimals: int = 0) -> str:
    return SUPPRESSED if suppressed else DASH if _missing(value) else f"{float(value):,.{decimals}f}"


def fmt_ci(lower, upper, suppressed: bool = False) -> str:
    if suppressed:
        return SUPPRESSED
    if _missing(lower) or _missing(upper):
        return DASH
    return f"{float(lower):.1f}\u2013{float(upper):.1f}%"


def direction(current, previous) -> tuple[str, str]:
    """(symbol, words) for the change from previous to current, at one decimal place."""
    if _missing(current) or _missing(previous):
        return "", "no comparison"
    diff = round(float(current), 1) - round(float(previous), 1)
    return ("\u25b2", "up") if diff > 0 else ("\u25bc", "down") if diff < 0 else ("\u25ac", "no change")


def rating_cell(rating, suppressed: bool = False) -> Markup:
    if suppressed:
        return Markup('<span class="rating rating-none">{}</span>').format(SUPPRESSED)
    if _missing(rating):
        return Markup('<span class="rating rating-none">not rated</span>')
    label, css = RATING_LABELS.get(rating, (str(rating), "none"))
    return Markup('<span class="rating rating-{}">{}</span>').format(css, label)


def value_with_ci(row: dict) -> Markup:
    s = bool(row["is_suppressed"])
    return Markup("{}<br><small>{}</small>").format(fmt_pct(row["value_pct"], reason(row)),
                                                    fmt_ci(row["ci_lower_pct"], row["ci_upper_pct"], s))


def outlier_words(level, direction) -> str:
    """An outlier in words. Higher is better for every KPI, so only a low outlier is a concern
    (HQIP's outlier process, with its warning sign); a high one is good performance, without."""
    limits = "99.8%" if level == "alarm" else "95%"
    if direction == "high":
        return f"above the {limits} limits: better than expected"
    return f"\u26a0 low {level}: below the {limits} limits"


def outlier_text(row: dict) -> str:
    if row.get("is_suppressed"):
        return SUPPRESSED
    if row.get("geography_level") != "fls" or _missing(row.get("funnel_lower_95_pct")):
        return DASH
    if row.get("is_outlier_alert"):
        return outlier_words("alarm" if row.get("is_outlier_alarm") else "alert", row.get("outlier_direction"))
    return "within limits"


def table(caption: str, headers: list[str], rows: list[list], num_cols=(), attrs: list[dict] | None = None) -> dict:
    return {"caption": caption, "headers": headers, "num_cols": set(num_cols),
            "rows": [{"cells": r, "attrs": (attrs[i] if attrs else {})} for i, r in enumerate(rows)]}
