"""The national warehouse published into a temporary output folder (`published`) and its site built
with no extract history (`site`): the module fixtures of the publication and site tests
(test_published_tier.py, test_site_charts.py, test_site_safety.py, test_site_browser.py,
test_site.py), and the helpers they share.

Uses the session's national warehouse (conftest.built_warehouse); the approval that
`flsdb publish` would write is written here by hand (site_pages.write_approval). A module that
imports `published` and `site` gets its own copy of each (module scope), so a test may change them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from flsdb.publish.marts import PUBLISHED_DB_NAME, publish_marts, read_manifest
from flsdb.publish.site import build_site
from site_pages import write_approval

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


def published_table(published: Path, name: str) -> pd.DataFrame:
    con = duckdb.connect(str(published / "published" / PUBLISHED_DB_NAME), read_only=True)
    try:
        return con.execute(f"select * from publication.{name}").df()
    finally:
        con.close()


def published_frame(published: Path, sql: str) -> pd.DataFrame:
    con = duckdb.connect(str(published / "published" / PUBLISHED_DB_NAME), read_only=True)
    try:
        return con.execute(sql).df()
    finally:
        con.close()
