"""The published DuckDB file carries the dbt docs as COMMENT ON (flsdb.publish.comments), so that
BI tools show a table's and a column's description (issue 23; issue 25 reads them into Superset)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from flsdb.publish.comments import apply_comments, publication_docs
from flsdb.publish.marts import INFO_TABLE, publish_marts


def comments(db: Path) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        tables = dict(con.execute("select table_name, comment from duckdb_tables() "
                                  "where schema_name = 'publication'").fetchall())
        columns = {(t, c): text for t, c, text in con.execute(
            "select table_name, column_name, comment from duckdb_columns() "
            "where schema_name = 'publication'").fetchall()}
    finally:
        con.close()
    return tables, columns


def test_publication_docs_are_the_yml_descriptions_in_one_line():
    docs = publication_docs()
    assert "published_kpi_results" in docs and "published_kpi_monthly" in docs
    description, columns = docs["published_kpi_results"]
    assert description.startswith("kpi_results as it may be published") and "\n" not in description
    assert columns["value_pct"] == "100 x numerator / denominator. Blank when suppressed."


def test_apply_comments_quotes_and_reports_what_is_undocumented(tmp_path):
    con = duckdb.connect(str(tmp_path / "x.duckdb"))
    con.execute("create schema publication")
    con.execute('create table publication.t (a integer, "b ""quoted""" varchar, c double)')
    undocumented = apply_comments(con, "x", "publication", {
        "t": ("The patient's table; 'quotes' kept.", {"a": "It's a.", 'b "quoted"': "B."})})
    con.close()
    tables, columns = comments(tmp_path / "x.duckdb")
    assert tables == {"t": "The patient's table; 'quotes' kept."}
    assert columns == {("t", "a"): "It's a.", ("t", 'b "quoted"'): "B.", ("t", "c"): None}
    assert undocumented == ["t.c"]


def test_publish_writes_the_dbt_docs_of_every_table_and_column(tmp_path):
    """A warehouse whose publication schema holds two documented tables, one column the yml does
    not document: the published file carries every yml description and publication_info's."""
    warehouse = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse))
    con.execute("create schema publication")
    con.execute("create table publication.published_kpi_results as select 2024 as audit_year, "
                "'fls' as geography_level, 7 as kpi_number, 'all' as breakdown, 55.5::double as value_pct, "
                "null::varchar as suppression_reason, 1 as not_in_the_docs")
    # publication_info counts what suppression withheld, over the yearly results and the months
    con.execute("create table publication.published_kpi_monthly as select 7 as kpi_number, "
                "'small numbers' as suppression_reason")
    con.execute("create table publication.published_records_submitted as select 2024 as audit_year, "
                "100::bigint as records_submitted, date '2025-06-30' as extract_date, "
                "true as is_synthetic_data")
    con.close()
    db = publish_marts(warehouse, tmp_path / "output")
    tables, columns = comments(db)
    docs = publication_docs()
    assert tables["published_kpi_results"] == docs["published_kpi_results"][0]
    assert columns[("published_kpi_results", "value_pct")] == docs["published_kpi_results"][1]["value_pct"]
    assert columns[("published_kpi_results", "not_in_the_docs")] is None
    assert columns[("published_records_submitted", "records_submitted")]
    assert tables[INFO_TABLE] and all(columns[(t, c)] for t, c in columns if t == INFO_TABLE)
    # the yml is what the comments come from: a model the yml describes is described
    spec = yaml.safe_load((Path(__file__).parents[3] / "models" / "publication" /
                           "_publication__models.yml").read_text())
    assert {m["name"] for m in spec["models"]} >= {"published_kpi_results", "published_records_submitted"}


def test_every_table_and_column_of_the_real_publication_has_its_dbt_docs(built_warehouse, tmp_path):
    """On the default build: not one published table or column without a description."""
    db = publish_marts(built_warehouse["warehouse"], tmp_path / "output")
    tables, columns = comments(db)
    assert len(tables) >= 12
    assert [t for t, text in tables.items() if not text] == []
    assert [f"{t}.{c}" for (t, c), text in columns.items() if not text] == []
