"""Publication: the published tier (BI file + Parquet), the restricted analyst extract, the
`flsdb report` site, suppression. (Secondary suppression: test_publication_suppression.py.)

Uses the session's national warehouse (conftest.built_warehouse); the approval that
`flsdb publish` would write is written here by hand, into a temporary output folder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
import time
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from flsdb.publish.marts import PUBLISHED_DB_NAME, publish_marts, read_manifest
from flsdb.publish.restricted import write_restricted_extract
from flsdb.publish.site import ReportError, build_site
from flsdb.safe_csv import dangerous_cells
from site_pages import every_dataset_row, page_charts, site_root, write_approval

SUPPRESSED_KEY = ["audit_year", "geography_level", "geography_code", "kpi_number", "breakdown",
                  "breakdown_value"]
# What a page says in place of a withheld value, by suppression_reason (templates/macros.html, withheld).
WITHHELD_BECAUSE = {
    "small numbers": "withheld: fewer than 10 patients, or fewer than 5 meeting or missing the KPI",
    "complementary": "withheld so that a small number elsewhere cannot be worked out",
    "most months withheld": "withheld: fewer than half of the months it is computed from are published",
}


def publish_edited_tier(out: Path) -> None:
    """After a test edits the published DuckDB file in place: record its new hash in the manifest,
    as `flsdb publish` would have (the report refuses a file that does not match its manifest)."""
    manifest = read_manifest(out)
    manifest["database_sha256"] = hashlib.sha256((out / "published" / PUBLISHED_DB_NAME).read_bytes()).hexdigest()
    (out / "published" / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def vl_convert_or_skip():
    return pytest.importorskip(
        "vl_convert", reason="vl-convert-python==1.9.0.post1 (it ships the Vega JavaScript that the report "
                             "inlines) is not installed: install the project's pinned requirements")


@pytest.fixture(scope="module")
def published(built_warehouse, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("publication") / "output"
    write_approval(out)
    publish_marts(built_warehouse["warehouse"], out)
    return out


@pytest.fixture(scope="module")
def site(published) -> Path:
    vl_convert_or_skip()
    build_site(published, history=published / "no-history" / "flsdb_history.duckdb")  # never written
    return published / "site"


# ---------------------------------------------------------------------------------------------
# Published marts
# ---------------------------------------------------------------------------------------------

def test_published_file_holds_only_the_publication_schema(published, marts):
    db = published / "published" / PUBLISHED_DB_NAME
    manifest = read_manifest(published)
    expected = {r[0] for r in marts.execute(
        "select table_name from duckdb_tables() where schema_name = 'publication'").fetchall()}
    assert {"published_kpi_results", "published_fls_green_shares", "published_funnel_limits"} <= expected
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = {(r[0], r[1]) for r in con.execute("select schema_name, table_name from duckdb_tables()").fetchall()}
        assert tables == {("publication", t) for t in expected | {"publication_info"}}
        columns = {r[0] for r in con.execute("select column_name from duckdb_columns()").fetchall()}
        assert not columns & {"record_id", "source_file", "line_number", "patient_pseudonym", "lsoa11_code",
                              "fracture_date"}
        (kpis,) = con.execute("select count(*) from publication.published_kpi_definitions").fetchone()
        assert kpis == marts.execute("select count(*) from reference.kpi_definitions").fetchone()[0]
        for entry in manifest["tables"]:
            (rows,) = marts.execute(
                f'select count(*) from "{entry["schema"]}"."{entry["table"]}"').fetchone()
            assert entry["rows"] == rows, entry["table"]
            assert (published / "published" / entry["parquet"]).exists()
            parquet_rows = con.execute(
                f"select count(*) from read_parquet('{published / 'published' / entry['parquet']}')").fetchone()[0]
            assert parquet_rows == rows
        (tags,) = con.execute(
            "select tags from duckdb_databases() where database_name = 'flsdb_published'").fetchone()
        assert tags["storage_version"].startswith("v1.0.0")
    finally:
        con.close()
    assert manifest["is_synthetic"] is True
    assert manifest["extract_date"] and manifest["built_at"]
    assert not list((published / "published").glob(f".{PUBLISHED_DB_NAME}.tmp-*"))


def test_published_results_differ_from_the_marts_only_by_suppressed_cells(published, marts):
    con = duckdb.connect(str(published / "published" / PUBLISHED_DB_NAME), read_only=True)
    try:
        pub = con.execute("select * from publication.published_kpi_results").df()
    finally:
        con.close()
    truth = marts.execute("select * from marts.kpi_results").df()
    both = truth.merge(pub, on=SUPPRESSED_KEY, suffixes=("", "_pub"), validate="one_to_one")
    assert len(both) == len(truth) == len(pub)
    assert (both["is_suppressed"] <= both["is_suppressed_pub"]).all()     # primary kept
    shown = both.loc[~both["is_suppressed_pub"]]
    for column in ("numerator", "denominator", "value_pct", "ci_lower_pct", "ci_upper_pct", "rating",
                   "funnel_lower_95_pct", "is_outlier_alert"):
        a, b = shown[column], shown[f"{column}_pub"]
        assert ((a == b) | (a.isna() & b.isna())).all(), column
    hidden = both.loc[both["is_suppressed_pub"]]
    assert hidden[[f"{c}_pub" for c in ("numerator", "denominator", "value_pct", "rating")]].isna().all().all()


def test_restricted_analyst_extract_is_a_separate_tier_with_new_pseudonyms(published, built_warehouse, marts):
    first = write_restricted_extract(built_warehouse["warehouse"], published)
    assert first == published / "restricted_analyst_extract" and first.stat().st_mode & 0o077 == 0
    readme = (first / "README.txt").read_text(encoding="utf-8")
    assert "NOT FOR PUBLICATION" in readme and "Who may read it" in readme
    assert not list((published / "published").rglob("*restricted*"))
    frame = pd.read_parquet(first / "restricted_analyst_episodes.parquet")
    assert len(frame) == marts.execute("select count(*) from marts.fct_episodes").fetchone()[0]
    assert not set(frame.columns) & {"record_id", "source_file", "line_number", "versions_seen",
                                     "lsoa11_code", "fracture_date", "age_at_fracture"}
    warehouse_pseudonyms = {r[0] for r in marts.execute(
        "select distinct patient_pseudonym from marts.fct_episodes").fetchall()}
    assert not set(frame["patient_pseudonym"]) & warehouse_pseudonyms
    assert frame["patient_pseudonym"].nunique() == len(warehouse_pseudonyms)   # still links a patient
    second = pd.read_parquet(write_restricted_extract(built_warehouse["warehouse"], published)
                             / "restricted_analyst_episodes.parquet")
    assert not set(second["patient_pseudonym"]) & set(frame["patient_pseudonym"])


READER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    def built():
        return str(con.execute("select built_at from publication.publication_info").fetchone()[0])
    print(built(), flush=True)
    for line in sys.stdin:
        print(built() + "|" + str(con.execute("select count(*) from publication.published_kpi_results").fetchone()[0]),
              flush=True)
""")


