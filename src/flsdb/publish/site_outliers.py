"""The site's outlier pages (issue 15) and its "Changes since the last extract" page (issue 14
part 5), rendered by flsdb.publish.site.SiteBuilder:

- national-caterpillars.html  one caterpillar plot per KPI (every FLS ranked, 95% intervals);
- outlier-register.html       the published outlier register by KPI, with each outlier's status;
- changes.html                what changed since the last extract, from the extract history,
                              and who signed off each published extract;
- on each FLS page (templates/_fls_outliers.html): its caterpillars, highlighted, and its own
  register entries.

Everything shown is read as published: published_kpi_results, published_outlier_register
(models/publication/) and the history's changes_since_last_extract view (history.sql). Nothing
is computed here. The history is INTERNAL (its data-quality rows name submitted files), so the
public page keeps only its `result` and `outlier` rows, and drops every row whose result is
suppressed now (in the published tier: primary or complementary) or was suppressed in either
of the two publications compared (the history's own flag).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from markupsafe import Markup

from flsdb.publish import charts as ch
from flsdb.publish import charts_outliers as co
from flsdb.publish import history as hist
from flsdb.publish.cells import DASH, fmt_ci, fmt_count, fmt_pct, table

if TYPE_CHECKING:  # pragma: no cover
    from flsdb.publish.site import SiteBuilder

STATUS_WORDS = {"detected": "detected, not yet reviewed", "fls_notified": "FLS notified",
                "fls_responded": "FLS responded", "confirmed": "confirmed outlier",
                "closed_data_error": "closed: data error"}
#: The sections of changes_since_last_extract that may be published (data_quality names files).
PUBLIC_CHANGE_SECTIONS = {"result": "Results restated, added or removed",
                          "outlier": "Outliers that appeared, resolved or changed"}
CHANGE_WORDS = {"result_restated": "restated", "result_added": "new", "result_removed": "removed",
                "outlier_appeared": "appeared", "outlier_resolved": "resolved", "outlier_changed": "changed"}
RESULT_KEY = ("audit_year", "geography_level", "geography_code", "kpi_number", "breakdown", "breakdown_value")


def status_text(status) -> str:
    return STATUS_WORDS.get(str(status), str(status))


# -- caterpillar plots -------------------------------------------------------------------------

def fls_results(site: SiteBuilder, kpi: int | None = None) -> pd.DataFrame:
    filters = {"audit_year": site.year, "geography_level": "fls", "breakdown": "all"}
    if kpi is not None:
        filters["kpi_number"] = kpi
    return ch.plotted(site.rows(**filters))


def caterpillars(site: SiteBuilder) -> None:
    charts = ch.Charts("caterpillars")
    y = site.year
    entries = []
    for kpi in site.kpis:
        rows = fls_results(site, kpi)
        data = co.caterpillar_data(rows)
        entry = {"kpi": kpi, "name": site.kpi_name[kpi], "chart": None, "table": None}
        if data["values"]:
            national = site.pct(site.one(y, "national", kpi))
            entry["chart"] = charts.render(
                co.caterpillar_spec(), data, f"Caterpillar plot, KPI {kpi}, {y}",
                f"Every FLS with a published KPI {kpi} result in {y}, ranked from lowest to highest value "
                f"(dots), with its 95% confidence interval (vertical lines); the dashed line is the "
                f"national value, {national}.")
            ordered = rows.loc[rows["ci_lower_pct"].notna()].sort_values(["value_pct", "geography_code"])
            entry["table"] = table(
                f"KPI {kpi}, {y}: FLSs by value", ["FLS", "code", "value", "95% CI"],
                [[r["geography_name"], r["geography_code"], fmt_pct(r["value_pct"]),
                  fmt_ci(r["ci_lower_pct"], r["ci_upper_pct"])] for r in ordered.to_dict("records")], {2, 3})
        entries.append(entry)
    site.write_page("national-caterpillars.html", "caterpillars.html", f"Caterpillar plots, {y}", "caterpillars",
                    year=y, caterpillars=entries)


def fls_caterpillar(site: SiteBuilder, charts: ch.Charts, code: str, name: str) -> dict | None:
    rows = fls_results(site)
    if code not in set(rows["geography_code"]):
        return None
    return charts.render(
        co.caterpillar_fls_spec(), co.caterpillar_data(rows, highlight=code),
        f"{name} among all FLSs, {site.year}: caterpillar plots",
        "One panel per KPI: every FLS ranked by its value with its 95% confidence interval; this FLS in "
        "orange and larger, the others in blue; the dashed line is the national value.")


# -- the outlier register ----------------------------------------------------------------------

def _register(site: SiteBuilder) -> pd.DataFrame:
    register = site.data.outlier_register
    if register is None:
        return pd.DataFrame(columns=["audit_year", "fls_code", "kpi_number"])
    return register.sort_values(["kpi_number", "audit_year", "outlier_direction", "value_pct", "fls_code"],
                                ascending=[True, False, True, True, True])


def _register_row(site: SiteBuilder, r: dict, link: str) -> list:
    decimals = 1 if site.value_type[int(r["kpi_number"])] == "ratio_to_expected" else 0
    return [r["fls_name"], link, str(int(r["audit_year"])), f"{r['outlier_level']} ({r['outlier_direction']})",
            fmt_pct(r["value_pct"]), fmt_count(r["denominator"], decimals=decimals),
            fmt_ci(r["funnel_lower_95_pct"], r["funnel_upper_95_pct"]),
            fmt_ci(r["funnel_lower_998_pct"], r["funnel_upper_998_pct"]), status_text(r["status"])]


REGISTER_HEADERS = ["FLS", "code", "audit year", "outlier", "value", "denominator", "95% limits (adjusted)",
                    "99.8% limits (adjusted)", "status"]


def register_page(site: SiteBuilder) -> None:
    register = _register(site)
    sections = []
    for kpi in site.kpis:
        mine = register.loc[register["kpi_number"] == kpi]
        rows = [_register_row(site, r, Markup('<a href="fls/{}.html">{}</a>').format(r["fls_code"], r["fls_code"]))
                for r in mine.to_dict("records")]
        attrs = [{"data-fls": r["fls_code"], "data-kpi": int(r["kpi_number"]), "data-status": r["status"]}
                 for r in mine.to_dict("records")]
        sections.append({"kpi": kpi, "name": site.kpi_name[kpi], "table": table(
            f"KPI {kpi}: outliers in the register", REGISTER_HEADERS, rows, {4, 5, 6, 7}, attrs) if rows else None})
    counts = register["status"].value_counts().to_dict() if len(register) else {}
    site.write_page("outlier-register.html", "outliers.html", "Outlier register", "outlier-register",
                    sections=sections, total=len(register),
                    counts=[(status_text(s), int(counts.get(s, 0))) for s in STATUS_WORDS])


def fls_register_entries(site: SiteBuilder, code: str, name: str) -> dict | None:
    register = _register(site)
    mine = register.loc[register["fls_code"] == code]
    if mine.empty:
        return None
    records = mine.to_dict("records")
    rows = [[f"KPI {int(r['kpi_number'])}: {site.kpi_short[int(r['kpi_number'])]}",
             *_register_row(site, r, r["fls_code"])[2:]] for r in records]
    attrs = [{"data-kpi": int(r["kpi_number"]), "data-status": r["status"]} for r in records]
    return table(f"{name}: entries in the outlier register", ["KPI", *REGISTER_HEADERS[2:]], rows, {2, 3, 4, 5}, attrs)


# -- changes since the last extract ------------------------------------------------------------

def _suppressed_in_history(history: Path) -> set[tuple]:
    """Keys of results suppressed in either of the two publications the changes compare."""
    rows = hist._read(history, f"""
        select distinct {', '.join('h.' + c for c in RESULT_KEY)}
        from kpi_result_history as h
        inner join latest_two_extracts as pair
            on h.publication_id in (pair.latest_publication_id, pair.previous_publication_id)
        where h.is_suppressed
    """)
    return {tuple(r[c] for c in RESULT_KEY) for r in rows}


@dataclass
class HistoryRows:
    """What the site reads from the extract history, read once (build_site's snapshot)."""

    extracts: list[dict] = field(default_factory=list)
    changes: list[dict] = field(default_factory=list)
    suppressed_then: set[tuple] = field(default_factory=set)


def read_history(history: Path) -> HistoryRows:
    """The publications, the changes between the last two and the results suppressed in either;
    empty when there is no history yet. A damaged history raises HistoryError."""
    extracts = hist.list_extracts(history)
    if len(extracts) < 2:
        return HistoryRows(extracts)
    return HistoryRows(extracts, hist.changes_since_last_extract(history), _suppressed_in_history(history))


def public_changes(site: SiteBuilder, history: Path | HistoryRows) -> tuple[list[dict], dict]:
    """(the changes that may be published, {extracts, dropped}) from the history (its path, or its
    rows already read)."""
    rows = history if isinstance(history, HistoryRows) else read_history(Path(history))
    extracts = rows.extracts
    info = {"extracts": extracts, "latest": extracts[-1] if extracts else None,
            "previous": extracts[-2] if len(extracts) > 1 else None, "withheld": 0}
    if len(extracts) < 2:
        return [], info
    shown = []
    for row in rows.changes:
        if row["change_section"] not in PUBLIC_CHANGE_SECTIONS:
            continue
        key = tuple(row[c] for c in RESULT_KEY)
        now = site.index.get(key)
        if bool(row.get("is_suppressed")) or key in rows.suppressed_then or (now is not None and bool(now["is_suppressed"])):
            info["withheld"] += 1
            continue
        shown.append(row)
    return shown, info


def signoff_table(extracts: list[dict]) -> dict | None:
    """Every publication in the history, latest first, with who signed it off (the reviewer's name
    and the verdict; notes stay in the internal history)."""
    if not extracts:
        return None
    rows, attrs = [], []
    for e in reversed(extracts):
        who = e.get("signed_off_by")
        rows.append([str(e["extract_date"]), str(e["published_at"])[:16],
                     who or "not recorded (published before sign-offs were kept)",
                     str(e["signed_off_at"])[:16] if e.get("signed_off_at") else DASH,
                     e.get("verdict") or DASH])
        attrs.append({"data-publication": int(e["publication_id"]), "data-reviewer": who or ""})
    return table("Published extracts and their sign-off", ["extract date", "published (UTC)", "signed off by",
                                                          "signed off (UTC)", "verdict"], rows, (), attrs)


def changes_page(site: SiteBuilder, history: Path) -> None:
    rows, info = public_changes(site, history)
    sections = []
    for section, title in PUBLIC_CHANGE_SECTIONS.items():
        mine = [r for r in rows if r["change_section"] == section]
        sections.append({"title": title, "table": table(
            title, ["change", "KPI", "audit year", "description"],
            [[CHANGE_WORDS.get(r["change_kind"], r["change_kind"]), f"KPI {int(r['kpi_number'])}",
              str(int(r["audit_year"])), r["description"]] for r in mine], (),
            [{"data-section": section, "data-kind": r["change_kind"], "data-kpi": int(r["kpi_number"]),
              "data-geography": r["geography_code"]} for r in mine]) if mine else None})
    def when(extract):
        return None if extract is None else {"extract_date": str(extract["extract_date"]),
                                             "published_at": str(extract["published_at"])[:16]}
    site.write_page("changes.html", "changes.html", "Changes since the last extract", "changes",
                    latest=when(info["latest"]), previous=when(info["previous"]), sections=sections,
                    withheld=info["withheld"], dash=DASH, signoffs=signoff_table(info["extracts"]))
