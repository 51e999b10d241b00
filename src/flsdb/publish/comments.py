"""The dbt docs of the publication models, written into the published DuckDB file as comments.

A table's and a column's description is written once, in
models/publication/_publication__models.yml. `flsdb publish` copies it into the published file with
`COMMENT ON TABLE` / `COMMENT ON COLUMN` (`apply_comments`), so that a BI tool reading the file
(Superset, Metabase, DBeaver, `duckdb -readonly`: `duckdb_tables()`, `duckdb_columns()`) shows it
as the description. `make bi` fills its Superset datasets' descriptions from these comments.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import yaml

from flsdb import paths

MODELS_YML = Path("models") / "publication" / "_publication__models.yml"

#: {table: (table description, {column: column description})}
TableDocs = dict[str, tuple[str, dict[str, str]]]


def _words(text: object) -> str:
    return " ".join(str(text or "").split())


def publication_docs(models_yml: Path | None = None) -> TableDocs:
    """The description of every publication model and of its columns, from the dbt docs (yml)."""
    spec = yaml.safe_load((models_yml or paths.PROJECT_DIR / MODELS_YML).read_text(encoding="utf-8"))
    return {model["name"]: (_words(model.get("description")),
                            {column["name"]: _words(column.get("description"))
                             for column in model.get("columns", [])})
            for model in spec["models"]}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def apply_comments(con: duckdb.DuckDBPyConnection, catalog: str, schema: str, docs: TableDocs) -> list[str]:
    """COMMENT ON every table of catalog.schema, and on each of its columns, that `docs` describes.
    Returns the `table` and `table.column` names left without a description."""
    undocumented = []
    columns = con.execute(
        "select table_name, column_name from duckdb_columns() "
        "where database_name = ? and schema_name = ? order by table_name, column_index",
        [catalog, schema]).fetchall()
    for table in dict.fromkeys(table for table, _ in columns):
        name = f"{_quote(catalog)}.{_quote(schema)}.{_quote(table)}"
        description, column_docs = docs.get(table, ("", {}))
        if description:
            con.execute(f"comment on table {name} is {_literal(description)}")
        else:
            undocumented.append(table)
        for column in (c for t, c in columns if t == table):
            if column_docs.get(column):
                con.execute(f"comment on column {name}.{_quote(column)} is {_literal(column_docs[column])}")
            else:
                undocumented.append(f"{table}.{column}")
    return undocumented
