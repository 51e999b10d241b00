"""Publish the publication schema to a separate, read-only DuckDB file and Parquet, atomically.

`flsdb publish` calls `publish_marts` once the quality gate has approved an extract. It copies
exactly the tables of the warehouse's `publication` schema (models/publication/: aggregates
only, small-number suppression applied, no record ID, file name or pseudonym) and nothing else:
no mart, no row-level table. BI tools (Superset, Metabase, any DuckDB client) and `flsdb report`
read what this writes, never the warehouse that `dbt build` writes, so:

- a reader never blocks a build: the published file is a different file from the warehouse;
- a reader never sees a half-written version: the new DuckDB file is written in full to a
  temporary file in the same folder, checkpointed, fsynced and then renamed over the old one
  with `os.replace` (an atomic rename on POSIX). A reader that already holds the old file open
  keeps reading the old inode, undisturbed; every new connection opens the new file;
- the Parquet folder `parquet/` is a symbolic link to a versioned folder. A new version is
  written beside it in full, then the link is swapped atomically (`os.replace` of a new link).
  The previous version is kept (a reader may still be scanning it); older ones are removed.

`stage_tier` writes the new version (DuckDB file and Parquet folder) beside the published one,
invisible; `StagedTier.swap` then makes it the published one, and `StagedTier.discard` removes
it. flsdb.publish.release does both under the publication lock (flsdb.publish.lock), with the
gate, the restricted extract and the history; `publish_marts` is the two steps alone.

The published DuckDB file is written with storage version v1.0.0, so any DuckDB 1.x (1.0 and
later, including the drivers BI tools embed, such as duckdb-engine) can open it. DuckDB 2.x
can read it too.

Layout of `output_dir/published/`:

    flsdb_published.duckdb  schema publication: every table of the warehouse's publication
                            schema, and publication_info (metadata of this publication)
    parquet/<table>.parquet
    manifest.json           tables, row counts, extract date, built_at, is_synthetic

The pseudonymised row-level extract for analysts is not published: flsdb.publish.restricted
writes it to its own tier.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from flsdb.atomic import fsync_path, sha256_of
from flsdb.publish import lock
from flsdb.publish.comments import apply_comments, publication_docs

PUBLISHED_DB_NAME = "flsdb_published.duckdb"
PARQUET_LINK_NAME = "parquet"
MANIFEST_NAME = "manifest.json"
STORAGE_VERSION = "v1.0.0"
#: The one schema that leaves the building (models/publication/).
PUBLICATION_SCHEMA = "publication"
#: Written by this module beside the copied tables.
INFO_TABLE = "publication_info"
#: Its documentation (the other tables' is the dbt docs of models/publication/), as COMMENT ON.
INFO_DOCS = (
    "Metadata of this publication, written by flsdb publish beside the publication tables.",
    {"built_at": "When flsdb publish wrote this file (UTC).",
     "extract_date": "Extract date of the published data (the latest of published_records_submitted).",
     "is_synthetic_data": "True when the published data is SYNTHETIC (made up by flsdb generate).",
     "storage_version": "DuckDB storage version of this file: v1.0.0, readable by DuckDB 1.0 and later.",
     "duckdb_version": "Version of DuckDB that wrote this file.",
     # the information loss (INFORMATION_LOSS_SQL), as `flsdb publish` prints it
     "results": "Yearly KPI results published (rows of published_kpi_results).",
     "results_withheld_small_numbers": "Yearly results withheld because their own numbers are small.",
     "results_withheld_complementary": "Yearly results withheld as complements, so that a small one "
                                       "cannot be worked out from its totals.",
     "fls_headline_results": "FLS headline results (one FLS, all patients) published.",
     "fls_headline_withheld_small_numbers": "FLS headline results withheld because their numbers are small.",
     "fls_headline_withheld_complementary": "FLS headline results withheld as complements.",
     "months": "Monthly values published (rows of published_kpi_monthly).",
     "months_withheld_small_numbers": "Monthly values withheld because their numbers are small.",
     "months_withheld_complementary": "Monthly values withheld as complements."},
)


def published_dir(output_dir: Path) -> Path:
    return Path(output_dir) / "published"


def published_db_path(output_dir: Path) -> Path:
    return published_dir(output_dir) / PUBLISHED_DB_NAME


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _source_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema, table) of every base table of the publication schema."""
    rows = con.execute(
        """
        select table_schema, table_name from information_schema.tables
        where table_catalog = 'src' and table_type = 'BASE TABLE' and table_schema = ?
        order by table_name
        """,
        [PUBLICATION_SCHEMA],
    ).fetchall()
    tables = [(r[0], r[1]) for r in rows if r[1] != INFO_TABLE]
    names = {t for _, t in tables}
    if not {"published_kpi_results", "published_records_submitted"} <= names:
        raise RuntimeError("the warehouse has no publication tables (models/publication/): "
                           "run `dbt build` first")
    return tables


