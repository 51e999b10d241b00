"""The report site's pages against the published tier (flsdb.publish.site, charts, site_outliers,
site_spc): the report at a glance; the adjusted funnels, caterpillar plots and outlier register
(issue 15); the page "Changes since the last extract" (issue 14 part 5); the monthly SPC charts and
variation table (issue 14 part 4). In a real browser: test_site_browser.py.

Uses the session's national warehouse, published and rendered by published_site.py's module fixtures.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flsdb.publish.marts import PUBLISHED_DB_NAME
from site_pages import kpi_rows, page_charts, site_root
from published_site import published, site  # noqa: F401  (module fixtures: the national warehouse published, its site)
from published_site import WITHHELD_BECAUSE, published_frame, published_table


def test_report_at_a_glance_2024_matches_the_published_directions(site):
    rows = kpi_rows(site / "index.html")
    assert rows["2"]["attrs"]["data-direction"] == "down"
    assert rows["3"]["attrs"]["data-direction"] == "up"
    assert rows["7"]["attrs"]["data-direction"] == "down"
    text = (site / "index.html").read_text(encoding="utf-8")
    assert "Report at a glance, 2024" in text
    assert "\u25bc down" in " ".join(rows["2"]["cells"]) and "\u25b2 up" in " ".join(rows["3"]["cells"])
    value_2024, value_2023 = (float(rows["7"]["cells"][i].rstrip("%")) for i in (2, 4))
    assert value_2024 == pytest.approx(57, abs=2) and value_2023 == pytest.approx(59, abs=2)
    assert re.search(r"records-2024\">2024<strong>8\d,\d{3}</strong>", text)
    assert "most deprived" in text and 'id="kpi7-deprivation"' in text


# ---------------------------------------------------------------------------------------------
# Outliers (issue 15): adjusted funnels, caterpillar plots, the outlier register; and the page
# "Changes since the last extract" (issue 14 part 5)
# ---------------------------------------------------------------------------------------------
def _dashes(spec: dict) -> dict[str, list]:
    """{adjustment: strokeDash} of the funnel spec's lines layer."""
    lines = next(layer for layer in spec["layer"] if "strokeDash" in layer.get("encoding", {}))
    scale = lines["encoding"]["strokeDash"]["scale"]
    return dict(zip(scale["domain"], scale["range"]))


def bounded_curve(values, value_type: str):
    """The published limits as the charts draw them: within the range the value can take."""
    upper = None if value_type == "ratio_to_expected" else 100.0
    return pd.Series(values, dtype=float).clip(lower=0.0, upper=upper).to_numpy()


def test_funnels_draw_adjusted_limits_solid_unadjusted_dotted_with_phi_and_tau2(site, published):
    limits = published_table(published, "published_funnel_limits")
    limits = limits.loc[limits["audit_year"] == 2024]
    kpis = sorted(int(k) for k in limits["kpi_number"].unique())
    assert len(kpis) >= 5
    charts = page_charts(site / "national-funnels.html")
    assert len(charts) == len(kpis)
    register = published_table(published, "published_outlier_register")
    code = min(register.loc[register["audit_year"] == 2024, "fls_code"])
    fls_funnels = [(c, s) for c, s in page_charts(site / "fls" / f"{code}.html") if "funnel plot" in c]
    fls_kpis = [int(re.search(r"KPI (\d+)", c).group(1)) for c, _ in fls_funnels]
    assert fls_funnels and len(fls_kpis) == len(set(fls_kpis))
    for kpi, (caption, spec) in [*zip(kpis, charts), *zip(fls_kpis, fls_funnels)]:
        curve = limits.loc[limits["kpi_number"] == kpi].sort_values("step_number")
        value_type = curve["value_type"].iloc[0]
        phi, tau2 = float(curve["overdispersion_phi"].iloc[0]), float(curve["overdispersion_tau2"].iloc[0])
        assert f"KPI {kpi}" in caption and f"φ = {phi:.2f}" in caption and f"τ² = {tau2:.3g}" in caption, caption
        assert tau2 > 0          # the default data is overdispersed: the two sets of lines differ
        dashes = _dashes(spec)
        assert dashes["adjusted for overdispersion"] == [1, 0]                      # solid
        dotted = dashes["unadjusted"]
        assert len(dotted) == 2 and 0 < dotted[0] <= dotted[1] <= 4, dotted         # dotted
        lines = pd.DataFrame(spec["datasets"]["limits"])   # one row per denominator, a column per line
        # the site rounds chart numbers to 4 decimals (charts.CHART_DECIMALS); the grid's denominators are log-spaced
        assert lines["denominator"].to_numpy(dtype=float) == pytest.approx(curve["denominator"].to_numpy(dtype=float),
                                                                           abs=1e-4)
        for suffix in ("", "_unadjusted"):
            for level in ("95", "998"):
                for bound in ("lower", "upper"):
                    column = f"{bound}_{level}{suffix}_pct"
                    drawn = lines[column].to_numpy(dtype=float)
                    assert drawn == pytest.approx(bounded_curve(curve[column], value_type), abs=1e-4, nan_ok=True), (
                        kpi, column)
                    assert (drawn[~pd.isna(drawn)] >= 0).all()
                    if value_type != "ratio_to_expected":
                        assert (drawn[~pd.isna(drawn)] <= 100).all()
        adjusted, unadjusted = lines["upper_998_pct"].to_numpy(dtype=float), lines["upper_998_unadjusted_pct"].to_numpy(dtype=float)
        assert (adjusted >= unadjusted - 1e-9).all() and (adjusted > unadjusted + 1e-6).any()