def test_reader_holding_the_published_file_is_not_disturbed_by_a_republish(published, built_warehouse):
    db = published / "published" / PUBLISHED_DB_NAME
    reader = subprocess.Popen([sys.executable, "-c", READER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        before = reader.stdout.readline().strip()
        time.sleep(1.1)  # built_at has a resolution of one second
        started = time.perf_counter()
        publish_marts(built_warehouse["warehouse"], published)  # must not wait for the reader
        assert time.perf_counter() - started < 120
        reader.stdin.write("again\n")
        reader.stdin.flush()
        still_built, still_rows = reader.stdout.readline().strip().split("|")
        assert still_built == before, "the open reader must keep the version it opened"
        assert int(still_rows) > 0
        fresh = subprocess.run([sys.executable, "-c", READER, str(db)], input="", capture_output=True,
                               text=True, check=True).stdout.strip()
        assert fresh != before, "a new connection must see the new version"
    finally:
        reader.stdin.close()
        reader.wait(timeout=30)
    new_con = duckdb.connect(str(db), read_only=True)
    try:
        (after,) = new_con.execute("select built_at from publication.publication_info").fetchone()
    finally:
        new_con.close()
    assert str(after) == fresh
    # The Parquet link always points at a complete version.
    assert (published / "published" / "parquet" / "published_kpi_results.parquet").exists()


# ---------------------------------------------------------------------------------------------
# The site
# ---------------------------------------------------------------------------------------------

class RowCells(HTMLParser):
    """Cells of the <tr data-kpi=...> rows of a page, by KPI number."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, dict] = {}
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-kpi" in attrs:
            self._row = {"attrs": attrs, "cells": []}
            self.rows.setdefault(attrs["data-kpi"], self._row)
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


def kpi_rows(path: Path) -> dict[str, dict]:
    parser = RowCells()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.rows


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


def test_every_page_carries_the_synthetic_banner_and_no_cdn(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 75
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "SYNTHETIC DATA" in text, page
        assert not re.search(r"""(src|href)=["']https?://""", text), page


def test_report_refuses_without_an_approved_extract(published, tmp_path):
    with pytest.raises(ReportError, match="no approval"):
        build_site(tmp_path)
    unapproved = tmp_path / "out"
    write_approval(unapproved, status="rejected")
    with pytest.raises(ReportError, match="not approved"):
        build_site(unapproved)
    from flsdb.cli import main

    result = CliRunner().invoke(main, ["report", "--output", str(tmp_path)])
    assert result.exit_code != 0 and "no approval" in result.output


def _suppressed_keys(marts) -> set[tuple]:
    frame = marts.execute(f"select {', '.join(SUPPRESSED_KEY)} from marts.kpi_results where is_suppressed").df()
    return {tuple(r) for r in frame.itertuples(index=False)}


def test_no_published_file_contains_a_suppressed_count(site, marts, published):
    suppressed = _suppressed_keys(marts)
    assert suppressed, "the national data set should have some suppressed results"
    con = duckdb.connect(str(published / "published" / PUBLISHED_DB_NAME), read_only=True)
    try:
        frame = con.execute(f"select {', '.join(SUPPRESSED_KEY)} from publication.published_kpi_results "
                            "where is_suppressed").df()
    finally:
        con.close()
    published_suppressed = {tuple(r) for r in frame.itertuples(index=False)}
    assert suppressed < published_suppressed      # primary, and complements on top
    downloads = site / "downloads"
    for path in (downloads / "published_kpi_results.csv.zip", downloads / "published_kpi_results.parquet"):
        frame = (pd.read_csv(path, dtype={"breakdown_value": str}, keep_default_na=False, na_values=[""])
                 if path.suffix == ".zip" else pd.read_parquet(path))
        flagged = frame.loc[frame["is_suppressed"].astype(str).str.lower() == "true"]
        assert {tuple(r) for r in flagged[SUPPRESSED_KEY].itertuples(index=False)} == published_suppressed
        for column in ("numerator", "denominator", "value_pct", "ci_lower_pct", "ci_upper_pct", "rating",
                       "is_outlier_alert", "is_outlier_alarm"):
            assert flagged[column].isna().all(), (path.name, column)
    comp = pd.read_csv(downloads / "published_kpi_data_completeness.csv.zip")
    small = comp.loc[comp["is_suppressed"]]
    assert len(small) and small[["records_measured", "records_recorded", "completeness_pct"]].isna().all().all()
    suppressed = published_suppressed

    # Charts: no data point of a suppressed result anywhere in the site (the pages' own rows and
    # the shared datasets they load).
    checked_rows = 0
    for where, row in every_dataset_row(site):
        if "geography_code" in row and "breakdown" in row and row.get("value_pct") is not None:
            level = next((lvl for lvl in ("national", "country", "region", "fls")
                          if (row["audit_year"], lvl, row["geography_code"], row["kpi_number"],
                              row["breakdown"], row["breakdown_value"]) in suppressed), None)
            assert level is None, (where, row)
            checked_rows += 1
    assert checked_rows > 3_000

    # Tables: an FLS page says the value is withheld and why, never the numbers, for a suppressed result.
    con = duckdb.connect(str(published / "published" / PUBLISHED_DB_NAME), read_only=True)
    reasons = {tuple(r[:-1]): r[-1] for r in con.execute(
        f"select {', '.join(SUPPRESSED_KEY)}, suppression_reason from publication.published_kpi_results "
        "where is_suppressed").fetchall()}
    con.close()
    fls_suppressed = [k for k in suppressed if k[1] == "fls" and k[4] == "all" and k[0] == 2024]
    checked = 0
    for year, _, code, kpi, _, _ in fls_suppressed:
        page = site / "fls" / f"{code}.html"
        cells = kpi_rows(page)[str(kpi)]["cells"]
        assert cells[2] == WITHHELD_BECAUSE[reasons[(year, "fls", code, kpi, "all", "all")]], (code, kpi, cells)
        assert cells[3] == cells[4] == "withheld", (code, kpi, cells)
        true_num, true_den = marts.execute(
            "select numerator, denominator from marts.kpi_results where audit_year = ? and geography_level = 'fls' "
            "and geography_code = ? and kpi_number = ? and breakdown = 'all'", [year, code, kpi]).fetchone()
        assert f"{int(true_num)} / {int(true_den)}" not in page.read_text(encoding="utf-8")
        checked += 1
    assert checked > 0


def test_every_page_that_withholds_a_value_says_why(site):
    """A page with a withheld value in a table carries the reason (templates/macros.html, withheld)."""
    saying_why = 0
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        if re.search(r"<td[^>]*>(<[^>]+>)*withheld", text):
            reasons = set(re.findall(r'<span class="withheld" data-reason="([a-z ]+)">([^<]+)</span>', text))
            assert reasons, page
            assert all(WITHHELD_BECAUSE[reason] == words for reason, words in reasons), (page, reasons)
            saying_why += 1
    assert saying_why > 50


NHS_LIKE = re.compile(r"(?<![\d.])\d{3}[ -]?\d{3}[ -]?\d{4}(?![\d.])")
POSTCODE_LIKE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}\b")
DATE_LIKE = re.compile(r"\b(?:19|20)\d\d-\d\d-\d\d\b")


def test_no_published_file_contains_an_identifier(site, published, marts):
    raw = marts.execute(
        'select distinct "1.01 NHS Number", upper(replace("1.04 Post Code", \' \', \'\')), '
        '"1.02 Date of Birth" from raw.submission_records').fetchall()
    nhs = {re.sub(r"\D", "", str(r[0])) for r in raw if r[0]}
    postcodes = {r[1] for r in raw if r[1]}
    births = {str(r[2])[:10] for r in raw if r[2]}
    assert len(nhs) > 1000 and len(postcodes) > 1000 and len(births) > 1000

    source_files = {r[0] for r in marts.execute("select distinct source_file from marts.fct_episodes").fetchall()}
    assert len(source_files) > 50
    text_files = [p for p in list(site.rglob("*")) + list((published / "published").rglob("*"))
                  if p.is_file() and (p.suffix in {".html", ".csv", ".json"} or p.parent.name == "data")]
    assert [p for p in text_files if p.suffix == ".js"], "the shared chart data (data/*.js) is scanned too"
    assert text_files
    texts = [(path, path.read_text(encoding="utf-8")) for path in text_files]
    for archive in site.rglob("*.csv.zip"):       # the downloads' CSVs, zipped
        with zipfile.ZipFile(archive) as opened:
            texts += [(archive, opened.read(name).decode("utf-8")) for name in opened.namelist()]
    assert len(texts) > len(text_files) + 10
    for path, text in texts:
        assert not [f for f in source_files if f in text], path       # file names stay inside
        assert not {re.sub(r"\D", "", m) for m in NHS_LIKE.findall(text)} & nhs, path
        assert not {m.replace(" ", "") for m in POSTCODE_LIKE.findall(text)} & postcodes, path
        assert not set(DATE_LIKE.findall(text)) & births, path

    # Binary files (Parquet, the BI DuckDB file): no identifier column, no identifier value.
    con = duckdb.connect()
    try:
        parquet_files = list(site.rglob("*.parquet")) + list((published / "published" / "parquet").glob("*.parquet"))
        con.execute(f"attach '{published / 'published' / PUBLISHED_DB_NAME}' as pub (read_only)")
        sources = [f"read_parquet('{p}')" for p in parquet_files]
        sources += [f'pub."{s}"."{t}"' for s, t in con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'pub'").fetchall()]
        con.register("nhs", pd.DataFrame({"v": sorted(nhs)}))
        con.register("pc", pd.DataFrame({"v": sorted(postcodes)}))
        for source in sources:
            columns = con.execute(f"describe select * from {source}").fetchall()
            for column in columns:
                assert not re.fullmatch(r".*nhs.*|(.*_)?post_?code|.*birth.*|dob", column[0].lower()), (source, column)
            for name, kind, *_ in columns:
                if kind == "VARCHAR":
                    (hits,) = con.execute(
                        f'select count(*) from (select distinct upper(replace(regexp_replace("{name}", \'[ -]\', \'\', \'g\'), \' \', \'\')) as v '
                        f"from {source}) as s where v in (select v from nhs) or v in (select v from pc)").fetchone()
                    assert hits == 0, (source, name)
    finally:
        con.close()


def test_every_value_on_the_site_is_escaped(published, tmp_path):
    """A hostile name in the published tables reaches the site as text, never as markup."""
    vl_convert_or_skip()
    payload = '<img src=x onerror="alert(1)">&<script>alert(2)</script>'
    out = tmp_path / "output"
    shutil.copytree(published, out, symlinks=True)
    con = duckdb.connect(str(out / "published" / PUBLISHED_DB_NAME))
    try:
        con.execute("update publication.published_fls set fls_name = ?, region_name = ? where fls_code = 'SYN001'",
                    [payload, payload])
        con.execute("update publication.published_kpi_results set geography_name = ? "
                    "where geography_level = 'region'", [payload])
        con.execute("update publication.published_kpi_monthly set geography_name = ? "
                    "where geography_level = 'country'", [payload])
        con.execute("update publication.published_kpi_spc_summary set variation = ?, assurance = ? "
                    "where geography_code = 'SYN001' and kpi_number = 4", [payload, payload])
    finally:
        con.close()
    publish_edited_tier(out)
    build_site(out)
    pages = [out / "site" / "fls" / "SYN001.html", out / "site" / "fls" / "index.html",
             out / "site" / "national-geography.html", out / "site" / "monthly" / "E92000001.html"]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<img src=x" not in text and "<script>alert" not in text, page
        assert "&lt;img src=x onerror=" in text, page


def unzipped_csvs(folder: Path, into: Path) -> list[Path]:
    """The CSVs of the downloads: data_dictionary.csv and each <table>.csv.zip's CSV, extracted."""
    import zipfile

    found = sorted(folder.glob("*.csv"))
    for archive in sorted(folder.glob("*.csv.zip")):
        with zipfile.ZipFile(archive) as opened:
            assert opened.namelist() == [archive.name[:-len(".zip")]], archive.name
            found.append(Path(opened.extract(opened.namelist()[0], into)))
    return found


def test_csv_downloads_are_neutralised_against_formula_injection(site, tmp_path):
    # The rule itself is tested in test_hostile_input.py (flsdb.safe_csv); here, its use.
    csvs = unzipped_csvs(site / "downloads", tmp_path)
    assert len(csvs) > 10
    for path in csvs:
        assert dangerous_cells(path) == [], path.name
    dictionary = pd.read_csv(site / "downloads" / "data_dictionary.csv")
    text_columns = set(dictionary.loc[dictionary["type"] == "text", "column"]) | {"description", "table"}
    for path in csvs:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        for column in set(frame.columns) & text_columns:
            assert not frame[column].str.match(r"^[=+\-@\t\r]").any(), (path.name, column)
        for column in set(frame.columns) - text_columns:  # numbers and booleans: never a sign-led formula
            assert not frame[column].str.match(r"^[=+@\t\r]").any(), (path.name, column)
    results = pd.read_csv(site / "downloads" / "published_kpi_results.csv.zip", nrows=1)
    assert set(results.columns) <= set(dictionary["column"])


# ---------------------------------------------------------------------------------------------
# A real browser
# ---------------------------------------------------------------------------------------------

def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (make test installs it: apt-get install -y chromium)")


def render(browser: str, page: Path, work: Path, screenshot: Path) -> tuple[str, str]:
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              "--no-first-run", "--disable-extensions", f"--user-data-dir={work / 'profile'}",
              "--virtual-time-budget=20000", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-3000:]
    shot = subprocess.run([*common, "--window-size=1280,2400", f"--screenshot={screenshot}", page.as_uri()],
                          capture_output=True, text=True, timeout=180)
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-3000:]
    return dom.stdout, dom.stderr


