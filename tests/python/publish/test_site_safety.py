"""What the report site must never show or run, and what it refuses (flsdb.publish.site): no
suppressed count and no identifier in any published file, every withheld value saying why, every
published name escaped, CSV downloads neutralised against formula injection, the synthetic banner
and no CDN on every page; no site without an approved extract or from a published file that is not
its manifest's.

Uses the session's national warehouse, published and rendered by published_site.py's module fixtures.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from flsdb.publish.marts import PUBLISHED_DB_NAME
from flsdb.publish.site import ReportError, build_site
from flsdb.safe_csv import dangerous_cells
from site_pages import every_dataset_row, kpi_rows, write_approval
from published_site import published, site  # noqa: F401  (module fixtures: the national warehouse published, its site)
from published_site import SUPPRESSED_KEY, WITHHELD_BECAUSE, publish_edited_tier, vl_convert_or_skip


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


def test_report_refuses_a_published_file_that_is_not_its_manifests(published, tmp_path):
    """The report copies the published DuckDB file once and checks it against the manifest's hash
    (a tier half-swapped by a publisher killed between its renames is never rendered)."""
    out = tmp_path / "output"
    shutil.copytree(published, out, symlinks=True, ignore=shutil.ignore_patterns("site"))
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
