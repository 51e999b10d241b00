"""Write the loader's ``raw`` tables as Parquet, for the dbt project's Spark target.

`flsdb load` lands submissions in the ``raw`` schema of the DuckDB warehouse (docs/raw-schema.md).
On Spark the same tables are read from Parquet: this module copies every base table of ``raw``
(``load_files``, ``submission_records``, ``submission_rejects``, ``withdrawals``) to

    <out_dir>/<table>/part-00000.parquet

column for column, names and types unchanged (every contract column stays text, exactly as sent),
rows in load order. ``dbt run-operation register_external_sources --target spark`` then registers
each folder as the external table ``raw.<table>`` that the ``fls_db`` source names (see
docs/spark.md). Views of ``raw`` (``load_file_rejects``) are not exported: they are DuckDB
conveniences that no model reads.

Each table is written to a temporary folder beside its destination and swapped in, so a reader
never sees half a table, and a table that disappeared from ``raw`` is not left behind stale.

    python -m flsdb.spark_export [--warehouse warehouse/flsdb.duckdb] [--out warehouse/spark/raw]

The warehouse is opened read-only: the export never changes it. The files hold the identifiers
of the raw schema (NHS number, date of birth, postcode): protect the folder as the warehouse is.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from flsdb import paths
from flsdb.atomic import swap_in_folder

RAW_SCHEMA = "raw"
# The order in which raw tables are copied: lineage first, so that a reader who sees a record
# file can always find its file row.
TABLE_ORDER = {"load_files": 0, "submission_records": 1, "submission_rejects": 2, "withdrawals": 3}
# Rows in load order, so the Parquet file reads like the warehouse table.
ORDER_BY = {
    "load_files": "load_order, file_sha256",
    "submission_records": "_load_order, _line_number",
    "submission_rejects": "_load_order, _line_number",
    "withdrawals": "withdrawal_id",
}


def default_out_dir() -> Path:
    """Where the Spark target expects the raw layout: $FLSDB_SPARK_RAW or warehouse/spark/raw."""
    value = Path(os.environ.get("FLSDB_SPARK_RAW", "warehouse/spark/raw"))
    return value if value.is_absolute() else paths.PROJECT_DIR / value


@dataclass(frozen=True)
class ExportedTable:
    table: str
    rows: int
    path: Path


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def raw_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The base tables of the raw schema, lineage first."""
    names = [row[0] for row in con.execute(
        "select table_name from information_schema.tables "
        "where table_schema = ? and table_type = 'BASE TABLE'", [RAW_SCHEMA]).fetchall()]
    return sorted(names, key=lambda name: (TABLE_ORDER.get(name, len(TABLE_ORDER)), name))


def export_raw(warehouse: Path | str, out_dir: Path | str) -> list[ExportedTable]:
    """Copy every base table of ``raw`` in `warehouse` to `out_dir`/<table>/ as one Parquet file."""
    warehouse = Path(warehouse)
    out_dir = Path(out_dir)
    if not warehouse.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse}: run `flsdb load` first")
    out_dir.mkdir(parents=True, exist_ok=True)
    exported: list[ExportedTable] = []
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = raw_tables(con)
        if not tables:
            raise RuntimeError(f"{warehouse} has no {RAW_SCHEMA} tables: run `flsdb load` first")
        for table in tables:
            destination = out_dir / table
            staging = out_dir / f".{table}.{uuid.uuid4().hex}.tmp"
            staging.mkdir()
            try:
                order_by = ORDER_BY.get(table)
                query = f"select * from {_quote(RAW_SCHEMA)}.{_quote(table)}"
                if order_by:
                    query += f" order by {order_by}"
                target = staging / "part-00000.parquet"
                con.execute(f"copy ({query}) to {_literal(str(target))} "
                            "(format parquet, compression zstd)")
                rows = con.execute(
                    f"select count(*) from {_quote(RAW_SCHEMA)}.{_quote(table)}").fetchone()[0]
                swap_in_folder(staging, destination)
            finally:
                if staging.exists():
                    shutil.rmtree(staging)
            exported.append(ExportedTable(table, int(rows), destination))
    finally:
        con.close()
    return exported


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flsdb.spark_export",
        description="Write the raw tables of the DuckDB warehouse as Parquet for the Spark target.")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="DuckDB warehouse file [default: $FLSDB_WAREHOUSE or warehouse/flsdb.duckdb]")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder, one sub-folder per table "
                             "[default: $FLSDB_SPARK_RAW or warehouse/spark/raw]")
    args = parser.parse_args(argv)
    warehouse = args.warehouse or paths.warehouse_path()
    out_dir = args.out or default_out_dir()
    for item in export_raw(warehouse, out_dir):
        print(f"raw.{item.table:<20} {item.rows:>10,} rows -> {item.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
