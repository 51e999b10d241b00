"""The load loop: `load_landing` reads every candidate file once, skips content already loaded,
and hands the rest to the _Loader, which stages a batch (staging.py), checks it with one SQL
statement (row_checks.py) and commits each file all-or-nothing, in load order, with its rejects
and its raw.load_files row."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from tqdm import tqdm

from flsdb import paths, settings
from flsdb.ingest.columns import CONTRACT_COLUMNS, _lit, _q
from flsdb.ingest.decoding import (CR_PLACEHOLDER, FileRejected, _even_line_ends, _raw_lines,
                                   check_header, decode)
from flsdb.ingest.discovery import (FileRefused, _escaped, _printable, changed_since,
                                    discover_all, read_stable)
from flsdb.ingest.outcomes import (FileOutcome, LoadResult, _record_not_loaded,
                                   note_missing_from_landing)
from flsdb.ingest.row_checks import (EXTRACTS_SQL, IDENTIFIER_TOKENS, IDENTIFIER_TOKENS_SQL,
                                     MACROS, MIXED_FLS_SQL, REJECTS_SQL, _final_sql, _nhs_problem,
                                     name_warnings, uk_now)
from flsdb.ingest.staging import _Pending, _Stager
from flsdb.ingest.warehouse import (LOAD_FILES_INSERT, LoadError, _connect,
                                    _read_registry, ensure_schema, transaction)

# Test hook: called (with the connection and source file) after a file's records are inserted
# and before its transaction commits. Used by the tests to simulate a crash mid-file.
_after_records_hook = None
_CRASH_ENV = "FLSDB_LOAD_TEST_CRASH_AFTER_RECORDS"
# Test hook: called with no arguments once the warehouse is open (and locked) for writing.
_after_connect_hook = None

REJECT_COLUMNS = ["_line_number", "reject_code", "column_name", "reject_reason", "raw_line",
                  "fls_code", "record_id"]


class _Loader(_Stager):
    """Collects files, stages a batch of them with DuckDB's CSV reader (one read_csv over every
    file of the batch that has the same header order), checks the whole batch with one SQL
    statement, then commits it: each file all-or-nothing, in load order."""

    BATCH_ROWS = 250_000               # lines staged before a batch is checked and committed
    BATCH_FILES = 5_000                # files staged before a batch is checked and committed
    # Commit granularity. A batch of up to SMALL_BATCH_FILES files commits each file in its own
    # transaction; a bigger batch (many small files) commits consecutive files in groups of up
    # to GROUP_FILES, because every commit costs an fsync (10,000 one-row files would otherwise
    # spend a minute syncing). Either way a file is never partly committed, and a crash loses at
    # most the uncommitted group, which the next run loads again.
    SMALL_BATCH_FILES = 32
    GROUP_FILES = 500

    def __init__(self, con: duckdb.DuckDBPyConnection, tmpdir: Path,
                 load_time: datetime | None = None):
        self.con = con
        self.tmpdir = tmpdir
        self.load_time = load_time or uk_now()
        con.execute("SET preserve_insertion_order = true")
        con.execute("SET enable_progress_bar = false")
        # Commit to the WAL only; checkpoint once at the end (see load_landing).
        con.execute("SET checkpoint_threshold = '16GB'")
        for m in MACROS:
            con.execute(m)
        con.execute("CREATE OR REPLACE TEMP MACRO _load_time() AS "
                    f"TIMESTAMP {_lit(self.load_time.strftime('%Y-%m-%d %H:%M:%S'))}")
        con.create_function("_nhs_problem", _nhs_problem, ["VARCHAR"], "VARCHAR",
                            side_effects=False, null_handling="special")
        self.next_order = con.execute(
            "SELECT coalesce(max(load_order), 0) + 1 FROM raw.load_files").fetchone()[0]
        self.pending: list[_Pending] = []
        self.outcomes: dict[str, FileOutcome] = {}
        self.batch_lines = 0
        self.next_fid = 0
        self._new_stage()

    # -- collecting ----------------------------------------------------------------------------
    def add(self, rel: str, data: bytes, sha: str, path: Path | None = None,
            sig: tuple | None = None, rel_os: str | None = None) -> None:
        p = _Pending(rel, sha, len(data), None, path=path, sig=sig, rel_os=rel_os or rel)
        p.warnings += name_warnings(rel)
        try:
            p.text, p.encoding = decode(data, p.warnings)
            had_placeholder = CR_PLACEHOLDER in p.text
            p.text = _even_line_ends(p.text, p.warnings)
            p.cr_placeholder = not had_placeholder and CR_PLACEHOLDER in p.text
            p.header = check_header(p.text)
        except FileRejected as e:
            p.reason = str(e)
            p.text = None
        self.pending.append(p)
        self.batch_lines += data.count(b"\n")
        if self.batch_lines >= self.BATCH_ROWS or len(self.pending) >= self.BATCH_FILES:
            self.flush()

    # -- checking and committing ---------------------------------------------------------------
    def flush(self) -> None:
        if not self.pending:
            return
        con = self.con
        self._stage_all()
        staged = [p for p in self.pending if p.reason is None]
        contract_rejects: dict[int, list] = {}
        extracts: dict[int, object] = {}
        if staged:
            extracts = dict(con.execute(EXTRACTS_SQL).fetchall())
            fids = np.concatenate([m[2] for m in self.linemaps])
            by_fid = np.array([extracts.get(i) or np.datetime64("NaT")
                               for i in range(int(fids.max()) + 2 if len(fids) else 1)],
                              dtype="datetime64[D]")
            linemap = pa.table({
                "_line_number": np.concatenate([m[0] for m in self.linemaps]),
                "_end_line": np.concatenate([m[1] for m in self.linemaps]),
                "_extract": pa.array(by_fid[fids], type=pa.date32(), from_pandas=True),
            })
            if len(linemap) != self.staged_rows:
                raise AssertionError("line map and staged rows differ in length")
            con.register("_linemap", linemap)
            try:
                con.execute(_final_sql())
            finally:
                con.unregister("_linemap")
            for fid, *rest in con.execute(REJECTS_SQL).fetchall():
                contract_rejects.setdefault(fid, []).append(rest)
            kinds = list(IDENTIFIER_TOKENS)
            for fid, *counts in con.execute(IDENTIFIER_TOKENS_SQL).fetchall():
                found = [(kinds[k], counts[2 * k], counts[2 * k + 1]) for k in range(len(kinds))
                         if counts[2 * k]]
                for p in staged:
                    if p.fid == fid and found:
                        p.warnings.append(
                            "Record IDs look like they hold an identifier: " + "; ".join(
                                f"{n:,} with {kind} (first on line {line})"
                                for kind, n, line in found)
                            + "; they stay in the internal warehouse, but ask the FLS to use "
                              "IDs that hold no patient identifier")
            for fid, n, codes in con.execute(MIXED_FLS_SQL).fetchall():
                shown = ", ".join(codes[:5]) + (", ..." if n > 5 else "")
                for p in staged:
                    if p.fid == fid:
                        p.warnings.append(
                            f"the accepted rows carry {n} different FLS codes ({shown}); each "
                            "row is checked and counted under its own FLS code")
        pending = self.pending
        size = 1 if len(pending) <= self.SMALL_BATCH_FILES else self.GROUP_FILES
        for start in range(0, len(pending), size):
            self._commit_group(pending[start:start + size], contract_rejects, extracts)
        for p in pending:
            if p.tmp is not None:
                p.tmp.unlink(missing_ok=True)
            p.text = None
        self.pending = []
        self.batch_lines = 0
        self._new_stage()
        con.execute("DROP TABLE IF EXISTS _final")

    def _commit_group(self, group: list[_Pending], contract_rejects: dict[int, list],
                      extracts: dict[int, object]) -> None:
        """Commit the files of group in one transaction (every value passed as a parameter or
        through a registered Arrow table: nothing from a file is ever spliced into SQL text)."""
        con = self.con
        loaded_at = datetime.now(timezone.utc).replace(tzinfo=None)
        files, rejects = [], []
        for p in group:
            changed = changed_since(p.path, p.sig) if p.path is not None and p.sig else None
            if changed:
                self.outcomes[p.sha] = FileOutcome(p.rel, "", "refused", reason=changed,
                                                   kind="changed_before_commit", rel_os=p.rel_os)
                continue
            order = self.next_order + len(files)
            if p.reason is not None:
                files.append(dict(p=p, order=order, status="rejected", read=0, acc=0, rej=0))
                continue
            rows = list(p.struct_rejects)
            c_rej = contract_rejects.get(p.fid, [])
            if c_rej:
                lines = _raw_lines(p.text, p.cr_placeholder)
                for s, e, code, col, reason, fls, rid in c_rej:
                    rows.append((s, code, col, reason, "\n".join(lines[s - 1:e]), fls, rid))
            rows.sort(key=lambda r: r[0])
            n_acc = p.n_staged - len(c_rej)
            if p.n_read != n_acc + len(rows):
                raise AssertionError(f"{p.rel}: rows read {p.n_read} != accepted {n_acc} + "
                                     f"rejected {len(rows)}")
            files.append(dict(p=p, order=order, status="loaded", read=p.n_read, acc=n_acc,
                              rej=len(rows)))
            rejects += [(p.sha, p.rel, order, *r) for r in rows]
        if not files:
            return
        loaded = [f for f in files if f["status"] == "loaded"]
        lineage = pa.table({
            "_fid": pa.array([f["p"].fid for f in loaded], type=pa.int32()),
            "sha": pa.array([f["p"].sha for f in loaded], type=pa.string()),
            "rel": pa.array([f["p"].rel for f in loaded], type=pa.string()),
            "ord": pa.array([f["order"] for f in loaded], type=pa.int64()),
        })
        load_files = pa.table({
            "file_sha256": [f["p"].sha for f in files],
            "source_file": [f["p"].rel for f in files],
            "file_size_bytes": pa.array([f["p"].size for f in files], type=pa.int64()),
            "detected_encoding": pa.array([f["p"].encoding for f in files], type=pa.string()),
            "status": [f["status"] for f in files],
            "rejection_reason": pa.array([f["p"].reason for f in files], type=pa.string()),
            "rows_read": pa.array([f["read"] for f in files], type=pa.int64()),
            "rows_accepted": pa.array([f["acc"] for f in files], type=pa.int64()),
            "rows_rejected": pa.array([f["rej"] for f in files], type=pa.int64()),
            "file_extract_date": pa.array(
                [extracts.get(f["p"].fid) if f["status"] == "loaded" else None for f in files],
                type=pa.date32()),
            "load_order": pa.array([f["order"] for f in files], type=pa.int64()),
            "source_file_escaped": [_escaped(f["p"].rel_os) for f in files],
            "load_warnings": pa.array(["; ".join(f["p"].warnings) or None for f in files],
                                      type=pa.string()),
            "column_order": pa.array([json.dumps(f["p"].header) if f["p"].header else None
                                      for f in files], type=pa.string()),
        })
        cols = ", ".join("f." + _q(c) for c in CONTRACT_COLUMNS)
        with transaction(con):
            if loaded:
                con.register("_lineage", lineage)
                try:
                    con.execute(
                        f"INSERT INTO raw.submission_records SELECT {cols}, l.sha, l.rel, "
                        f"f._line_number, l.ord, ?::TIMESTAMP FROM _final f JOIN _lineage l "
                        f"ON f._fid = l._fid WHERE f._rule IS NULL ORDER BY l.ord, f._line_number",
                        [loaded_at])
                finally:
                    con.unregister("_lineage")
            for f in loaded:
                if _after_records_hook is not None:
                    _after_records_hook(con, f["p"].rel)
                if os.environ.get(_CRASH_ENV) == f["p"].rel:
                    os.kill(os.getpid(), signal.SIGKILL)
            if rejects:
                cols_ = list(zip(*rejects))
                names = ["sha", "rel", "ord", *REJECT_COLUMNS]
                types = [pa.string(), pa.string(), pa.int64(), pa.int64()] + [pa.string()] * 6
                rej = pa.table({n: pa.array(v, type=t) for n, v, t in zip(names, cols_, types)})
                con.register("_rej_df", rej)
                try:
                    con.execute(
                        "INSERT INTO raw.submission_rejects SELECT sha, rel, _line_number, ord, "
                        "?::TIMESTAMP, reject_code, column_name, reject_reason, raw_line, "
                        "fls_code, record_id FROM _rej_df ORDER BY ord, _line_number",
                        [loaded_at])
                finally:
                    con.unregister("_rej_df")
            con.register("_load_files_df", load_files)
            try:
                con.execute(LOAD_FILES_INSERT, [loaded_at])
            finally:
                con.unregister("_load_files_df")
        self.next_order += len(files)
        for f in files:
            p = f["p"]
            if f["status"] == "rejected":
                self.outcomes[p.sha] = FileOutcome(p.rel, p.sha, "rejected", reason=p.reason,
                                                   load_order=f["order"], rel_os=p.rel_os,
                                                   warnings=p.warnings)
            else:
                self.outcomes[p.sha] = FileOutcome(p.rel, p.sha, "loaded", f["read"], f["acc"],
                                                   f["rej"], load_order=f["order"],
                                                   warnings=p.warnings, rel_os=p.rel_os)


def load_landing(landing_dir: Path | str, warehouse_path: Path | str,
                 registry_path: Path | str | None = None, progress: bool | None = None,
                 lock_timeout: float | None = None,
                 load_time: datetime | None = None) -> LoadResult:
    """Load every new submission file of ``landing_dir`` into ``warehouse_path``'s raw schema.

    ``registry_path`` defaults to seeds/fls_registry.csv; ``progress`` None shows the tqdm bar
    only on a terminal; ``lock_timeout`` is how long to wait for a warehouse another process is
    writing (default: $FLSDB_LOCK_TIMEOUT, else 0 = fail at once with "Warehouse busy");
    ``load_time`` (UK local, naive) is the time a Last Updated may not be after (default: now).
    """
    t0 = time.perf_counter()
    landing = Path(landing_dir)
    warehouse = Path(warehouse_path)
    registry = Path(registry_path) if registry_path else paths.seeds_dir() / "fls_registry.csv"
    if lock_timeout is None:
        lock_timeout = settings.lock_timeout()
    if not landing.is_dir():
        raise LoadError(f"Landing folder {landing} does not exist.")
    files, not_read = discover_all(landing)
    result = LoadResult(warehouse=warehouse, landing=landing)
    con = _connect(warehouse, lock_timeout)
    try:
        if _after_connect_hook is not None:
            _after_connect_hook()
        ensure_schema(con)
        _read_registry(con, registry)
        known = {sha: (src, status) for sha, src, status in con.execute(
            "SELECT file_sha256, source_file, status FROM raw.load_files").fetchall()}
        with tempfile.TemporaryDirectory(prefix="flsdb-load-") as tmp:
            loader = _Loader(con, Path(tmp), load_time)
            order: list[tuple[str, FileOutcome | None]] = []  # (rel or sha, outcome)
            disable = None if progress is None else not progress
            for rel_os, path in tqdm(files, desc="Loading", unit="file", disable=disable):
                rel = _printable(rel_os)
                try:
                    data, sig = read_stable(path)
                except FileRefused as e:
                    order.append((rel, FileOutcome(rel, "", "refused", reason=str(e),
                                                   kind=e.kind, rel_os=rel_os)))
                    continue
                sha = hashlib.sha256(data).hexdigest()
                if sha in known:
                    src, status = known[sha]
                    note = "already loaded" if src == rel else f"same content as {_escaped(src)}"
                    if status == "rejected":
                        note += ", rejected"
                    order.append((rel, FileOutcome(rel, sha, "unchanged", reason=note,
                                                   previously_rejected=status == "rejected",
                                                   rel_os=rel_os)))
                    continue
                known[sha] = (rel, "pending")
                loader.add(rel, data, sha, path=path, sig=sig, rel_os=rel_os)
                order.append((sha, None))
            loader.flush()
            for key, outcome in order:
                result.files.append(outcome if outcome is not None else loader.outcomes[key])
            result.files += [FileOutcome(_printable(n.rel), "", n.status, reason=n.reason,
                                         kind=n.kind, rel_os=n.rel) for n in not_read]
            _record_not_loaded(con, [f for f in result.files
                                     if f.status in ("skipped", "refused")], loader.next_order)
            note_missing_from_landing(con, result)
            con.execute("CHECKPOINT")
    finally:
        con.close()
    result.seconds = time.perf_counter() - t0
    return result