@pytest.mark.parametrize("page", ["index.html", "fls/SYN001.html", "monthly/K04000001.html"])
def test_pages_render_their_charts_in_a_headless_browser(site, page, tmp_path):
    browser = chromium()
    screenshots = site.parent / "screenshots"
    screenshots.mkdir(exist_ok=True)
    shot = screenshots / (page.replace("/", "_").replace(".html", ".png"))
    dom, log = render(browser, site / page, tmp_path, shot)
    total = int(re.search(r'data-charts-total="(\d+)"', dom).group(1))
    rendered = int(re.search(r'data-charts-rendered="(\d+)"', dom).group(1))
    assert total >= 2 and rendered == total, (rendered, total)
    errors = json.loads(re.search(r'<pre id="console-errors">(.*?)</pre>', dom, flags=re.S).group(1))
    assert errors == [], errors
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", log), log[-3000:]
    assert dom.count("<svg") >= total
    if page != "index.html":   # the SPC charts (one per monthly KPI) are among those drawn
        spc_charts = re.findall(r'<div class="spc-chart" data-kpi="\d+">\s*<figure class="chart">\s*'
                                r'<figcaption>[^<]*</figcaption>\s*(<div class="vl-chart[^"]*"[^>]*>)', dom)
        drawn = [c for c in spc_charts if 'data-rendered="true"' in c]
        assert len(spc_charts) >= 10 and len(drawn) == len(spc_charts), (len(drawn), len(spc_charts))
    assert "SYNTHETIC DATA" in dom
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


