"""The site's downloads (downloads/): every table of the published tier, as published, with a
data dictionary.

- Each table of the publication schema (published_* and publication_info: whatever the
  published file holds, so a new publication model is offered with no edit here) as Parquet
  (typed, exact) and as CSV, zipped (`<table>.csv.zip` holds `<table>.csv`; text cells are
  neutralised against spreadsheet formulas, flsdb.safe_csv). Zipped because the CSVs of the
  national data are ten times their zipped size: pandas reads the zip as it is
  (`pd.read_csv("published_kpi_results.csv.zip")`).
- data_dictionary.csv: one row per column of every table, with its type and its description:
  the published file's own column comment when it has one, else the publication model's yml
  (models/publication/_publication__models.yml; publication_info's in flsdb.publish.marts),
  in plain text (no Markdown).
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flsdb.publish.cells import table
from flsdb.publish.comments import plain, publication_docs
from flsdb.publish.marts import INFO_DOCS, INFO_TABLE, PUBLICATION_SCHEMA
from flsdb.publish.site_data import published_tables
from flsdb.publish.site_render import Renderer
from flsdb.safe_csv import neutralise_frame

#: The tables listed first, in this order; any other published table follows, by name.
FIRST = ("published_kpi_results", "published_kpi_definitions", "published_fls", "published_geography",
         "published_kpi_data_completeness", "published_fls_green_shares", "published_funnel_limits",
         "published_outlier_register", "published_kpi_monthly", "published_kpi_spc_summary",
         "published_records_submitted", INFO_TABLE)
TYPE_WORDS = {"VARCHAR": "text", "BOOLEAN": "boolean", "DATE": "date", "INTEGER": "integer",
              "BIGINT": "integer", "DOUBLE": "number", "TIMESTAMP WITH TIME ZONE": "timestamp (UTC)"}
#: A zip's entries carry a date; a fixed one keeps the same table's zip byte for byte the same.
ZIP_DATE = (2000, 1, 1, 0, 0, 0)


def first_sentence(text: str) -> str:
    """What a table holds, in its description's first sentence (the rest is for developers)."""
    match = re.match(r"(.+?\.)(\s|$)", text)
    return match.group(1) if match else text


def documented() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """({table: description}, {table: {column: description}}) of the publication models (their yml,
    flsdb.publish.comments) and of publication_info (flsdb.publish.marts)."""
    docs = {**publication_docs(), INFO_TABLE: (plain(INFO_DOCS[0]), {c: plain(d) for c, d in INFO_DOCS[1].items()})}
    return ({table: description for table, (description, _) in docs.items()},
            {table: columns for table, (_, columns) in docs.items()})


def ordered_tables(names) -> list[str]:
    present = set(names)
    return [t for t in FIRST if t in present] + sorted(present - set(FIRST))


def _zipped_csv(frame: pd.DataFrame, name: str) -> bytes:
    text = neutralise_frame(frame).to_csv(index=False, na_rep="")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(f"{name}.csv", date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), buffer)
    return buffer.getvalue().to_pybytes()


def downloads(db_path: Path) -> tuple[dict[str, bytes], list[dict], list[dict]]:
    """({file name: content}, the tables [{name, description, rows, files}], the dictionary rows)."""
    table_words, column_words = documented()
    files: dict[str, bytes] = {}
    tables, dictionary = [], []
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        comments = {(t, c): plain(comment) for t, c, comment in con.execute(
            "select table_name, column_name, comment from duckdb_columns() where schema_name = ? "
            "and comment is not null and comment <> ''", [PUBLICATION_SCHEMA]).fetchall()}
        for name in ordered_tables(published_tables(con)):
            relation = con.table(f'{PUBLICATION_SCHEMA}."{name}"')
            frame = relation.df()
            files[f"{name}.parquet"] = _parquet(frame)
            files[f"{name}.csv.zip"] = _zipped_csv(frame, name)
            tables.append({"name": name, "description": first_sentence(table_words.get(name, "")), "rows": len(frame),
                           "files": [f"{name}.csv.zip", f"{name}.parquet"]})
            for column, kind in zip(relation.columns, relation.types):
                dictionary.append({"table": name, "column": column,
                                   "type": TYPE_WORDS.get(str(kind), str(kind).lower()),
                                   "description": comments.get((name, column))
                                   or column_words.get(name, {}).get(column, "")})
    finally:
        con.close()
    files["data_dictionary.csv"] = neutralise_frame(pd.DataFrame(dictionary)).to_csv(index=False).encode("utf-8")
    return files, tables, dictionary


def write_downloads(db_path: Path, folder: Path) -> list[Path]:
    """The download files, written to `folder` (for a look without the site)."""
    folder.mkdir(parents=True, exist_ok=True)
    files, _, _ = downloads(db_path)
    written = []
    for name, content in files.items():
        (folder / name).write_bytes(content)
        written.append(folder / name)
    return written


def downloads_page(db_path: Path, out: Renderer) -> None:
    files, tables, dictionary = downloads(db_path)
    for name, content in files.items():
        out.write(f"downloads/{name}", content)
    sizes = {name: len(content) for name, content in files.items()}
    for entry in tables:
        entry["files"] = [(name, f"{sizes[name] / 1e6:.1f} MB" if sizes[name] >= 1e5 else f"{sizes[name] / 1e3:.0f} kB")
                          for name in entry["files"]]
    rows = [[r["table"], r["column"], r["type"], r["description"]] for r in dictionary]
    out.page("downloads/index.html", "downloads.html", "Downloads: publication tables", "downloads",
             tables=tables, dictionary=table("Data dictionary", ["table", "column", "type", "description"], rows))