def _write_database(warehouse_path: Path, tmp_db: Path, built_at: str) -> dict:
    """Copy the tables into a new DuckDB file at tmp_db; return the manifest facts."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach {duckdb_literal(warehouse_path)} as src (read_only)")
        con.execute(f"attach {duckdb_literal(tmp_db)} as pub (storage_version '{STORAGE_VERSION}')")
        tables = _source_tables(con)
        manifest_tables = []
        schema = _quote(PUBLICATION_SCHEMA)
        con.execute(f"create schema if not exists pub.{schema}")
        for source_schema, table in tables:
            con.execute(
                f"create table pub.{schema}.{_quote(table)} as "
                f"select * from src.{_quote(source_schema)}.{_quote(table)}"
            )
            (rows,) = con.execute(f"select count(*) from pub.{schema}.{_quote(table)}").fetchone()
            columns = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'pub' "
                "and table_schema = ? and table_name = ? order by ordinal_position",
                [PUBLICATION_SCHEMA, table]).fetchall()]
            manifest_tables.append({"schema": PUBLICATION_SCHEMA, "table": table, "rows": rows,
                                    "columns": columns})

        (extract_date, is_synthetic) = con.execute(
            f"select max(extract_date), bool_or(is_synthetic_data) "
            f"from pub.{schema}.published_records_submitted").fetchone()
        extract_date = extract_date.isoformat() if extract_date is not None else None
        is_synthetic = bool(is_synthetic) if is_synthetic is not None else None
        audit_years = [r[0] for r in con.execute(
            f"select distinct audit_year from pub.{schema}.published_kpi_results order by 1").fetchall()]

        con.execute(
            f"""
            create table pub.{schema}.{INFO_TABLE} as
            select ?::timestamptz as built_at, ?::date as extract_date, ?::boolean as is_synthetic_data,
                   ? as storage_version, ? as duckdb_version, loss.*
            from ({INFORMATION_LOSS_SQL.format(schema=f"pub.{schema}")}) as loss
            """,
            [built_at, extract_date, is_synthetic, STORAGE_VERSION, duckdb.__version__],
        )
        # Descriptions for BI tools: the dbt docs, as COMMENT ON TABLE / COLUMN.
        apply_comments(con, "pub", PUBLICATION_SCHEMA, {**publication_docs(), INFO_TABLE: INFO_DOCS})
        con.execute("checkpoint pub")
        con.execute("detach pub")
        con.execute("detach src")
    finally:
        con.close()
    return {"tables": manifest_tables, "extract_date": extract_date, "is_synthetic": is_synthetic,
            "audit_years": audit_years}


#: What suppression cost (docs/bi.md, "Suppression"): cells withheld by reason, over all yearly results
#: and at FLS headline level (geography fls, breakdown all), and over the months of the monthly series.
INFORMATION_LOSS_SQL = """
    select
        count(*) as results,
        count(*) filter (where suppression_reason = 'small numbers') as results_withheld_small_numbers,
        count(*) filter (where suppression_reason = 'complementary') as results_withheld_complementary,
        count(*) filter (where geography_level = 'fls' and breakdown = 'all') as fls_headline_results,
        count(*) filter (where geography_level = 'fls' and breakdown = 'all'
                         and suppression_reason = 'small numbers') as fls_headline_withheld_small_numbers,
        count(*) filter (where geography_level = 'fls' and breakdown = 'all'
                         and suppression_reason = 'complementary') as fls_headline_withheld_complementary,
        (select count(*) from {schema}.published_kpi_monthly) as months,
        (select count(*) from {schema}.published_kpi_monthly where suppression_reason = 'small numbers')
            as months_withheld_small_numbers,
        (select count(*) from {schema}.published_kpi_monthly where suppression_reason = 'complementary')
            as months_withheld_complementary
    from {schema}.published_kpi_results
