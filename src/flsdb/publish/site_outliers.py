"""The site's outlier pages (issue 15) and its "Changes since the last extract" page (issue 14
part 5):

- national-caterpillars.html  one caterpillar plot per KPI (every FLS ranked, 95% intervals);
- outlier-register.html       the published outlier register: the low outliers (a concern, which
                              HQIP's outlier process is about), alarms first, with each one's
                              status; then, apart, the high outliers, worded as good performance;
- changes.html                what changed since the last extract, from the extract history,
                              and who signed off each published extract.

An FLS page (flsdb.publish.site_fls) shows its own register entries through `register_entries`.

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

import pandas as pd
from markupsafe import Markup

from flsdb.publish import charts_outliers as co
from flsdb.publish import history as hist
from flsdb.publish import site_figures as fig
from flsdb.publish.charts import bounded_pair
from flsdb.publish.cells import DASH, fmt_ci, fmt_count, fmt_pct, outlier_words, table
from flsdb.publish.site_data import SiteData
from flsdb.publish.site_render import Renderer

STATUS_WORDS = {"detected": "detected, not yet reviewed", "fls_notified": "FLS notified",
                "fls_responded": "FLS responded", "confirmed": "confirmed outlier",
                "closed_data_error": "closed: data error"}
#: The sections of changes_since_last_extract that may be published (data_quality names files).
PUBLIC_CHANGE_SECTIONS = {"result": "Results restated, added or removed",
                          "outlier": "Outliers that appeared, resolved or changed"}
CHANGE_WORDS = {"result_restated": "restated", "result_added": "new", "result_removed": "removed",
                "outlier_appeared": "appeared", "outlier_resolved": "resolved", "outlier_changed": "changed"}
RESULT_KEY = ("audit_year", "geography_level", "geography_code", "kpi_number", "breakdown", "breakdown_value")
#: Low outliers first (alarms before alerts), then high ones.
LEVEL_ORDER = {"alarm": 0, "alert": 1}


def status_text(status) -> str:
    return STATUS_WORDS.get(str(status), str(status))


# -- caterpillar plots -------------------------------------------------------------------------

def caterpillars(data: SiteData, out: Renderer) -> None:
    charts = out.charts("caterpillars")
    y = data.year
    key = fig.caterpillar_key(data, out)
    rows = fig.caterpillar_rows(data)
    drawn = {int(k) for k in rows["kpi_number"].unique()}
    entries = []
    for kpi in data.kpi_numbers:
        entry = {"kpi": kpi, "name": data.kpi_name[kpi], "chart": None, "table": None}
        if kpi in drawn:
            entry["chart"] = charts.render(
                co.caterpillar_spec(), None, f"Caterpillar plot, KPI {kpi}, {y}",
                f"Every FLS with a published KPI {kpi} result in {y}, ranked from lowest to highest value "
                f"(dots), with its 95% confidence interval (vertical lines); the dashed line is the "
                f"national value, {data.pct(data.one(y, 'national', kpi))}.", shared=key, params={"kpi": kpi})
            ordered = rows.loc[rows["kpi_number"] == kpi].sort_values(["value_pct", "geography_code"])
            entry["table"] = table(
                f"KPI {kpi}, {y}: FLSs by value", ["FLS", "code", "value", "95% CI"],
                [[r["geography_name"], r["geography_code"], fmt_pct(r["value_pct"]),
                  fmt_ci(r["ci_lower_pct"], r["ci_upper_pct"])] for r in ordered.to_dict("records")], {2, 3})
        entries.append(entry)
    out.page("national-caterpillars.html", "caterpillars.html", f"Caterpillar plots, {y}", "caterpillars", charts,
             year=y, caterpillars=entries)


# -- the outlier register ----------------------------------------------------------------------

def register(data: SiteData) -> pd.DataFrame:
    """The published register in reading order: low outliers first (alarms, then alerts), then
    high ones; within each, by KPI, latest audit year first, lowest value first."""
    frame = data.outlier_register
    if frame is None or frame.empty:
        return pd.DataFrame(columns=["audit_year", "fls_code", "fls_name", "kpi_number", "outlier_level",
                                     "outlier_direction", "status", "value_pct", "denominator"])
    return frame.assign(
        _high=frame["outlier_direction"] == "high",
        _level=frame["outlier_level"].map(LEVEL_ORDER).fillna(2),
    ).sort_values(["_high", "_level", "kpi_number", "audit_year", "value_pct", "fls_code"],
                  ascending=[True, True, True, False, True, True]).drop(columns=["_high", "_level"])


def _register_cells(data: SiteData, r: dict, with_status: bool) -> list:
    value_type = data.value_type.get(int(r["kpi_number"]), "proportion")
    cells = [f"KPI {int(r['kpi_number'])}: {data.kpi_short[int(r['kpi_number'])]}", str(int(r["audit_year"])),
             outlier_words(r["outlier_level"], r["outlier_direction"]), fmt_pct(r["value_pct"]),
             fmt_count(r["denominator"], decimals=data.decimals(int(r["kpi_number"]))),
             fmt_ci(*bounded_pair(r["funnel_lower_95_pct"], r["funnel_upper_95_pct"], value_type)),
             fmt_ci(*bounded_pair(r["funnel_lower_998_pct"], r["funnel_upper_998_pct"], value_type))]
    return cells + [status_text(r["status"])] if with_status else cells


#: The limits are shown within the range the value can take, as the charts draw them.
LIMIT_HEADERS = ["value", "denominator", "95% limits (adjusted)", "99.8% limits (adjusted)"]


def register_table(data: SiteData, frame: pd.DataFrame, caption: str, high: bool, fls_link: str | None) -> dict | None:
    """The rows of `frame` (one direction), with the FLS when `fls_link` (a link prefix) is given."""
    if frame.empty:
        return None
    records = frame.to_dict("records")
    rows, attrs = [], []
    for r in records:
        cells = _register_cells(data, r, with_status=not high)
        if fls_link is not None:
            cells = [r["fls_name"], Markup('<a href="{}{}.html">{}</a>').format(fls_link, r["fls_code"], r["fls_code"]),
                     *cells]
        rows.append(cells)
        attr = {"data-fls": r["fls_code"], "data-kpi": int(r["kpi_number"]), "data-year": int(r["audit_year"]),
                "data-level": r["outlier_level"], "data-direction": r["outlier_direction"]}
        if not high:
            attr["data-status"] = r["status"]
        attrs.append(attr)
    headers = (["FLS", "code"] if fls_link is not None else []) + ["KPI", "audit year", "outlier", *LIMIT_HEADERS]
    first_num = 5 if fls_link is not None else 3
    return table(caption, headers + ([] if high else ["status"]), rows, range(first_num, first_num + 4), attrs)


def register_page(data: SiteData, out: Renderer) -> None:
    frame = register(data)
    low = frame.loc[frame["outlier_direction"] != "high"]
    high = frame.loc[frame["outlier_direction"] == "high"]
    statuses = low["status"].value_counts().to_dict()
    levels = low["outlier_level"].value_counts().to_dict()
    out.page("outlier-register.html", "outliers.html", "Outlier register", "outlier-register",
             total=len(frame), low_total=len(low), high_total=len(high),
             alarms=int(levels.get("alarm", 0)), alerts=int(levels.get("alert", 0)),
             counts=[(status_text(s), int(statuses.get(s, 0))) for s in STATUS_WORDS],
             low_table=register_table(data, low, "Low outliers (a concern): alarms first, then alerts", False, "fls/"),
             high_table=register_table(data, high, "High outliers: better than expected", True, "fls/"))


def register_entries(data: SiteData, code: str) -> pd.DataFrame:
    """FLS `code`'s entries in the published register, in reading order."""
    frame = register(data)
    return frame.loc[frame["fls_code"] == code]


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


def public_changes(data: SiteData, history: Path | HistoryRows) -> tuple[list[dict], dict]:
    """(the changes that may be published, {extracts, dropped}) from the history (its rows, read
    once by build_site, or its path)."""
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
        now = data.index.get(key)
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


def changes_page(data: SiteData, out: Renderer, history: Path | HistoryRows) -> None:
    rows, info = public_changes(data, history)
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
    out.page("changes.html", "changes.html", "Changes since the last extract", "changes",
             latest=when(info["latest"]), previous=when(info["previous"]), sections=sections,
             withheld=info["withheld"], dash=DASH, published_extract=data.extract_date or "",
             signoffs=signoff_table(info["extracts"]))