def _caterpillar_rows(published: Path) -> pd.DataFrame:
    results = published_table(published, "published_kpi_results")
    return results.loc[(results["audit_year"] == 2024) & (results["geography_level"] == "fls")
                       & (results["breakdown"] == "all")]


def test_caterpillar_page_has_one_chart_per_kpi_and_each_fls_page_highlights_its_fls(site, published):
    seed_kpis = [int(k) for k in published_table(published, "published_kpi_definitions")["kpi_number"]]
    fls = _caterpillar_rows(published)
    with_interval = fls.loc[~fls["is_suppressed"] & fls["ci_lower_pct"].notna()]
    plottable = sorted(int(k) for k in with_interval["kpi_number"].unique())
    assert len(plottable) >= 9 and set(plottable) <= set(seed_kpis)
    page = site / "national-caterpillars.html"
    text = page.read_text(encoding="utf-8")
    for kpi in seed_kpis:
        assert f'id="caterpillar-kpi-{kpi}"' in text, kpi
    charts = page_charts(page)
    assert [int(re.search(r"KPI (\d+)", c).group(1)) for c, _ in charts] == plottable
    hidden = fls.loc[fls["is_suppressed"]]
    suppressed = set(hidden["geography_code"] + "/" + hidden["kpi_number"].astype(str))
    assert suppressed, "the national data set should have suppressed FLS results"
    for kpi, (_, spec) in zip(plottable, charts):
        # one shared dataset of every KPI; the chart's parameter `kpi` and its filter pick its KPI
        assert [p["value"] for p in spec["params"] if p["name"] == "kpi"] == [kpi]
        assert {"filter": "datum.kpi_number === kpi"} in spec["transform"]
        rows = [r for r in spec["datasets"]["values"] if r["kpi_number"] == kpi]
        expected = with_interval.loc[with_interval["kpi_number"] == kpi].set_index("geography_code")
        assert {r["geography_code"] for r in rows} == set(expected.index), kpi
        for r in rows:
            assert f"{r['geography_code']}/{kpi}" not in suppressed
            assert (r["value_pct"], r["ci_lower_pct"], r["ci_upper_pct"]) == pytest.approx(
                tuple(expected.loc[r["geography_code"], ["value_pct", "ci_lower_pct", "ci_upper_pct"]]), abs=1e-4)
        assert '"window"' in json.dumps(spec), "the ranking is the spec's window transform"
    for code in ("SYN001", "SYN002"):
        caterpillar = next(s for c, s in page_charts(site / "fls" / f"{code}.html") if "caterpillar" in c)
        rows = caterpillar["datasets"]["values"]
        assert [p["value"] for p in caterpillar["params"] if p["name"] == "this_fls"] == [code]
        assert "datum.geography_code === this_fls" in json.dumps(caterpillar)
        highlighted = {(r["geography_code"], r["kpi_number"]) for r in rows if r["geography_code"] == code}
        mine = with_interval.loc[with_interval["geography_code"] == code]
        assert highlighted == {(code, int(k)) for k in mine["kpi_number"]} and highlighted
        assert len(rows) == len(with_interval)


