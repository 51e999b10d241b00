"""`flsdb recheck-rejects`: after a registry change, the rows rejected for an unknown FLS code
whose FLS the registry now holds are checked again with every contract rule, and move to
accepted with their lineage, or stay rejected under the rule they now break."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from flsdb import paths, settings
from flsdb.ingest.columns import CONTRACT_COLUMNS, _q
from flsdb.ingest.decoding import CR_PLACEHOLDER
from flsdb.ingest.loader import _Loader
from flsdb.ingest.row_checks import _CODES_SQL, _COLUMNS_SQL, _REASON_SQL, _final_sql
from flsdb.ingest.warehouse import (LoadError, _connect, _read_registry, ensure_schema,
                                    transaction)


@dataclass
class RecheckResult:
    candidates: int = 0          # rejects for an unknown FLS code whose FLS the registry now knows
    moved: int = 0               # of those, now accepted (moved to raw.submission_records)
    rejected_again: int = 0      # of those, rejected under a later rule (reason updated)
    not_recheckable: int = 0     # from files loaded before column_order was recorded
    files: int = 0

    def summary(self) -> str:
        text = (f"Re-checked {self.candidates:,} row(s) rejected for an FLS code the registry now "
                f"knows: {self.moved:,} accepted (moved to raw.submission_records with their file, "
                f"line and load order), {self.rejected_again:,} still rejected under a later "
                f"rule (reason updated), in {self.files:,} file(s).")
        if self.not_recheckable:
            text += (f" {self.not_recheckable:,} row(s) come from files loaded before the column "
                     "order was recorded and cannot be re-checked: load those files again under "
                     "a new name.")
        if self.moved:
            text += " Run `flsdb build`: staging restages every row after a recheck."
        return text


RECHECK_CANDIDATES_SQL = """
    SELECT r._file_sha256, r._line_number, r.raw_line, f.column_order, f.file_extract_date
    FROM raw.submission_rejects r JOIN raw.load_files f ON f.file_sha256 = r._file_sha256
    WHERE r.reject_code = 'unknown_fls_code'
      AND upper(_code_text(r.fls_code)) IN (SELECT upper(fls_code) FROM _registry)
    ORDER BY r._load_order, r._line_number
"""


def recheck_rejects(warehouse_path: Path | str, registry_path: Path | str | None = None,
                    lock_timeout: float | None = None,
                    load_time: datetime | None = None) -> RecheckResult:
    """Re-check every row rejected as ``unknown_fls_code`` whose FLS code the registry now holds.

    Each such row is checked again with every contract rule (the same SQL as a load, against its
    file's extract date). A row that passes moves from raw.submission_rejects to
    raw.submission_records with its lineage unchanged (file sha256, source file, line, load order,
    load time); its file's rows_accepted / rows_rejected move with it (rows read = accepted +
    rejected still holds) and rows_accepted_on_recheck counts it, which makes the next build
    restage (staging's inputs fingerprint). A row that now breaks a later rule stays rejected
    with the new code and reason. One transaction: all or nothing.
    """
    warehouse = Path(warehouse_path)
    registry = Path(registry_path) if registry_path else paths.seeds_dir() / "fls_registry.csv"
    if lock_timeout is None:
        lock_timeout = settings.lock_timeout()
    if not warehouse.exists():
        raise LoadError(f"Warehouse {warehouse} does not exist: nothing to re-check.")
    result = RecheckResult()
    con = _connect(warehouse, lock_timeout)
    try:
        ensure_schema(con)
        _read_registry(con, registry)
        with tempfile.TemporaryDirectory(prefix="flsdb-recheck-") as tmp:
            loader = _Loader(con, Path(tmp), load_time)
            found = con.execute(RECHECK_CANDIDATES_SQL).fetchall()
            result.candidates = len(found)
            keys, values, lines, extracts = [], [], [], []
            for sha, line, raw_line, order, extract in found:
                if not order:
                    result.not_recheckable += 1
                    continue
                header = json.loads(order)
                fields = [v.replace(CR_PLACEHOLDER, "\r") for v in next(csv.reader(io.StringIO(
                    raw_line.replace("\r", CR_PLACEHOLDER), newline="")), [])]
                if len(fields) != len(header):
                    result.not_recheckable += 1
                    continue
                by_name = dict(zip(header, fields))
                keys.append((sha, line))
                values.append([by_name.get(c) if by_name.get(c) != "" else None
                               for c in CONTRACT_COLUMNS])
                lines.append(line)
                extracts.append(extract)
            if not keys:
                return result
            stage = pa.table({"_fid": pa.array([0] * len(keys), type=pa.int32()),
                              **{c: pa.array([v[i] for v in values], type=pa.string())
                                 for i, c in enumerate(CONTRACT_COLUMNS)}})
            linemap = pa.table({
                "_line_number": pa.array(lines, type=pa.int64()),
                "_end_line": pa.array(lines, type=pa.int64()),
                "_extract": pa.array(extracts, type=pa.date32()),
                "_sha": pa.array([k[0] for k in keys], type=pa.string()),
            })
            con.register("_stage_in", stage)
            con.execute("INSERT INTO _stage SELECT * FROM _stage_in")
            con.unregister("_stage_in")
            con.register("_linemap", linemap)
            try:
                con.execute(_final_sql())
            finally:
                con.unregister("_linemap")
            cols = ", ".join("f." + _q(c) for c in CONTRACT_COLUMNS)
            with transaction(con):
                con.execute(f"""
                    INSERT INTO raw.submission_records
                    SELECT {cols}, r._file_sha256, r._source_file, r._line_number, r._load_order,
                           r._loaded_at
                    FROM _final f JOIN raw.submission_rejects r
                      ON r._file_sha256 = f._sha AND r._line_number = f._line_number
                     AND r.reject_code = 'unknown_fls_code'
                    WHERE f._rule IS NULL ORDER BY r._load_order, r._line_number""")
                moved = dict(con.execute(
                    "SELECT _sha, count(*) FROM _final WHERE _rule IS NULL GROUP BY _sha"
                ).fetchall())
                con.execute(f"""
                    UPDATE raw.submission_rejects r
                    SET reject_code = {_CODES_SQL}[f._rule], column_name = {_COLUMNS_SQL}[f._rule],
                        reject_reason = {_REASON_SQL.replace("CASE _rule", "CASE f._rule")}
                    FROM (SELECT * FROM _final WHERE _rule IS NOT NULL) f
                    WHERE r._file_sha256 = f._sha AND r._line_number = f._line_number
                      AND r.reject_code = 'unknown_fls_code'
                      AND {_CODES_SQL}[f._rule] <> 'unknown_fls_code'""")
                result.rejected_again = con.execute(
                    f"SELECT count(*) FROM _final WHERE _rule IS NOT NULL "
                    f"AND {_CODES_SQL}[_rule] <> 'unknown_fls_code'").fetchone()[0]
                con.execute("""
                    DELETE FROM raw.submission_rejects r USING _final f
                    WHERE r._file_sha256 = f._sha AND r._line_number = f._line_number
                      AND r.reject_code = 'unknown_fls_code' AND f._rule IS NULL""")
                for sha, n in moved.items():
                    con.execute(
                        "UPDATE raw.load_files SET rows_accepted = rows_accepted + ?, "
                        "rows_rejected = rows_rejected - ?, rows_accepted_on_recheck = "
                        "coalesce(rows_accepted_on_recheck, 0) + ? WHERE file_sha256 = ?",
                        [n, n, n, sha])
            result.moved = sum(moved.values())
            result.files = len({k[0] for k in keys})
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return result
