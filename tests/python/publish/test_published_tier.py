"""The published tier (BI file + Parquet) and the restricted analyst extract (flsdb.publish.marts,
restricted): only the publication schema, differing from the marts only by suppressed cells, a
reader holding the file undisturbed by a republish, the outlier register without suppressed
results. (Secondary suppression: test_suppression.py; the site: test_site*.py.)

Uses the session's national warehouse, published by published_site.py's module fixture.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import duckdb
import pandas as pd
import pytest

from flsdb.publish.marts import PUBLISHED_DB_NAME, publish_marts, read_manifest
from flsdb.publish.restricted import write_restricted_extract
from published_site import published  # noqa: F401  (a module fixture: the national warehouse published)
from published_site import SUPPRESSED_KEY, published_table


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