"""


def information_loss(db_path: Path) -> str:
    """The information loss of a published file, in words (what `flsdb publish` prints)."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        cursor = con.execute(f"select * from {PUBLICATION_SCHEMA}.{INFO_TABLE}")
        row = dict(zip([column[0] for column in cursor.description], cursor.fetchone()))
    finally:
        con.close()

    def line(label: str, total: str, prefix: str) -> str:
        small, complement = int(row[f"{prefix}_withheld_small_numbers"]), int(row[f"{prefix}_withheld_complementary"])
        return (f"  {label:<22}{small + complement:>7,} of {int(row[total]):>7,} withheld: {small:,} for small numbers, "
                f"{complement:,} as complements")

    return "\n".join(["Information loss (cells withheld):", line("results", "results", "results"),
                      line("FLS headline results", "fls_headline_results", "fls_headline"),
                      line("monthly series", "months", "months")])


def duckdb_literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _write_parquet(db_path: Path, tables: list[dict], folder: Path) -> None:
    folder.mkdir(parents=True)
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        for entry in tables:
            target = folder / f"{entry['table']}.parquet"
            con.execute(
                f"copy (select * from {_quote(entry['schema'])}.{_quote(entry['table'])}) "
                f"to {duckdb_literal(target)} (format parquet, compression zstd)"
            )
            entry["parquet"] = f"{PARQUET_LINK_NAME}/{target.name}"
    finally:
        con.close()
    for path in folder.iterdir():
        fsync_path(path)
    fsync_path(folder)


def _remove_old_versions(pub_dir: Path, keep: set[str | None]) -> None:
    for old in pub_dir.glob(".parquet-*"):
        if old.name not in keep and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)