# ---------------------------------------------------------------------------------------------
# Outliers (issue 15): adjusted funnels, caterpillar plots, the outlier register; and the page
# "Changes since the last extract" (issue 14 part 5)
# ---------------------------------------------------------------------------------------------

def published_table(published: Path, name: str) -> pd.DataFrame:
    con = duckdb.connect(str(published / "published" / PUBLISHED_DB_NAME), read_only=True)
    try:
        return con.execute(f"select * from publication.{name}").df()
    finally:
        con.close()


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


def test_outlier_register_is_published_without_suppressed_results(published, marts):
    register = published_table(published, "published_outlier_register")
    assert len(register) >= 20
    assert not {"status_decided_by", "status_note", "is_suppressed"} & set(register.columns)
    results = published_table(published, "published_kpi_results")
    fls = results.loc[(results["geography_level"] == "fls") & (results["breakdown"] == "all")]
    published_ok = {(int(r.audit_year), r.geography_code, int(r.kpi_number))
                    for r in fls.loc[~fls["is_suppressed"]].itertuples()}
    internal = marts.execute("select audit_year, fls_code, kpi_number, status, value_pct "
                             "from marts.outlier_register").df()
    expected = {(int(r.audit_year), r.fls_code, int(r.kpi_number)) for r in internal.itertuples()} & published_ok
    got = {(int(r.audit_year), r.fls_code, int(r.kpi_number)) for r in register.itertuples()}
    assert got == expected
    # Every register row is an alert of published_kpi_results, with its value and the same status.
    alerts = fls.loc[fls["is_outlier_alert"].fillna(False).astype(bool)]
    assert got == {(int(r.audit_year), r.geography_code, int(r.kpi_number)) for r in alerts.itertuples()}
    merged = register.merge(internal, on=["audit_year", "fls_code", "kpi_number"], suffixes=("", "_internal"))
    assert (merged["status"] == merged["status_internal"]).all()
    assert merged["value_pct"].to_numpy() == pytest.approx(merged["value_pct_internal"].to_numpy())


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