def _attrs(html: str, pattern: str) -> list[dict]:
    return [dict(re.findall(r'data-([\w-]+)="([^"]*)"', attrs)) for attrs in re.findall(pattern, html)]


def _section(html: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}"[^>]*>(.*?)</section>', html, re.S)
    assert match, section_id
    return match.group(1)


def fls_page_outliers(page: Path) -> list[dict]:
    """The register entries an FLS page shows: this year's outliers and the earlier years' rows."""
    body = _section(page.read_text(encoding="utf-8"), "outliers")
    return _attrs(body, r'<div class="outlier"( [^>]*)>') + _attrs(body, r"<tr( data-fls=[^>]*)>")


def test_register_page_lists_low_outliers_alarms_first_and_high_ones_apart(site, published):
    register = published_table(published, "published_outlier_register")
    text = (site / "outlier-register.html").read_text(encoding="utf-8")
    low_html, high_html = _section(text, "register-low"), _section(text, "register-high")
    low, high = _attrs(low_html, r"<tr( data-fls=[^>]*)>"), _attrs(high_html, r"<tr( data-fls=[^>]*)>")
    expected_low = register.loc[register["outlier_direction"] == "low"]
    expected_high = register.loc[register["outlier_direction"] == "high"]
    assert len(expected_low) and len(expected_high)
    assert sorted((r["fls"], int(r["kpi"]), int(r["year"]), r["status"]) for r in low) == sorted(
        (r.fls_code, int(r.kpi_number), int(r.audit_year), r.status) for r in expected_low.itertuples())
    assert sorted((r["fls"], int(r["kpi"]), int(r["year"])) for r in high) == sorted(
        (r.fls_code, int(r.kpi_number), int(r.audit_year)) for r in expected_high.itertuples())
    # low (concern) first, alarms before alerts; the high ones are good performance: no warning
    # sign, no status in the outlier process
    assert text.index('id="register-low"') < text.index('id="register-high"')
    levels = [r["level"] for r in low]
    assert levels == sorted(levels, key=lambda level: level != "alarm") and "alarm" in levels
    assert all(r["direction"] == "low" for r in low) and all(r["direction"] == "high" for r in high)
    assert "detected, not yet reviewed" in low_html and "\u26a0" in low_html
    assert "\u26a0" not in high_html and "not yet reviewed" not in high_html and "data-status" not in high_html
    assert "better than expected" in high_html
    for code in sorted(register["fls_code"].unique())[:3] + ["SYN001"]:
        own = register.loc[register["fls_code"] == code]
        shown = fls_page_outliers(site / "fls" / f"{code}.html")
        keys = [(int(r["year"]), int(r["kpi"])) for r in shown]
        assert sorted(keys) == sorted((int(r.audit_year), int(r.kpi_number)) for r in own.itertuples()), code
        assert len(keys) == len(set(keys)), code      # each outlier once
        for r in shown:
            assert ("status" in r) == (r["direction"] == "low"), (code, r)
        if not len(own.loc[own["audit_year"] == 2024]):
            assert 'id="no-outliers"' in (site / "fls" / f"{code}.html").read_text(encoding="utf-8")


def _history_copy(built: Path, path: Path, extract_date: str, edit=None) -> Path:
    """A small warehouse with what the extract history reads, copied from the built one and
    optionally edited (a restated or removed result)."""
    con = duckdb.connect(str(path))
    try:
        con.execute(f"attach '{built}' as built (read_only)")
        con.execute("create schema marts")
        con.execute("create schema quality")
        con.execute("create table marts.kpi_results as select * from built.marts.kpi_results")
        con.execute("create table marts.outlier_register as select * from built.marts.outlier_register")
        con.execute(f"create table marts.fct_episodes as select date '{extract_date}' as extract_date")
        con.execute("create table quality.dq_problems as select * from built.quality.dq_problems limit 0")
        con.execute("create schema publication")
        con.execute("create table publication.published_kpi_results as "
                    "select * from built.publication.published_kpi_results")
        con.execute("detach built")
        if edit:
            edit(con)
    finally:
        con.close()
    return path