@dataclass
class StagedTier:
    """A new version of the published tier, written in full beside the published one and not yet
    visible: the DuckDB file, its Parquet folder, and (once `prepare`d) the new Parquet link and
    manifest under temporary names, so that the swap is three renames in a row."""

    pub_dir: Path
    tmp_db: Path
    version_dir: Path
    manifest: dict
    tmp_link: Path | None = None
    tmp_manifest: Path | None = None

    def prepare(self) -> None:
        """Write the new link and manifest under temporary names (nothing visible changes)."""
        link = self.pub_dir / PARQUET_LINK_NAME
        if link.exists() and not link.is_symlink():
            # A plain folder left by something else: move it aside once (not atomic, one-off).
            link.rename(self.pub_dir / f".parquet-legacy-{uuid.uuid4().hex[:8]}")
        self.manifest["previous_parquet_version"] = Path(os.readlink(link)).name if link.is_symlink() else None
        self.tmp_link = self.pub_dir / f".parquet-link-{uuid.uuid4().hex}"
        os.symlink(self.version_dir.name, self.tmp_link)
        self.tmp_manifest = self.pub_dir / f".{MANIFEST_NAME}.tmp-{uuid.uuid4().hex}"
        with open(self.tmp_manifest, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(self.manifest, indent=2) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def swap_database(self) -> None:
        """The moment of publication: the new DuckDB file replaces the published one."""
        if self.tmp_link is None:
            self.prepare()
        os.replace(self.tmp_db, self.pub_dir / PUBLISHED_DB_NAME)

    def swap_rest(self) -> None:
        """Right after swap_database: the Parquet link, then the manifest; older versions go."""
        os.replace(self.tmp_link, self.pub_dir / PARQUET_LINK_NAME)
        os.replace(self.tmp_manifest, self.pub_dir / MANIFEST_NAME)
        fsync_path(self.pub_dir)
        _remove_old_versions(self.pub_dir, {self.version_dir.name, self.manifest["previous_parquet_version"]})

    def swap(self) -> Path:
        self.swap_database()
        self.swap_rest()
        return self.pub_dir / PUBLISHED_DB_NAME

    def discard(self) -> None:
        """Remove what is staged and not published (never the Parquet version the link names)."""
        for leftover in (self.tmp_db, Path(f"{self.tmp_db}.wal"), self.tmp_link, self.tmp_manifest):
            if leftover is not None and (leftover.exists() or leftover.is_symlink()):
                leftover.unlink()
        link = self.pub_dir / PARQUET_LINK_NAME
        live = link.is_symlink() and Path(os.readlink(link)).name == self.version_dir.name
        if self.version_dir.exists() and not live:
            shutil.rmtree(self.version_dir, ignore_errors=True)


def stage_tier(warehouse_path: Path, output_dir: Path) -> StagedTier:
    """Write the publication schema of `warehouse_path` as a new, not yet visible version of
    `output_dir/published/`. Nothing published changes."""
    warehouse_path = Path(warehouse_path)
    if not warehouse_path.exists():
        raise FileNotFoundError(f"no warehouse at {warehouse_path}")
    pub_dir = published_dir(output_dir)
    pub_dir.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    tmp_db = pub_dir / f".{PUBLISHED_DB_NAME}.tmp-{token}"
    built_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    version_dir = pub_dir / f".parquet-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{token[:8]}"
    staged = StagedTier(pub_dir, tmp_db, version_dir, {})
    try:
        facts = _write_database(warehouse_path, tmp_db, built_at)
        Path(f"{tmp_db}.wal").unlink(missing_ok=True)     # checkpointed: nothing left in it
        fsync_path(tmp_db)
        # Parquet is written from the new (complete, not yet visible) DuckDB file.
        _write_parquet(tmp_db, facts["tables"], version_dir)
        staged.manifest = {
            "published_database": PUBLISHED_DB_NAME,
            "database_sha256": sha256_of(tmp_db),
            "storage_version": STORAGE_VERSION,
            "duckdb_version": duckdb.__version__,
            "built_at": built_at,
            "extract_date": facts["extract_date"],
            "audit_years": facts["audit_years"],
            "is_synthetic": facts["is_synthetic"],
            "source_warehouse": str(warehouse_path.resolve()),
            "parquet_version": version_dir.name,
            "previous_parquet_version": None,
            "tables": facts["tables"],
        }
    except BaseException:
        staged.discard()
        raise
    return staged


def publish_marts(warehouse_path: Path, output_dir: Path) -> Path:
    """Publish every table of the publication schema of `warehouse_path` to
    `output_dir/published/flsdb_published.duckdb` and `output_dir/published/parquet/`, atomically,
    under the publication lock. No gate and no history: `flsdb publish` (flsdb.publish.release)
    does those. Returns the path of the published DuckDB file."""
    with lock.exclusive(output_dir):
        staged = stage_tier(warehouse_path, output_dir)
        try:
            return staged.swap()
        except BaseException:
            staged.discard()
            raise


def read_manifest(output_dir: Path) -> dict:
    return json.loads((published_dir(output_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))
