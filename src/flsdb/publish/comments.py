"""The dbt docs of the publication models, written into the published DuckDB file as comments.

A table's and a column's description is written once, in
models/publication/_publication__models.yml. `flsdb publish` copies it into the published file with
`COMMENT ON TABLE` / `COMMENT ON COLUMN` (`apply_comments`), so that a BI tool reading the file
(Superset, Metabase, DBeaver, `duckdb -readonly`: `duckdb_tables()`, `duckdb_columns()`) shows it
as the description. `make bi` fills its Superset datasets' descriptions from these comments.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import yaml

from flsdb import paths

MODELS_YML = Path("models") / "publication" / "_publication__models.yml"

#: {table: (table description, {column: column description})}
TableDocs = dict[str, tuple[str, dict[str, str]]]


def plain(text: object) -> str:
    """A yml description as plain text for a BI tool or a spreadsheet: Markdown code marks and
    emphasis dropped, on one line."""
    text = re.sub(r"`([^`]*)`", r"\1", str(text or ""))
    text = re.sub(r"\*\*([^*]+)\*\*|\*([^*]+)\*", lambda m: m.group(1) or m.group(2), text)
    return " ".join(text.split())


def publication_docs(models_yml: Path | None = None) -> TableDocs:
    """The description of every publication model and of its columns, from the dbt docs (yml), in
    plain text."""
    spec = yaml.safe_load((models_yml or paths.PROJECT_DIR / MODELS_YML).read_text(encoding="utf-8"))
    return {model["name"]: (plain(model.get("description")),
                            {column["name"]: plain(column.get("description"))
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