@pytest.mark.parametrize("page", ["national-funnels.html", "national-caterpillars.html", "outlier-register.html",
                                  "changes.html", "fls/SYN002.html"])
def test_outlier_and_change_pages_render_in_a_headless_browser(site, page, tmp_path):
    browser = chromium()
    screenshots = site.parent / "screenshots"
    screenshots.mkdir(exist_ok=True)
    shot = screenshots / (page.replace("/", "_").replace(".html", ".png"))
    dom, log = render(browser, site / page, tmp_path, shot)
    total = int(re.search(r'data-charts-total="(\d+)"', dom).group(1))
    rendered = int(re.search(r'data-charts-rendered="(\d+)"', dom).group(1))
    assert rendered == total, (rendered, total)
    errors = json.loads(re.search(r'<pre id="console-errors">(.*?)</pre>', dom, flags=re.S).group(1))
    assert errors == [], errors
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", log), log[-3000:]
    assert dom.count("<svg") >= total
    if page == "national-funnels.html":
        assert total >= 5
        # the unadjusted limits are drawn dotted, the adjusted ones solid (no dash array)
        assert re.search(r'<path[^>]*stroke-dasharray="2,3"', dom), "no dotted line drawn"
    if page in ("national-caterpillars.html", "fls/SYN002.html"):
        assert total >= (9 if page == "national-caterpillars.html" else 3)
    if page == "outlier-register.html":
        assert "data-status=" in dom
    assert shot.stat().st_size > 10_000


