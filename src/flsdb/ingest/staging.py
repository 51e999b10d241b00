"""Staging a batch of files with DuckDB's CSV reader: one ``read_csv`` per header order (small
files with an unambiguous layout joined into one CSV first), the physical line of every staged
row (layout.py), and the structural rejects (wrong_column_count). The _Loader (loader.py) is a
_Stager: these are its staging methods."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from flsdb.ingest.columns import CONTRACT_COLUMNS, FLS, _lit, _q
from flsdb.ingest.decoding import CR_PLACEHOLDER, FileRejected, _raw_lines, redact, visible
from flsdb.ingest.layout import Layout, _nth_newline_end, layout_csv, layout_numpy


@dataclass
class _Pending:
    """A file examined and staged, waiting for its batch to be checked and committed."""
    rel: str
    sha: str
    size: int
    encoding: str | None
    reason: str | None = None          # set when the whole file is rejected
    fid: int | None = None
    n_read: int = 0
    n_staged: int = 0                  # structurally sound rows, staged for the contract checks
    struct_rejects: list = field(default_factory=list)
    text: str | None = None
    header: list[str] | None = None
    tmp: Path | None = None            # the loader's own copy of the (UTF-8) bytes it read
    path: Path | None = None           # the file in the landing folder
    sig: tuple | None = None           # its size/mtime/ctime/inode when it was read
    warnings: list[str] = field(default_factory=list)
    rel_os: str = ""                   # the name as the OS gave it (for the escaped form)
    cr_placeholder: bool = False       # lone CRs in values travel as CR_PLACEHOLDER


MAX_LINE_BYTES = 10_000_000


class _Stager:
    """The staging half of _Loader: fills the temp table _stage and the line maps."""

    def _new_stage(self) -> None:
        self.con.execute("CREATE OR REPLACE TEMP TABLE _stage (_fid INTEGER, "
                         + ", ".join(f"{_q(c)} VARCHAR" for c in CONTRACT_COLUMNS) + ")")
        self.staged_rows = 0
        self.linemaps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    # -- staging -------------------------------------------------------------------------------
    def _stage_all(self) -> None:
        """Stage every pending file that passed the file-level checks."""
        to_stage = [p for p in self.pending if p.reason is None]
        groups: dict[tuple[str, ...], list[_Pending]] = {}
        utf8: dict[int, bytes] = {}
        for p in to_stage:
            p.fid = self.next_fid
            self.next_fid += 1
            p.tmp = self.tmpdir / f"{p.fid}.csv"
            utf8[p.fid] = p.text.encode("utf-8")
            p.tmp.write_bytes(utf8[p.fid])
            groups.setdefault(tuple(p.header), []).append(p)
        staged: list[tuple[_Pending, dict[int, str]]] = []
        for header, ps in groups.items():
            small = [p for p in ps if len(utf8[p.fid]) <= self.COMBINE_MAX_BYTES]
            if len(small) >= 2:
                combined = self._read_combined(list(header), small, utf8)
                if combined is not None:
                    staged += combined
                    done = {p.fid for p, _ in combined}
                    ps = [p for p in ps if p.fid not in done]
            if not ps:
                continue
            try:
                errs = self._read_csv(list(header), ps)
            except duckdb.Error:
                # One file broke the multi-file read: read them one by one to find it.
                errs = {}
                ok = []
                for p in ps:
                    try:
                        errs.update(self._read_csv(list(header), [p]))
                        ok.append(p)
                    except duckdb.Error as e:
                        first = str(e).strip().splitlines()[0] if str(e).strip() else \
                            type(e).__name__
                        p.reason = f"Not readable as CSV: {redact(visible(first))[:300]}"
                ps = ok
            staged += [(p, errs.get(p.fid, {})) for p in ps]
        counts = dict(self.con.execute(
            "SELECT _fid, count(*) FROM _stage GROUP BY _fid").fetchall())
        # Line maps are appended in _stage order: groups in turn, files in order within one.
        for p, err_lines in staged:
            try:
                self._finish_stage(p, utf8[p.fid], err_lines, counts.get(p.fid, 0))
            except FileRejected as e:
                p.reason = str(e)
        self.staged_rows = sum(counts.values())
        flagged = [p.fid for p in to_stage if p.cr_placeholder]
        if flagged:
            self.con.execute(
                "UPDATE _stage SET " + ", ".join(
                    f"{_q(c)} = replace({_q(c)}, chr({ord(CR_PLACEHOLDER)}), chr(13))"
                    for c in CONTRACT_COLUMNS)
                + " WHERE _fid IN (" + ", ".join(str(int(f)) for f in flagged) + ")")

    COMBINE_MAX_BYTES = 256 * 1024

    def _read_combined(self, header: list[str], ps: list[_Pending], utf8: dict[int, bytes]
                       ) -> list[tuple[_Pending, dict[int, str]]] | None:
        """Stage many small files with one read of one combined CSV (their bodies joined under
        one header): DuckDB pays a fixed cost per file read, which dominates for thousands of
        one-row files. Only files whose records are unambiguous are combined (the numpy and csv
        module layouts agree, so every record ends inside the file); the others, and every file
        if DuckDB's result does not add up exactly, are read the ordinary way. Returns
        [(file, DuckDB structural errors by the file's own record line)] in _stage order."""
        con = self.con
        chosen, bodies, n_recs = [], [], []
        for p in ps:
            data = utf8[p.fid]
            lay = layout_numpy(data)
            if lay.unterminated_last or len(lay.blank) < 2:
                continue
            alt = layout_csv(p.text)
            if (len(alt.blank) != len(lay.blank) or alt.unterminated_last
                    or not np.array_equal(alt.start_line, lay.start_line)):
                continue
            # The body starts after the header record's last newline.
            cut = _nth_newline_end(data, int(lay.end_line[0]))
            body = data[cut:]
            if not body.endswith(b"\n"):
                body += b"\n"
            chosen.append(p)
            bodies.append(body)
            n_recs.append(len(lay.blank) - 1)
        if len(chosen) < 2:
            return None
        tmp = self.tmpdir / "combined.csv"
        with open(tmp, "wb") as fh:
            fh.write(",".join(_q(c) for c in header).encode("utf-8") + b"\n")
            for b in bodies:
                fh.write(b)
        columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in header) + "}"
        con.execute("DROP TABLE IF EXISTS _rej_errors; DROP TABLE IF EXISTS _rej_scans")
        try:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _combo AS SELECT "
                + ", ".join(_q(c) for c in CONTRACT_COLUMNS)
                + f" FROM read_csv({_lit(str(tmp))}, auto_detect=false, header=true, delim=',', "
                  f"quote='\"', escape='\"', strict_mode=true, columns={columns}, "
                  f"store_rejects=true, rejects_table='_rej_errors', rejects_scan='_rej_scans', "
                  f"max_line_size={MAX_LINE_BYTES})")
        except duckdb.Error:
            return None
        finally:
            tmp.unlink(missing_ok=True)
        n_combo = con.execute("SELECT count(*) FROM _combo").fetchone()[0]
        errs = con.execute(
            "SELECT line, any_value(error_type ORDER BY byte_position)::VARCHAR "
            "FROM _rej_errors GROUP BY line ORDER BY line").fetchall()
        # Combined record r (1-based after the header) belongs to file k when
        # offsets[k] < r <= offsets[k + 1]; its line in that file's own numbering is r - offsets[k] + 1.
        offsets = np.concatenate(([0], np.cumsum(n_recs)))
        per_file: list[dict[int, str]] = [{} for _ in chosen]
        for line, err in errs:
            r = int(line) - 1
            k = int(np.searchsorted(offsets, r, side="left")) - 1
            if k < 0 or k >= len(chosen):
                return None
            per_file[k][r - int(offsets[k]) + 1] = err
        counts = []
        for p, err_lines, n in zip(chosen, per_file, n_recs):
            lay = layout_numpy(utf8[p.fid])
            data_recs = int((~lay.blank[1:]).sum())
            n_rows = data_recs - len(err_lines)
            if self._match(lay, err_lines, n_rows) is None:
                return None
            counts.append(n_rows)
        if sum(counts) != n_combo:
            return None
        fids = pa.table({"_fid": pa.array(
            np.repeat(np.array([p.fid for p in chosen], dtype=np.int32), counts))})
        con.register("_combo_fids", fids)
        try:
            con.execute("INSERT INTO _stage SELECT f._fid, c.* FROM _combo c "
                        "POSITIONAL JOIN _combo_fids f")
        finally:
            con.unregister("_combo_fids")
            con.execute("DROP TABLE _combo")
        return list(zip(chosen, per_file))

    def _read_csv(self, header: list[str], ps: list[_Pending]) -> dict[int, dict[int, str]]:
        """read_csv the files ps (same header order) into _stage; DuckDB's structural errors by
        file id and DuckDB record line."""
        con = self.con
        columns = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in header) + "}"
        files = "[" + ", ".join(_lit(str(p.tmp)) for p in ps) + "]"
        con.execute("DROP TABLE IF EXISTS _rej_errors; DROP TABLE IF EXISTS _rej_scans")
        con.execute(
            "INSERT INTO _stage SELECT regexp_extract(filename, '(\\d+)\\.csv$', 1)::INTEGER, "
            + ", ".join(_q(c) for c in CONTRACT_COLUMNS)
            + f" FROM read_csv({files}, auto_detect=false, header=true, delim=',', "
              f"quote='\"', escape='\"', strict_mode=true, columns={columns}, filename=true, "
              f"store_rejects=true, rejects_table='_rej_errors', rejects_scan='_rej_scans', "
              f"max_line_size={MAX_LINE_BYTES})")
        out: dict[int, dict[int, str]] = {}
        for path, line, err in con.execute(
                "SELECT s.file_path, e.line, any_value(e.error_type ORDER BY e.byte_position)"
                "::VARCHAR FROM _rej_errors e JOIN _rej_scans s USING (scan_id, file_id) "
                "GROUP BY ALL").fetchall():
            out.setdefault(int(Path(path).stem), {})[int(line)] = err
        return out

    def _finish_stage(self, p: _Pending, utf8: bytes, err_lines: dict[int, str],
                      n_rows: int) -> None:
        """Line numbers of the file's staged rows, its counts and its structural rejects."""
        text, header, fid = p.text, p.header, p.fid
        layout = acc_idx = None
        for make in (lambda: layout_numpy(utf8), lambda: layout_csv(text)):
            lay = make()
            idx = self._match(lay, err_lines, n_rows)
            if idx is not None:
                layout, acc_idx = lay, idx
                break
        if layout is None:
            dead = np.full(n_rows, -1, dtype=np.int64)  # staged but never used
            self.linemaps.append((dead, dead, np.full(n_rows, fid, dtype=np.int64)))
            raise FileRejected(
                "Not readable as CSV: its quoting is malformed (an unbalanced double quote), so "
                "its rows cannot be told apart reliably. Check for a stray '\"' in the data.")
        self.linemaps.append((layout.start_line[acc_idx].astype(np.int64),
                              layout.end_line[acc_idx].astype(np.int64),
                              np.full(n_rows, fid, dtype=np.int64)))
        p.n_staged = n_rows
        p.n_read = int((~layout.blank[1:]).sum())

        # Structural rejects: DuckDB's record line L is our record index L - 1.
        struct_idx = sorted(i - 1 for i in err_lines)
        last = len(layout.blank) - 1
        if layout.unterminated_last and last not in struct_idx:
            struct_idx.append(last)
        if not struct_idx:
            return
        lines = _raw_lines(text, p.cr_placeholder)
        n_cols = len(header)
        fls_i, rid_i = header.index(FLS), header.index("Record ID")
        for i in struct_idx:
            s, e = int(layout.start_line[i]), int(layout.end_line[i])
            raw_line = "\n".join(lines[s - 1:e])
            err = err_lines.get(i + 1)
            try:
                fields = next(csv.reader(io.StringIO(raw_line, newline="")), [])
            except csv.Error:
                fields = None
            if i == last and layout.unterminated_last:
                if e > s and lines[e - 1] == "":      # the file's final newline ends no line
                    e -= 1
                    raw_line = "\n".join(lines[s - 1:e])
                span = f"line {s}" if s == e else f"lines {s} to {e}"
                reason = (f"A quoted value opened on line {s} is never closed before the end of "
                          f"the file, so the rest of the file ({span}) cannot be split into "
                          "rows; it is kept here as one rejected row. Look for a stray or "
                          "unbalanced double quote.")
            elif err == "LINE SIZE OVER MAXIMUM":
                n_bytes = len(raw_line.encode("utf-8"))
                reason = (f"The row is {n_bytes:,} bytes long, over the limit of "
                          f"{MAX_LINE_BYTES:,} bytes for one row (a corrupt or runaway line).")
            elif err == "UNQUOTED VALUE" or fields is None:
                reason = ("The row could not be split into columns: a quoted value is not "
                          "closed properly (a stray or unbalanced double quote).")
            elif len(fields) < n_cols:
                reason = (f"The row has {len(fields)} values but the header has {n_cols} "
                          "columns (a truncated line).")
            elif len(fields) > n_cols:
                reason = (f"The row has {len(fields)} values but the header has {n_cols} "
                          "columns (an over-long line).")
            else:
                reason = f"The row could not be read as {n_cols} columns ({err})."
            fls = fields[fls_i] if fields and len(fields) > fls_i else None
            rid = fields[rid_i] if fields and len(fields) > rid_i else None
            p.struct_rejects.append((s, "wrong_column_count", None, reason, raw_line, fls, rid))

    @staticmethod
    def _match(lay: Layout, err_lines: dict[int, str], n_rows: int):
        """Indexes of the layout records DuckDB accepted, in order; None if they disagree."""
        n = len(lay.blank)
        if n == 0:
            return None
        data_idx = np.arange(1, n)[~lay.blank[1:]]
        rejected = np.array(sorted(i - 1 for i in err_lines), dtype=np.int64)
        if len(rejected) and not np.isin(rejected, data_idx).all():
            return None
        acc = data_idx[~np.isin(data_idx, rejected)]
        if lay.unterminated_last and len(acc) and acc[-1] == n - 1:
            acc = acc[:-1]  # DuckDB drops a never-closed quoted value at the end of the file
        if len(acc) != n_rows:
            return None
        return acc
