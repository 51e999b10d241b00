"""What the report site reads: the tables of the published tier, as they are.

Every number on the site comes from the published DuckDB file (flsdb.publish.marts), whose
tables are the warehouse's publication models (models/publication/): suppression (primary and
complementary), the shares of FLSs rated green and the funnel curves are computed there, in SQL.
This module only reads them, and writes them out again as the site's downloads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from flsdb import paths
from flsdb.publish.comments import publication_docs
from flsdb.publish.marts import PUBLICATION_SCHEMA
from flsdb.safe_csv import neutralise_frame

#: The publication tables offered as downloads, in the order listed.
DOWNLOADS = ("published_kpi_results", "published_kpi_data_completeness", "published_fls_green_shares",
             "published_funnel_limits", "published_records_submitted", "published_fls",
             "published_kpi_definitions",
             "published_outlier_register")
#: The monthly series and SPC summaries (issue 14 part 4), offered as downloads too.
SPC_DOWNLOADS = ("published_kpi_monthly", "published_kpi_spc_summary")
DOWNLOADS = DOWNLOADS + SPC_DOWNLOADS
TYPE_WORDS = {"VARCHAR": "text", "BOOLEAN": "boolean", "DATE": "date", "INTEGER": "integer",
              "BIGINT": "integer", "DOUBLE": "number"}


@dataclass
class SiteData:
    results: pd.DataFrame          # published_kpi_results (suppressed cells already blank)
    completeness: pd.DataFrame     # published_kpi_data_completeness
    green_shares: pd.DataFrame     # published_fls_green_shares
    funnel_limits: pd.DataFrame    # published_funnel_limits
    records: dict[int, int]        # published_records_submitted
    fls: pd.DataFrame              # published_fls
    kpis: pd.DataFrame             # published_kpi_definitions
    years: list[int]
    is_synthetic: bool
    extract_date: str | None
    built_at: str | None
    limits: tuple[float, float]    # the suppression vars, to describe the rule in words
    outlier_register: pd.DataFrame | None = None  # published_outlier_register (issue 15)
    monthly: pd.DataFrame | None = None      # published_kpi_monthly (SPC charts)
    spc_summary: pd.DataFrame | None = None  # published_kpi_spc_summary


def suppression_limits() -> tuple[float, float]:
    """(minimum denominator, maximum small count): the dbt vars, quoted in the site's footer."""
    project = yaml.safe_load((paths.PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    project_vars = project["vars"]
    return (float(project_vars["suppression_min_denominator"]),
            float(project_vars["suppression_max_small_count"]))


def _table(con: duckdb.DuckDBPyConnection, name: str, order: str) -> pd.DataFrame:
    return con.execute(f'select * from {PUBLICATION_SCHEMA}."{name}" order by {order}').df()


def load_site_data(db_path: Path) -> SiteData:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        results = _table(con, "published_kpi_results",
                         "audit_year, geography_level, geography_code, kpi_number, breakdown, breakdown_value")
        data = dict(
            completeness=_table(con, "published_kpi_data_completeness", "fls_code, audit_year, field_order"),
            green_shares=_table(con, "published_fls_green_shares", "audit_year, kpi_number"),
            funnel_limits=_table(con, "published_funnel_limits", "audit_year, kpi_number, step_number"),
            fls=_table(con, "published_fls", "fls_code"),
            kpis=_table(con, "published_kpi_definitions", "kpi_number"),
        )
        data["outlier_register"] = _table(con, "published_outlier_register",
                                          "kpi_number, audit_year, fls_code")  # issue 15
        data.update(
            monthly=_table(con, "published_kpi_monthly", "geography_level, geography_code, kpi_number, month_start"),
            spc_summary=_table(con, "published_kpi_spc_summary", "geography_level, geography_code, kpi_number"),
        )
        records = dict(con.execute(f"select audit_year, records_submitted from "
                                   f"{PUBLICATION_SCHEMA}.published_records_submitted").fetchall())
        info = con.execute(f"select built_at, extract_date, is_synthetic_data "
                           f"from {PUBLICATION_SCHEMA}.publication_info").fetchone()
    finally:
        con.close()
    return SiteData(
        results=results, records={int(k): int(v) for k, v in records.items()},
        years=sorted(int(y) for y in results["audit_year"].unique()),
        is_synthetic=bool(results["is_synthetic_data"].any()) or bool(info[2]),
        extract_date=str(info[1]) if info[1] is not None else None,
        built_at=str(info[0]) if info[0] is not None else None, limits=suppression_limits(), **data)


def column_descriptions() -> dict[str, dict[str, str]]:
    """{model: {column: description}} from the publication models' yml: the documentation of a
    published column lives there once (flsdb.publish.comments)."""
    return {model: columns for model, (_, columns) in publication_docs().items()}


def write_downloads(db_path: Path, folder: Path) -> list[Path]:
    """Each publication table as CSV (neutralised against spreadsheet formulas) and Parquet, as
    published, and a data dictionary of their columns."""
    folder.mkdir(parents=True, exist_ok=True)
    described = column_descriptions()
    written, dictionary = [], []
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        for name in DOWNLOADS:
            relation = con.table(f'{PUBLICATION_SCHEMA}."{name}"')
            frame = relation.df()
            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet")
            neutralise_frame(frame).to_csv(folder / f"{name}.csv", index=False, na_rep="")
            written += [folder / f"{name}.csv", folder / f"{name}.parquet"]
            for column, kind in zip(relation.columns, relation.types):
                dictionary.append({"file": f"{name}.csv / .parquet", "column": column,
                                   "type": TYPE_WORDS.get(str(kind), str(kind).lower()),
                                   "description": described.get(name, {}).get(column, "")})
    finally:
        con.close()
    neutralise_frame(pd.DataFrame(dictionary)).to_csv(folder / "data_dictionary.csv", index=False)
    written.append(folder / "data_dictionary.csv")
    return written