def test_changes_page_without_and_with_a_previous_extract(site, published, built_warehouse, marts, tmp_path):
    from flsdb.publish import history as hist
    from flsdb.publish import site_outliers
    from flsdb.publish.site_data import load_site_data
    from flsdb.publish.site_render import Renderer

    # No history at all: the published site says there is no previous extract.
    text = (site / "changes.html").read_text(encoding="utf-8")
    assert 'id="no-previous-extract"' in text and "<table" not in text.split("<main>")[1]

    results = published_table(published, "published_kpi_results")
    fls = results.loc[(results["audit_year"] == 2024) & (results["geography_level"] == "fls")
                      & (results["breakdown"] == "all")]
    primary = fls.loc[fls["suppression_reason"] == "small numbers"].iloc[0]
    complement = fls.loc[fls["suppression_reason"] == "complementary"].iloc[0]
    register = published_table(published, "published_outlier_register")
    resolved = register.loc[register["audit_year"] == 2024].iloc[0]
    shown = fls.loc[~fls["is_suppressed"] & (fls["kpi_number"] == 7)
                    & (fls["geography_code"] != resolved["fls_code"])].iloc[0]

    def restate(con):
        for row in (shown, primary, complement):
            con.execute("update marts.kpi_results set numerator = numerator - 1, "
                        "value_pct = 100.0 * (numerator - 1) / denominator where audit_year = 2024 and "
                        "geography_level = 'fls' and breakdown = 'all' and geography_code = ? and kpi_number = ?",
                        [row["geography_code"], int(row["kpi_number"])])
        con.execute("delete from marts.outlier_register where audit_year = 2024 and fls_code = ? and kpi_number = ?",
                    [resolved["fls_code"], int(resolved["kpi_number"])])
        con.execute("insert into quality.dq_problems by name select 'late_file' as problem_kind, "
                    "'x' as problem_code, 'SYN001' as fls_code, 'secret_submission_SYN001.csv' as source_file, "
                    "7 as line_number, 'f' as field_name, 'r' as reason, 'd' as description")

    history = tmp_path / "history.duckdb"
    built = built_warehouse["warehouse"]
    hist.record_published_extract(_history_copy(built, tmp_path / "w1.duckdb", "2024-11-30"), history,
                                  dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    data = load_site_data(published / "published" / PUBLISHED_DB_NAME)
    data.choose_year(2024)
    out = Renderer(tmp_path / "site", data.page_facts())
    site_outliers.changes_page(data, out, history)
    text = (tmp_path / "site" / "changes.html").read_text(encoding="utf-8")
    assert 'id="no-previous-extract"' in text and "2024-11-30" in text   # one extract only

    hist.record_published_extract(_history_copy(built, tmp_path / "w2.duckdb", "2024-12-31", restate), history,
                                  dt.datetime(2025, 2, 1, tzinfo=dt.timezone.utc))
    changes = hist.changes_since_last_extract(history)
    changed = {(c["change_section"], c["geography_code"], c["kpi_number"]) for c in changes}
    for row in (shown, primary, complement):     # the history has all three; the page must not
        assert ("result", row["geography_code"], int(row["kpi_number"])) in changed
    # the history keeps suppression as published: a complement hidden then stays hidden later
    flags = {c["geography_code"]: c["is_suppressed"] for c in changes if c["change_section"] == "result"
             and c["kpi_number"] == int(complement["kpi_number"]) and c["audit_year"] == 2024
             and c["geography_level"] == "fls" and c["breakdown"] == "all"}
    assert flags[complement["geography_code"]] is True
    assert hist.list_extracts(history)[-1]["kpi_result_source"] == "publication.published_kpi_results"
    assert any(c["change_section"] == "data_quality" for c in changes)
    site_outliers.changes_page(data, out, history)
    page = tmp_path / "site" / "changes.html"
    text = page.read_text(encoding="utf-8")
    assert 'id="compared-extracts"' in text and "2024-12-31" in text and "2024-11-30" in text
    rows = [dict(re.findall(r'data-(\w+)="([^"]*)"', a)) for a in re.findall(r"<tr( data-section=[^>]*)>", text)]
    shown_keys = {(r["section"], r["kind"], r["geography"], int(r["kpi"])) for r in rows}
    assert ("result", "result_restated", shown["geography_code"], 7) in shown_keys
    assert ("outlier", "outlier_resolved", resolved["fls_code"], int(resolved["kpi_number"])) in shown_keys
    for row in (primary, complement):
        assert not any(k[2] == row["geography_code"] and k[3] == int(row["kpi_number"]) for k in shown_keys), row
    assert {r["section"] for r in rows} == {"result", "outlier"}
    assert "secret_submission" not in text and "data_quality" not in text
    assert "are not shown: 2 of them" in " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Monthly SPC charts (issue 14 part 4; flsdb.publish.site_spc, charts_spc)
# ---------------------------------------------------------------------------------------------

class SpcRows(HTMLParser):
    """The variation / assurance table's rows ({kpi: {"attrs", "cells"}}) and the SPC charts'
    KPIs, in page order, with where each section starts."""

    def __init__(self):
        super().__init__()
        self.rows: dict[int, dict] = {}
        self.chart_kpis: list[int] = []
        self.order: list[str] = []
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id") in ("spc-summary", "spc-charts"):
            self.order.append(attrs["id"])
        if tag == "h2":
            self.order.append("h2")
        if tag == "div" and attrs.get("class") == "spc-chart":
            self.chart_kpis.append(int(attrs["data-kpi"]))
        if tag == "tr" and "data-spc-kpi" in attrs:
            self._row = {"attrs": attrs, "cells": []}
            self.rows[int(attrs["data-spc-kpi"])] = self._row
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def spc_rows(path: Path) -> SpcRows:
    parser = SpcRows()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser

def spc_chart_specs(page: Path) -> dict[int, dict]:
    """{kpi: the chart's Vega-Lite spec} of the SPC charts of a page."""
    from site_pages import resolve

    text = page.read_text(encoding="utf-8")
    found = {}
    for kpi, spec_text in re.findall(r'<div class="spc-chart" data-kpi="(\d+)">.*?<script type="application/json" '
                                     r'class="vl-spec"[^>]*>(.*?)</script>', text, flags=re.S):
        found[int(kpi)] = resolve(json.loads(spec_text.replace("<\\/", "</")), site_root(page))
    return found


def test_fls_page_has_the_variation_table_after_the_kpis_and_trends_and_one_spc_chart_per_monthly_kpi(
        site, published):
    kpis = published_frame(published, "select kpi_number, kpi_short_name from publication.published_kpi_definitions "
                                      "order by kpi_number")
    summary = published_frame(published, "select * from publication.published_kpi_spc_summary")
    monthly_kpis = sorted(int(k) for k in summary["kpi_number"].unique())
    assert monthly_kpis and set(monthly_kpis) < set(kpis["kpi_number"])   # from the definitions, not KPI 1
    codes = sorted(summary.loc[summary["geography_level"] == "fls", "geography_code"].unique())
    assert len(codes) > 50
    variations = set()
    for level, code, page in ([("fls", c, site / "fls" / f"{c}.html") for c in codes]
                              + [(lvl, c, site / "monthly" / f"{c}.html") for lvl, c in
                                 summary.loc[summary["geography_level"].isin(["national", "country"]),
                                             ["geography_level", "geography_code"]].drop_duplicates()
                                 .itertuples(index=False)]):
        parsed = spc_rows(page)
        mine = summary.loc[(summary["geography_level"] == level) & (summary["geography_code"] == code)]
        expected = sorted(int(k) for k in mine["kpi_number"])
        assert parsed.chart_kpis == expected, (page.name, parsed.chart_kpis)
        assert sorted(spc_chart_specs(page)) == expected, page.name
        if level == "fls":   # a lead reads this year's KPIs, then the trends, then the SPC summary
            text = page.read_text(encoding="utf-8")
            assert text.index('id="kpis"') < text.index('id="trends"') < text.index('id="spc-summary"'), page.name
        else:                # a monthly page opens with it
            assert parsed.order[:2] == ["spc-summary", "h2"], (page.name, parsed.order[:3])
        assert sorted(parsed.rows) == expected
        for r in mine.to_dict("records"):
            row = parsed.rows[int(r["kpi_number"])]
            variation = r["variation"] if isinstance(r["variation"], str) else ""
            assurance = r["assurance"] if isinstance(r["assurance"], str) else ""
            assert row["attrs"]["data-variation"] == variation and row["attrs"]["data-assurance"] == assurance
            text = " ".join(row["cells"])
            words = {"common_cause": "common cause variation", "special_cause_improvement": "improvement",
                     "special_cause_concern": "concern", "consistent_pass": "consistently passes",
                     "consistent_fail": "consistently fails", "inconsistent": "hit and miss", "none": "no target"}
            for value in (variation, assurance):
                assert not value or words[value] in text, (page.name, r["kpi_number"], text)
            if r["is_latest_point_suppressed"]:
                assert "withheld" in row["cells"][2]
            variations.add(variation)
        html = page.read_text(encoding="utf-8")
        assert html.count('<svg width="22" height="22"') >= len(mine.loc[mine["variation"].notna()])
    # The synthetic drift gives the charts real signals: every kind of point is shown somewhere.
    assert {"common_cause", "special_cause_improvement", "special_cause_concern"} <= variations
    assert (site / "monthly" / "index.html").exists()


def test_spc_charts_plot_the_published_points_and_lines_and_no_suppressed_month(site, published):
    monthly = published_frame(published, "select * from publication.published_kpi_monthly")
    kinds = published_frame(published, "select kpi_number, value_type from publication.published_kpi_definitions")
    value_type = dict(zip(kinds["kpi_number"], kinds["value_type"]))
    monthly["month"] = pd.to_datetime(monthly["month_start"]).dt.strftime("%Y-%m-%d")
    # a series ends at its last month with a value: the KPI's last month with one anywhere
    last = monthly.loc[monthly["value_pct"].notna()].groupby("kpi_number")["month"].max()
    monthly = monthly.loc[monthly["month"] <= monthly["kpi_number"].map(last)]
    suppressed_fls = monthly.loc[(monthly["geography_level"] == "fls") & monthly["is_suppressed"]
                                 & (monthly["suppression_reason"] == "complementary")]
    assert len(suppressed_fls) > 10, "the national data set should have complementary suppressed months"
    labels = {"common_cause": "common cause", "special_cause_improvement": "special cause: improvement",
              "special_cause_concern": "special cause: concern"}
    checked = 0
    for (level, code), series in monthly.groupby(["geography_level", "geography_code"]):
        if level not in ("fls", "national", "country"):
            continue
        page = site / ("fls" if level == "fls" else "monthly") / f"{code}.html"
        specs = spc_chart_specs(page)
        for kpi, rows in series.groupby("kpi_number"):
            datasets = specs[int(kpi)]["datasets"]
            points = {p["month"]: p for p in datasets["points"]}
            shown = rows.loc[~rows["is_suppressed"] & rows["value_pct"].notna()]
            assert set(points) == set(shown["month"]), (code, kpi)
            assert not set(points) & set(rows.loc[rows["is_suppressed"], "month"])
            for r in shown.to_dict("records"):
                p = points[r["month"]]
                assert p["value_pct"] == pytest.approx(r["value_pct"], abs=1e-4)
                assert p["point"] == labels.get(r["point_type"], "run chart (no limits)")
            # no line at all when the group's lines are withheld and it has no target
            lines = pd.DataFrame(datasets["lines"], columns=["month", "until", "pct", "line", "segment"])
            # the x-axis ends at the series' last month: no line runs past it
            if len(lines):
                assert lines["until"].max() <= rows.loc[rows["value_pct"].notna() | rows["is_suppressed"], "month"].max()
            for column, segment in (("centre_pct", "mean"), ("lower_limit_pct", "process limits lower"),
                                    ("upper_limit_pct", "process limits upper")):
                drawn = set(lines.loc[lines["segment"].str.startswith(segment + " "), "pct"].round(4))
                expected = rows[column].dropna()
                if column != "centre_pct":     # limits within the range the value can take
                    expected = pd.Series(bounded_curve(expected, value_type[int(kpi)]))
                assert drawn == set(expected.round(4)), (code, kpi, segment)
            target = rows["target_pct"].dropna()
            assert set(lines.loc[lines["line"] == "target", "pct"]) == set(target)
            checked += 1
    assert checked > 700
    # the numbers beside each chart say why a month is withheld, never its counts
    sample = suppressed_fls.iloc[0]
    text = (site / "fls" / f"{sample['geography_code']}.html").read_text(encoding="utf-8")
    month = pd.Timestamp(sample["month_start"]).strftime("%b %Y")
    # (numeric columns are right-aligned by the table's class, not per cell)
    assert re.search(rf"<th scope=\"row\">{month}</th><td><span class=\"withheld\" "
                     rf"data-reason=\"complementary\">{WITHHELD_BECAUSE['complementary']}</span></td>", text)
