"""The report site as an FLS lead, an analyst and a newcomer read it (issue 23), its pieces
(issue 24 point 3) and its re-rendering of only what changed (issue 21).

The first tests need no warehouse (the rules on hand-made rows, the module graph, the README);
the others read the site built from the session's national warehouse (conftest.built_warehouse),
published into a temporary output folder (published_site.py), as the other site tests are.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
import shutil
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flsdb import paths
from flsdb.publish.marts import PUBLISHED_DB_NAME
from site_pages import page_charts, payloads
# The same fixtures as the publication tests: the national warehouse published into a temporary
# output folder (`published`), and its site built with no extract history (`site`).
from published_site import publish_edited_tier, published, published_frame, site  # noqa: F401

PUBLISH = paths.PROJECT_DIR / "src" / "flsdb" / "publish"
MAX_SITE_BYTES = 15_000_000
MAX_PAGE_BYTES = 300_000


# ---------------------------------------------------------------------------------------------
# Rules on hand-made rows (no warehouse)
# ---------------------------------------------------------------------------------------------

def test_limits_are_drawn_within_the_range_the_value_can_take():
    from flsdb.publish import charts as ch
    from flsdb.publish import charts_spc as spc

    values = pd.Series([-10.0, 50.0, 120.0, None])
    assert list(ch.bounded(values, "proportion").fillna(-1)) == [0.0, 50.0, 100.0, -1]
    assert list(ch.bounded(values, "ratio_to_expected").fillna(-1)) == [0.0, 50.0, 120.0, -1]
    assert list(ch.bounded_values(values, ["proportion", "proportion", "ratio_to_expected", "proportion"])[:3]) == [
        0.0, 50.0, 120.0]
    assert ch.bounded_pair(-3.2, 104.0, "proportion") == (0.0, 100.0)
    curve = pd.DataFrame({"denominator": [10.0, 20.0], **{c: [-5.0, 105.0] for c in ch.FUNNEL_LINES}})
    drawn = pd.DataFrame(ch.funnel_limits(curve, "proportion"))
    assert drawn[ch.FUNNEL_LINES].min().min() == 0.0 and drawn[ch.FUNNEL_LINES].max().max() == 100.0
    months = [{"month": f"2024-{m:02d}-01", "value_pct": 40.0, "point_type": "common_cause", "numerator": 4,
               "denominator": 10.0, "spc_group": 1, "is_suppressed": False, "centre_pct": 40.0,
               "lower": 0.0, "upper": 100.0, "target_pct": 80.0} for m in range(1, 13)]
    lines = pd.DataFrame(spc.spc_data(months)["lines"])
    assert lines["pct"].between(0, 100).all()
    # one segment per line; none runs past the last month, so neither does the x-axis
    assert sorted(lines["segment"]) == ["mean 1", "process limits lower 1", "process limits upper 1", "target"]
    assert set(lines["month"]) == {"2024-01-01"} and set(lines["until"]) == {"2024-12-01"}


def test_withheld_spc_lines_and_latest_point_say_why_where_the_lines_would_be():
    """A group whose mean and limits are withheld (published_kpi_monthly.spc_lines_withheld_reason)
    draws no line: a note under the chart says why, and its months' table says `withheld`; the
    summary's withheld latest point and assurance say why too (docs/specification/kpi-definitions.md,
    "SPC lines")."""
    from types import SimpleNamespace

    from flsdb.publish import charts_spc as spc
    from flsdb.publish import site_spc

    def month(m, group, suppressed, lines_reason):
        shown = lines_reason is None
        return {"month": f"2024-{m:02d}-01", "value_pct": None if suppressed else 40.0, "point_type": None,
                "numerator": None if suppressed else 4, "denominator": None if suppressed else 10.0,
                "spc_group": group, "is_suppressed": suppressed,
                "suppression_reason": "small numbers" if suppressed else None,
                "centre_pct": 40.0 if shown else None, "lower": 0.0 if shown else None,
                "upper": 90.0 if shown else None, "target_pct": 80.0,
                "spc_lines_withheld": not shown, "spc_lines_withheld_reason": lines_reason}

    months = ([month(m, 1, m != 3, "most months withheld") for m in range(1, 7)]
              + [month(m, 2, m == 9, "complementary") for m in range(7, 10)]
              + [month(m, 3, False, None) for m in range(10, 13)])
    data = SimpleNamespace(decimals=lambda kpi: 0, kpi_name={4: "FLS assessment within 90 days"})
    rows = [r["cells"] for r in site_spc.month_table(data, 4, months, "by month")["rows"]]
    most = 'data-reason="most months withheld">withheld: fewer than half of the months it is computed from are published'
    complement = 'data-reason="complementary">withheld so that a small number elsewhere cannot be worked out'
    assert all(cells[4] == cells[5] == "withheld" for cells in rows[:9]), rows[:9]
    assert [cells[4] for cells in rows[9:]] == ["40.0%"] * 3 and rows[9][5] == "0.0% to 90.0%"
    assert 'data-reason="small numbers"' in str(rows[0][1]) and rows[2][1] == "40.0%"
    notes = [str(note) for note in site_spc._withheld_lines(months)]
    assert len(notes) == 2 and notes[0].startswith("Mean and process limits, Jan 2024 to Jun 2024: ") and most in notes[0]
    assert notes[1].startswith("Mean and process limits, Jul 2024 to Sep 2024: ") and complement in notes[1]
    # no line is drawn for the withheld groups: only group 3's and the target
    segments = {line["segment"] for line in spc.spc_data(months)["lines"]}
    assert segments == {"mean 3", "process limits lower 3", "process limits upper 3", "target"}, segments
    summary = {"is_latest_point_suppressed": True, "latest_point_suppression_reason": "complementary",
               "spc_lines_withheld": True, "spc_lines_withheld_reason": "most months withheld",
               "variation": None, "assurance": None, "latest_value_pct": None,
               "latest_point_month_start": pd.Timestamp("2024-12-01"), "points": 12, "target_pct": 80.0}
    cells, _ = site_spc._summary_row(data, 4, summary)
    assert complement in str(cells[2]) and str(cells[2]).endswith("(Dec 2024)"), cells[2]
    assert str(cells[4]).startswith("latest month <span") and complement in str(cells[4]), cells[4]
    assert most in str(cells[5]), cells[5]


def test_a_series_ends_at_its_last_month_with_a_value():
    from flsdb.publish.site_data import trim_empty_months

    def month(level, code, kpi, m, value, suppressed=False):
        return {"geography_level": level, "geography_code": code, "kpi_number": kpi,
                "month_start": pd.Timestamp(f"2024-{m:02d}-01"), "value_pct": value, "is_suppressed": suppressed}

    rows = ([month("national", "K", 2, m, 50.0 if m <= 9 else None) for m in range(1, 13)]
            + [month("fls", "A", 2, m, 40.0 if m <= 7 else None, suppressed=m == 11) for m in range(1, 13)]
            + [month("fls", "B", 2, m, 40.0 if m <= 5 else None) for m in range(1, 13)]
            + [month("fls", "C", 2, m, 40.0 if m <= 6 else None, suppressed=m == 7) for m in range(1, 13)]
            + [month("national", "K", 4, m, 60.0 if m <= 3 else None) for m in range(1, 13)])
    kept = trim_empty_months(pd.DataFrame(rows))
    last = kept.groupby(["geography_code", "kpi_number"])["month_start"].max().dt.month.to_dict()
    # KPI 2's data end in September: A's suppressed November lies past it; B stopped in May; C's
    # suppressed July is kept (it has a value, withheld). KPI 4's data end in March.
    assert last == {("K", 2): 9, ("A", 2): 9, ("B", 2): 5, ("C", 2): 7, ("K", 4): 3}
    assert len(kept) == 9 + 9 + 5 + 7 + 3


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("flsdb"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("flsdb"))
    return found


def test_no_module_imports_a_module_that_imports_it_and_the_site_modules_are_short():
    package = paths.PROJECT_DIR / "src" / "flsdb"
    modules = {".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__"): p
               for p in package.rglob("*.py")}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}

    def reaches(start: str, goal: str, seen: set) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False
    cycles = sorted(name for name in graph if reaches(name, name, set()))
    assert cycles == [], cycles
    site_modules = sorted(PUBLISH.glob("site*.py")) + sorted(PUBLISH.glob("charts*.py"))
    assert len(site_modules) >= 8
    for path in site_modules:
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines <= 400, (path.name, lines)
    assert "hasattr" not in "".join(p.read_text(encoding="utf-8") for p in site_modules)


def _table_blocks(text: str) -> list[list[tuple[int, str]]]:
    blocks, current = [], []
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("|"):
            current.append((number, line.strip()))
        elif current:
            blocks.append(current)
            current = []
    return blocks + ([current] if current else [])


def test_readme_tables_render_no_row_is_split_off_by_a_blank_line():
    text = (paths.PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    in_code = False
    prose = []
    for line in text.splitlines():
        in_code = not in_code if line.startswith("```") else in_code
        prose.append("" if in_code or line.startswith("```") else line)
    blocks = _table_blocks("\n".join(prose))
    assert len(blocks) >= 4
    for block in blocks:
        (first, header), *rest = block
        assert rest and re.fullmatch(r"\|(\s*:?-{3,}:?\s*\|)+", rest[0][1]), (
            f"README.md line {first}: a table row with no header above it (a blank line splits a table?)")
        columns = header.count("|")
        for number, row in rest:
            assert row.replace("\\|", "").count("|") == columns, f"README.md line {number}: {row[:60]}"


# ---------------------------------------------------------------------------------------------
# The site of the national data
# ---------------------------------------------------------------------------------------------

def test_site_meets_the_size_targets(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 75
    total = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    assert total <= MAX_SITE_BYTES, f"site {total / 1e6:.1f} MB"
    biggest = max(pages, key=lambda p: p.stat().st_size)
    assert biggest.stat().st_size <= MAX_PAGE_BYTES, (biggest.name, biggest.stat().st_size)
    # the data every FLS page draws from the whole country is written once, not in every page
    shared = {p.name for p in (site / "data").glob("*.js")}
    assert any(n.startswith("funnel-") for n in shared) and any(n.startswith("caterpillar-") for n in shared)
    whole_country = 0
    for page in (site / "fls").glob("SYN*.html"):
        for caption, payload in payloads(page):
            if "caterpillar" in caption or "funnel plot" in caption:
                assert payload["shared"] and all(len(d["rows"]) <= 1 for d in payload["datasets"].values()), caption
                whole_country += 1
    assert whole_country > 100


def _cells(html: str, section: str) -> dict[str, list[str]]:
    body = re.search(rf'<section id="{section}".*?</section>', html, re.S).group(0)
    rows = {}
    for kpi, row in re.findall(r'<tr data-kpi="(\d+)"[^>]*>(.*?)</tr>', body, re.S):
        rows[kpi] = [" ".join(re.sub(r"<[^>]+>", "", c).split()) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
    return rows


def test_fls_page_reads_in_a_leads_order_and_compares_kpi_1_like_with_like(site, published):
    results = published_frame(published, "select * from publication.published_kpi_results where audit_year = 2024 "
                                         "and breakdown = 'all'")
    fls = results.loc[results["geography_level"] == "fls"]
    kpi1 = fls.loc[(fls["kpi_number"] == 1) & ~fls["is_suppressed"]]
    median = kpi1["value_pct"].median()
    national_kpi1 = results.loc[(results["geography_level"] == "national") & (results["kpi_number"] == 1),
                                "value_pct"].iloc[0]
    assert round(median, 1) != round(national_kpi1, 1)   # the two measures differ: the test can tell
    order = ['id="kpis"', 'id="trends"', 'id="spc-summary"', 'id="outliers"', 'id="spc-charts"',
             'id="completeness"']
    for code in ("SYN001", "SYN012", "SYN042"):
        html = (site / "fls" / f"{code}.html").read_text(encoding="utf-8")
        positions = [html.index(marker) for marker in order]
        assert positions == sorted(positions), code
        rows = _cells(html, "kpis")
        mine = fls.loc[fls["geography_code"] == code].set_index("kpi_number")
        # KPI 1: the service's share of key fields beside the median FLS's share, met / not met
        assert rows["1"][7] == f"{median:.1f}% (median of {len(kpi1)} FLSs)", rows["1"]
        assert rows["1"][8] in ("✔ Met", "✖ Not met")
        # KPI 7: the gap to its target in points
        r7 = mine.loc[7]
        if not r7["is_suppressed"]:
            assert rows["7"][5] == f"{r7['target_pct']:.0f}%"
            assert rows["7"][6].startswith(f"{r7['value_pct'] - r7['target_pct']:+.1f} points")
            assert rows["7"][7] == f"{r7['national_value_pct']:.1f}%"
        assert "Outlier flags" not in html and "outlier flag" not in html


def test_fls_pages_show_a_funnel_plot_for_each_outlier_kpi_once(site, published):
    register = published_frame(published, "select * from publication.published_outlier_register "
                                          "where audit_year = 2024")
    assert register["outlier_direction"].nunique() == 2
    codes = sorted(register["fls_code"].unique())
    assert len(codes) > 10
    with_more_than_one = 0
    for code in codes:
        page = site / "fls" / f"{code}.html"
        expected = sorted(int(k) for k in register.loc[register["fls_code"] == code, "kpi_number"])
        funnels = [int(re.search(r"KPI (\d+) funnel plot", c).group(1)) for c, _ in payloads(page)
                   if "funnel plot" in c]
        assert sorted(funnels) == expected and len(set(funnels)) == len(funnels), (code, funnels, expected)
        html = page.read_text(encoding="utf-8")
        assert html.count('<div class="outlier"') == len(expected)
        with_more_than_one += len(expected) > 1
        for caption, spec in page_charts(page):
            if "funnel plot" in caption:
                ringed = spec["datasets"]["highlight"]
                assert [r["geography_code"] for r in ringed] == [code]
    assert with_more_than_one > 0, "no FLS is an outlier on two KPIs: the test shows too little"
    # an FLS with no outlier this year has no funnel plot and says so
    quiet = min({p.stem for p in (site / "fls").glob("SYN*.html")} - set(codes))
    assert 'id="no-outliers"' in (site / "fls" / f"{quiet}.html").read_text(encoding="utf-8")
    assert not [c for c, _ in payloads(site / "fls" / f"{quiet}.html") if "funnel plot" in c]


def test_no_chart_runs_past_the_last_month_with_a_value(site, published):
    monthly = published_frame(published, "select kpi_number, month_start, value_pct from "
                                         "publication.published_kpi_monthly")
    last = monthly.loc[monthly["value_pct"].notna()].groupby("kpi_number")["month_start"].max()
    last_words = {int(k): pd.Timestamp(v).strftime("%Y-%m-%d") for k, v in last.items()}
    after = pd.Timestamp(last.max()) + pd.offsets.MonthBegin(1)
    checked = 0
    for page in [*(site / "monthly").glob("*.html"), *(site / "fls").glob("SYN*.html")]:
        html = page.read_text(encoding="utf-8")
        assert after.strftime("%b %Y") not in html, page.name     # neither in a caption nor a table
        for caption, spec in page_charts(page):
            kpi = re.match(r"KPI (\d+): .*monthly SPC chart", caption)
            if kpi:
                months = [r["month"] for r in spec["datasets"]["points"]]
                months += [r["until"] for r in spec["datasets"]["lines"]]
                # a chart whose months and lines are all withheld (KPI 3 has no target line) draws nothing
                assert max(months, default="") <= last_words[int(kpi.group(1))], (page.name, caption)
                checked += 1
    assert checked > 700


def test_every_chart_says_where_its_table_is(site):
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "beside this chart" not in html, page.name
    funnels = (site / "national-funnels.html").read_text(encoding="utf-8")
    rows = funnels.count('data-funnel-status="')
    assert rows > 500   # every FLS of every funnel plot is in its table, not only the outliers
    assert funnels.count('data-funnel-status="within limits"') > rows / 2


def test_first_extract_changes_page_says_there_is_no_earlier_extract(site, published, built_warehouse, tmp_path):
    from flsdb.publish import history as hist
    from flsdb.publish.site import build_site

    text = (site / "changes.html").read_text(encoding="utf-8")
    assert "There is no earlier extract to compare with." in text and 'id="no-previous-extract"' in text
    out = tmp_path / "output"
    shutil.copytree(published, out, symlinks=True, ignore=shutil.ignore_patterns("site"))
    history = tmp_path / "history.duckdb"
    hist.record_published_extract(built_warehouse["warehouse"], history, dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc))
    build_site(out, history=history)
    text = " ".join((out / "site" / "changes.html").read_text(encoding="utf-8").split())
    assert "There is no earlier extract to compare with." in text
    assert "is the first one recorded in the extract history" in text
    # no table of changes; the one table is who signed off each extract (docs/review.md)
    page = text.split("<main>")[1]
    assert "<table" not in page.split('id="signoffs"')[0] and page.count("<table") == 1
    assert 'data-reviewer=""' in page and "not recorded (published before sign-offs were kept)" in page


def test_downloads_offer_every_published_table_with_a_plain_dictionary(site, published):
    tables = set(published_frame(published, "select table_name from duckdb_tables() "
                                            "where schema_name = 'publication'")["table_name"])
    assert {"published_geography", "publication_info", "published_kpi_results"} <= tables
    downloads = site / "downloads"
    for name in tables:
        parquet = pd.read_parquet(downloads / f"{name}.parquet")
        with zipfile.ZipFile(downloads / f"{name}.csv.zip") as archive:
            assert archive.namelist() == [f"{name}.csv"]
        csv = pd.read_csv(downloads / f"{name}.csv.zip")
        assert len(csv) == len(parquet) and list(csv.columns) == list(parquet.columns), name
        assert f'href="{name}.csv.zip"' in (downloads / "index.html").read_text(encoding="utf-8")
    dictionary = pd.read_csv(downloads / "data_dictionary.csv", keep_default_na=False)
    assert set(dictionary["table"]) == tables
    assert not dictionary["description"].str.contains("`").any()
    assert (dictionary["description"] != "").mean() > 0.9
    geography = dictionary.loc[dictionary["table"] == "published_geography"]
    assert geography["description"].str.contains("W92000004").any()
    assert (dictionary.loc[dictionary["table"] == "publication_info", "description"] != "").all()
    assert set(json.loads((site / "site.json").read_text(encoding="utf-8"))["downloads"]) == tables


def _inodes(site: Path) -> dict[str, int]:
    return {str(p.relative_to(site)): p.stat().st_ino for p in site.rglob("*") if p.is_file()}


def test_report_renders_and_writes_only_what_changed(published, built_warehouse, tmp_path):
    pytest.importorskip("vl_convert")
    from flsdb.publish import history as hist
    from flsdb.publish.site import build_site

    out = tmp_path / "output"
    shutil.copytree(published, out, symlinks=True, ignore=shutil.ignore_patterns("site"))
    history = tmp_path / "history.duckdb"
    build_site(out, history=history)
    site = out / "site"
    first, folder = _inodes(site), site.stat().st_ino
    # nothing changed: nothing is written, the site is not even swapped
    build_site(out, history=history)
    assert _inodes(site) == first and site.stat().st_ino == folder
    # the extract history changed: only the changes page (and site.json) are written again
    hist.record_published_extract(built_warehouse["warehouse"], history, dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc))
    build_site(out, history=history)
    second = _inodes(site)
    assert {k for k in first if first[k] != second.get(k)} == {"changes.html", "site.json", ".build.json"}
    # one FLS renamed in the published tier: its pages change, every page whose content is the
    # same is linked from the previous site, not written; the Vega bundle is not rebuilt
    con = duckdb.connect(str(out / "published" / PUBLISHED_DB_NAME))
    try:
        con.execute("update publication.published_fls set fls_name = 'Renamed FLS' where fls_code = 'SYN005'")
    finally:
        con.close()
    publish_edited_tier(out)
    build_site(out, history=history)
    third = _inodes(site)
    changed = {k for k in second if second[k] != third.get(k)}
    assert {"fls/SYN005.html", "fls/index.html"} <= changed
    assert "fls/SYN001.html" not in changed and "assets/vega-bundle.js" not in changed
    assert "Renamed FLS" in (site / "fls" / "SYN005.html").read_text(encoding="utf-8")
    assert len(changed) < 10, sorted(changed)
    # a page edited by hand is neither kept nor linked again: the next build writes it anew
    (site / "fls" / "SYN003.html").write_text("edited by hand", encoding="utf-8")
    build_site(out, history=history)
    assert "edited by hand" not in (site / "fls" / "SYN003.html").read_text(encoding="utf-8")
    assert _inodes(site)["fls/SYN001.html"] == third["fls/SYN001.html"]


def test_monthly_pages_show_the_seasonal_profile_that_is_published(site, published, tmp_path):
    from flsdb.publish.site import build_site

    assert 'id="seasonal-profile"' in (site / "monthly" / "K04000001.html").read_text(encoding="utf-8")
    out = tmp_path / "output"
    shutil.copytree(published, out, symlinks=True, ignore=shutil.ignore_patterns("site"))
    con = duckdb.connect(str(out / "published" / PUBLISHED_DB_NAME))
    try:   # a planted profile in place of the published one: kpi_number, month_of_year, share, years_used
        con.execute("""
            create or replace table publication.published_kpi_seasonal_profile as
            select kpi.kpi_number, month.month_of_year,
                   case when kpi.kpi_number = 2 then (case when month.month_of_year = 1 then 0.12 else 0.08 end)
                        else 1.0 / 12 end as share,
                   case when kpi.kpi_number = 2 then 2 else 0 end as years_used
            from (values (2), (3)) as kpi (kpi_number), range(1, 13) as month (month_of_year)
        """)
    finally:
        con.close()
    publish_edited_tier(out)
    build_site(out, history=tmp_path / "none.duckdb")
    html = (out / "site" / "monthly" / "K04000001.html").read_text(encoding="utf-8")
    section = re.search(r'<section class="seasonal-profile" id="seasonal-profile">(.*?)</section>', html, re.S)
    assert section, "no seasonal profile on the national monthly page"
    text = " ".join(re.sub(r"<[^>]+>", " ", section.group(1)).split())
    assert "January 12.0% 8.3%" in text and "February 8.0% 8.3%" in text
    assert "2 complete audit years" in text and "no complete audit year" in text
    assert 'id="seasonal-profile"' in (out / "site" / "monthly" / "E92000001.html").read_text(encoding="utf-8")
    assert (out / "site" / "downloads" / "published_kpi_seasonal_profile.parquet").exists()


def test_a_standalone_site_inlines_what_each_page_draws(published, tmp_path):
    pytest.importorskip("vl_convert")
    from flsdb.publish.site import build_site

    out = tmp_path / "output"
    shutil.copytree(published, out, symlinks=True, ignore=shutil.ignore_patterns("site"))
    build_site(out, standalone=True, history=tmp_path / "none.duckdb")
    page = out / "site" / "fls" / "SYN001.html"
    html = page.read_text(encoding="utf-8")
    assert "<script src=" not in html and not (out / "site" / "data").exists()
    assert "FLSDB.specs[" in html and "FLSDB.data[" in html and "vegaEmbed" in html
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    import subprocess

    alone = tmp_path / "alone.html"
    shutil.copy(page, alone)        # a page on its own, away from the site, still draws every chart
    dom = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                          f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=20000", "--dump-dom",
                          alone.as_uri()], capture_output=True, text=True, timeout=180).stdout
    total = int(re.search(r'data-charts-total="(\d+)"', dom).group(1))
    assert total >= 10 and f'data-charts-rendered="{total}"' in dom


def test_readme_example_queries_run_on_the_published_file(published):
    """The README's BI examples query the published file's tables (schema publication), which a
    BI user has; the history's own examples query the history file."""
    text = (paths.PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    history_tables = ("changes_since_last_extract", "kpi_result_history", "extracts", "outlier_history")
    con = duckdb.connect(str(published / "published" / PUBLISHED_DB_NAME), read_only=True)
    ran = 0
    try:
        for block in re.findall(r"```sql\n(.*?)```", text, re.S):
            if any(t in block for t in history_tables):
                continue
            assert "marts." not in block, block[:200]
            for statement in (s.strip() for s in block.split(";")):
                if re.sub(r"--[^\n]*", "", statement).strip():
                    con.execute(statement).fetchall()
                    ran += 1
    finally:
        con.close()
    assert ran >= 6