def test_report_refuses_a_published_file_that_is_not_its_manifests(published, tmp_path):
    """The report copies the published DuckDB file once and checks it against the manifest's hash
    (a tier half-swapped by a publisher killed between its renames is never rendered)."""
    out = tmp_path / "output"
    shutil.copytree(published, out, symlinks=True)
    with duckdb.connect(str(out / "published" / PUBLISHED_DB_NAME)) as con:
        con.execute("update publication.published_records_submitted set records_submitted = records_submitted + 1")
    with pytest.raises(ReportError, match="not whole"):
        build_site(out, history=tmp_path / "none.duckdb")
    assert not (out / "site").exists()


def test_outlier_pages_escape_published_names(published, tmp_path):
    vl_convert_or_skip()
    payload = '<img src=x onerror="alert(1)">&<script>alert(2)</script>'
    out = tmp_path / "output"
    shutil.copytree(published, out, symlinks=True)
    con = duckdb.connect(str(out / "published" / PUBLISHED_DB_NAME))
    try:
        (code,) = con.execute("select min(fls_code) from publication.published_outlier_register").fetchone()
        con.execute("update publication.published_outlier_register set fls_name = ?", [payload])
        con.execute("update publication.published_kpi_results set geography_name = ? "
                    "where geography_level = 'fls' and geography_code = ?", [payload, code])
    finally:
        con.close()
    publish_edited_tier(out)
    build_site(out, history=tmp_path / "none.duckdb")
    for page in ("outlier-register.html", "national-caterpillars.html", f"fls/{code}.html"):
        text = (out / "site" / page).read_text(encoding="utf-8")
        assert "<img src=x" not in text and "<script>alert" not in text, page
    assert "&lt;img src=x onerror=" in (out / "site" / "outlier-register.html").read_text(encoding="utf-8")

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


def published_frame(published: Path, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(published / "published" / PUBLISHED_DB_NAME), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


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
            lines = pd.DataFrame(datasets["lines"])
            # the x-axis ends at the series' last month: no line runs past it
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
    assert re.search(rf"<th scope=\"row\">{month}</th><td class=\"num\"><span class=\"withheld\" "
                     rf"data-reason=\"complementary\">{WITHHELD_BECAUSE['complementary']}</span></td>", text)
