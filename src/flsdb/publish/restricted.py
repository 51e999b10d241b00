"""The restricted analyst extract: pseudonymised row-level data, a separate tier, NOT published.

`flsdb publish` writes `output_dir/restricted_analyst_extract/` from the warehouse model
`restricted_analyst_extract.restricted_analyst_episodes` (models/restricted_analyst_extract/:
fct_episodes without record IDs, file names, line numbers, small areas, exact dates or ages).
Nothing here is ever called published, copied to output/published/ or shown on the site.

`patient_pseudonym` is replaced by a keyed hash under a key made for this extract and then
discarded: episodes of one patient stay linked within the extract, but no extract can be linked
to another one or back to the warehouse. The folder is written whole and swapped in
(flsdb.atomic), readable by its owner only (mode 0700), with a README saying who may read it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import uuid
from pathlib import Path

import duckdb

from flsdb.atomic import swap_in_folder

TIER_NAME = "restricted_analyst_extract"
SOURCE_TABLE = "restricted_analyst_extract.restricted_analyst_episodes"
EXTRACT_FILE = "restricted_analyst_episodes.parquet"

README = """RESTRICTED ANALYST EXTRACT - NOT FOR PUBLICATION
=================================================

What this is
  Pseudonymised row-level FLS-DB episodes ({rows} rows, extract date {extract_date}), made
  {built_at} by `flsdb publish`.{synthetic}

Who may read it
  Only analysts named on the audit's data access register, under the FLS-DB data sharing
  agreement, for the purpose approved there, on the audit's secure analysis environment. Do not
  copy it elsewhere, share it, join it with other person-level data, or publish anything from it
  that has not been through the published tier's small-number suppression (output/published/).

What was removed
  Record IDs, file names and line numbers (an FLS may put an identifier in them), the LSOA,
  the exact fracture date (fracture_month instead) and the age in years (age_band instead). NHS
  number, date of birth and postcode never leave the warehouse's raw schema.

The pseudonym
  patient_pseudonym is a keyed hash made for this extract only, with a key that was discarded:
  it links one patient's episodes here, and nothing else. Another extract has other pseudonyms.

Questions: the FLS-DB audit team (audit-team@example.org).
"""


def _literal(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def restricted_dir(output_dir: Path) -> Path:
    return Path(output_dir) / TIER_NAME


def write_restricted_extract(warehouse_path: Path, output_dir: Path) -> Path:
    """Write output_dir/restricted_analyst_extract/ (Parquet, README.txt, manifest.json)
    atomically; return the folder."""
    final = restricted_dir(output_dir)
    tmp = stage_restricted_extract(warehouse_path, output_dir)
    try:
        swap_in_folder(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def stage_restricted_extract(warehouse_path: Path, output_dir: Path) -> Path:
    """Write the extract in full to a temporary folder beside output_dir/restricted_analyst_extract/
    (not yet visible); return it. `flsdb.atomic.swap_in_folder` then puts it in place."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / f".{TIER_NAME}-tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(mode=0o700)
    built_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
    key = secrets.token_hex(32)
    try:
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"attach {_literal(warehouse_path)} as src (read_only)")
            columns = [r[0] for r in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'src' "
                "and table_schema = ? and table_name = ? order by ordinal_position",
                SOURCE_TABLE.split(".")).fetchall()]
            if not columns:
                raise RuntimeError(f"the warehouse has no {SOURCE_TABLE}: run `dbt build` first")
            select = ", ".join(
                "sha256(? || patient_pseudonym) as patient_pseudonym" if c == "patient_pseudonym"
                else f'"{c}"' for c in columns)
            target = tmp / EXTRACT_FILE
            con.execute(
                f"copy (select {select} from src.{SOURCE_TABLE}) to {_literal(target)} "
                "(format parquet, compression zstd)",
                [key] if "patient_pseudonym" in columns else [])
            rows, extract_date, synthetic = con.execute(
                f"select count(*), max(extract_date), bool_or(is_synthetic_data) "
                f"from read_parquet({_literal(target)})").fetchone()
        finally:
            con.close()
        del key
        (tmp / "README.txt").write_text(README.format(
            rows=f"{rows:,}", extract_date=extract_date, built_at=built_at,
            synthetic="\n  SYNTHETIC DATA: made-up records, for demonstration only." if synthetic else ""),
            encoding="utf-8")
        (tmp / "manifest.json").write_text(json.dumps({
            "tier": TIER_NAME, "published": False, "built_at": built_at, "rows": rows,
            "extract_date": extract_date.isoformat() if extract_date else None,
            "is_synthetic": bool(synthetic), "columns": columns, "file": EXTRACT_FILE,
        }, indent=2) + "\n", encoding="utf-8")
        for path in tmp.iterdir():
            os.chmod(path, 0o600)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp
