"""Cells of the site's tables: numbers formatted as text, and the few cells with markup.

Text cells are escaped by the templates (autoescape). A markup cell is built with
`Markup(...).format(...)`, which escapes every value it is given, so no published value reaches
a page unescaped.
"""

from __future__ import annotations

import functools
import math

import pandas as pd
from markupsafe import Markup

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
    from flsdb.publish.site import environment  # the site's templates (macros.html)

    return environment().get_template("macros.html").module.withheld


def withheld(reason=None) -> Markup:
    """A withheld value and why (the macro `withheld` of templates/macros.html), from the published
    suppression_reason; without one, just "withheld"."""
    from flsdb.publish.site_data import suppression_limits

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


def outlier_text(row: dict) -> str:
    if row.get("is_suppressed"):
        return SUPPRESSED
    if row.get("geography_level") != "fls" or _missing(row.get("funnel_lower_95_pct")):
        return DASH
    if row.get("is_outlier_alarm"):
        return f"\u26a0 alarm ({row.get('outlier_direction')}, outside 99.8% limits)"
    if row.get("is_outlier_alert"):
        return f"\u26a0 alert ({row.get('outlier_direction')}, outside 95% limits)"
    return "within limits"


def table(caption: str, headers: list[str], rows: list[list], num_cols=(), attrs: list[dict] | None = None) -> dict:
    return {"caption": caption, "headers": headers, "num_cols": set(num_cols),
            "rows": [{"cells": r, "attrs": (attrs[i] if attrs else {})} for i, r in enumerate(rows)]}
