"""The site's sentences about groups of KPIs, worded from the published KPI definitions
(publication.published_kpi_definitions, from seeds/kpi_definitions.csv), so that no page writes a
KPI number, a KPI list or a rating threshold out by hand (issue 13): a new seed row appears in them
with no edit here.

- `completeness`: the KPIs whose value_type is `completeness` (KPI 1: fields and services, exempt
  from small-number suppression);
- `expected`: the KPIs measured against an expected count (value_type `ratio_to_expected`: KPI 2
  and 3, which can exceed 100% and take the numerator rule only);
- `key_field_threshold`: the completeness KPI's key-field threshold ("80%"), '' when there is none;
- `ratings`: the rating thresholds, the commonest first without KPI numbers, then the KPIs that
  differ ("green at 80% or more, amber 50–79%, red below 50%; KPI 7 green at 50% or more").
"""

from __future__ import annotations

import pandas as pd


def kpi_list(numbers) -> str:
    """KPI numbers in words: one is 'KPI 7', two 'KPI 2 and 3', more 'KPI 4, 5 and 6'; none ''."""
    numbers = [str(int(n)) for n in numbers]
    if not numbers:
        return ""
    if len(numbers) == 1:
        return f"KPI {numbers[0]}"
    return f"KPI {', '.join(numbers[:-1])} and {numbers[-1]}"


def _pct(value: float) -> str:
    return f"{float(value):g}%"


def _rule_words(rule: str, green, amber) -> str:
    if rule == "green_amber_red":
        below_green = float(green) - 1 if float(green).is_integer() and float(amber).is_integer() else None
        amber_words = (f"amber {float(amber):g}–{below_green:g}%" if below_green is not None
                       else f"amber from {_pct(amber)} to below {_pct(green)}")
        return f"green at {_pct(green)} or more, {amber_words}, red below {_pct(amber)}"
    return f"green at {_pct(green)} or more"  # green_red: red below it


def rating_words(kpis: pd.DataFrame) -> str:
    """The rating thresholds of the KPIs rated green/amber/red or green/red, commonest first."""
    groups: dict[tuple, list[int]] = {}
    for row in kpis.sort_values("kpi_number").to_dict("records"):
        if row["rating_rule"] in ("green_amber_red", "green_red"):
            key = (row["rating_rule"], row["green_threshold_pct"], row["amber_threshold_pct"])
            groups.setdefault(key, []).append(int(row["kpi_number"]))
    if not groups:
        return ""
    ordered = sorted(groups, key=lambda key: (-len(groups[key]), min(groups[key])))
    return "; ".join([_rule_words(*ordered[0])]
                     + [f"{kpi_list(groups[key])} {_rule_words(*key)}" for key in ordered[1:]])


def kpi_words(kpis: pd.DataFrame) -> dict[str, str]:
    """{completeness, expected, key_field_threshold, ratings}: see the module docstring. Plain text
    (the templates escape it)."""
    def of(value_type: str) -> str:
        return kpi_list(sorted(int(k) for k in kpis.loc[kpis["value_type"] == value_type, "kpi_number"]))

    thresholds = kpis.loc[kpis["value_type"] == "completeness", "key_field_threshold_pct"].dropna() \
        if "key_field_threshold_pct" in kpis else []
    return {"completeness": of("completeness"), "expected": of("ratio_to_expected"),
            "key_field_threshold": _pct(thresholds.iloc[0]) if len(thresholds) else "",
            "ratings": rating_words(kpis)}
