"""Hostile input at discovery and reading (src/flsdb/ingest/discovery.py): file names, links out
of the landing folder, SQL metacharacters in names and values, many files, files that change
while they are loaded, and (round 2) every file not loaded listed and recorded, names that differ
only by a newline or a literal backslash-n. Helpers: test_hostile_input.py and ingest_env.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb
import pytest

from flsdb.ingest import discovery, loader

from ingest_env import (  # noqa: F401  (load_env is a fixture)
    assert_counts_balance, csv_line, csv_text, good_row, load_env)
from test_hostile_input import HEADER, all_accounted


# ---------------------------------------------------------------------------------------------
# File names, links out of the landing folder, SQL metacharacters
# ---------------------------------------------------------------------------------------------

HOSTILE_NAMES = [
    "with spaces and  double  spaces.csv",
    "it's \"quoted\".csv",
    "x'; DROP TABLE raw.load_files; --.csv",
    "unicode Zoë 中文 🚑.csv",
    "a..b..csv",
    "back\\slash.csv",
    "per%cent_under_score$1?.csv",
    "sub dir/nested 'dir'/deep.csv",
]


def test_hostile_file_names_are_stored_exactly(load_env):
    for i, name in enumerate(HOSTILE_NAMES):
        load_env.write(name, csv_text([good_row(i)]))
    result = load_env.load()
    assert sorted(r[0] for r in load_env.q("SELECT source_file FROM raw.load_files")) == \
        sorted(HOSTILE_NAMES)
    assert sorted(r[0] for r in load_env.q("SELECT DISTINCT _source_file FROM "
                                           "raw.submission_records")) == sorted(HOSTILE_NAMES)
    all_accounted(load_env, result)
    assert all(n in result.summary_table() for n in HOSTILE_NAMES if "\\" not in n)


def test_file_name_that_is_not_utf8(load_env):
    raw_name = os.fsencode(str(load_env.landing)) + b"/latin1_caf\xe9.csv"
    with open(raw_name, "wb") as fh:
        fh.write(csv_text([good_row(0)]).encode())
    result = load_env.load()
    assert load_env.q("SELECT source_file, status FROM raw.load_files") == [
        ("latin1_caf\\xe9.csv", "loaded")]
    all_accounted(load_env, result)


def test_links_out_of_the_landing_folder_are_not_followed(load_env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = csv_text([good_row(99, **{"Record ID": "OUTSIDE-SECRET"})])
    (outside / "secret.csv").write_text(secret)
    (outside / "dir").mkdir()
    (outside / "dir" / "more.csv").write_text(secret)
    landing = load_env.landing
    (landing / "inside.csv").write_text(csv_text([good_row(1)]))
    os.symlink(outside / "secret.csv", landing / "link_out.csv")
    os.symlink("../outside/secret.csv", landing / "relative_link_out.csv")
    os.symlink(outside / "dir", landing / "dir_link_out")
    os.symlink(landing / "inside.csv", landing / "link_in.csv")
    os.symlink(landing / "missing.csv", landing / "dangling.csv")
    (landing / "sub").mkdir()
    os.symlink("../../outside/secret.csv", landing / "sub" / "dotdot.csv")
    result = load_env.load()
    out = {f.source_file: f for f in result.files}
    for name in ("link_out.csv", "relative_link_out.csv", "sub/dotdot.csv"):
        assert out[name].status == "refused"
        assert "outside the landing folder" in out[name].reason
    assert out["dir_link_out"].status == "refused" and "never followed" in out["dir_link_out"].reason
    assert out["dangling.csv"].status == "refused" and "does not exist" in out["dangling.csv"].reason
    assert out["inside.csv"].status == "loaded"
    assert out["link_in.csv"].status == "unchanged"
    assert "same content as inside.csv" in out["link_in.csv"].reason
    assert "REFUSED" in result.summary_table()
    con = duckdb.connect(str(load_env.warehouse), read_only=True)
    try:
        for table in ("load_files", "submission_records", "submission_rejects"):
            dump = str(con.execute(f"SELECT * FROM raw.{table}").fetchall())
            assert "OUTSIDE-SECRET" not in dump and str(outside) not in dump
    finally:
        con.close()
    all_accounted(load_env, result)


SQL_NASTY = ["RX1'; DROP TABLE raw.submission_records; --", 'R"1"; SELECT 1; --',
             "R1') OR ('1'='1", "R1\\'; --", "R1%_$1?:name", "R1€\u202e"]


class _TracingConnection:
    """Wraps a DuckDB connection and records every SQL text executed through it."""

    def __init__(self, con, log):
        self._con, self._log = con, log

    def execute(self, sql, *args, **kwargs):
        self._log.append(sql)
        return self._con.execute(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_sql_metacharacters_never_reach_sql_text(load_env, monkeypatch):
    """Hostile FLS codes, record IDs and file names are stored verbatim, and no SQL statement the
    loader runs contains any of them: values travel as parameters or through the CSV reader and
    registered Arrow tables only (the proof is the trace of every statement)."""
    registry_code = "Q'1;--"
    load_env.registry.write_text(load_env.registry.read_text() + f"\"{registry_code}\",Quoted\n")
    rows = [good_row(i, **{"Record ID": v}) for i, v in enumerate(SQL_NASTY)]
    rows += [good_row(50 + i, **{"FLS Code": v}) for i, v in enumerate(SQL_NASTY)]
    rows.append(good_row(90, **{"FLS Code": registry_code, "Record ID": "registry-quote"}))
    name = "x'; DROP TABLE raw.load_files; --.csv"
    load_env.write(name, csv_text(rows))
    load_env.write("second.csv", csv_text([good_row(91)]))
    statements: list[str] = []
    real_connect = loader._connect
    monkeypatch.setattr(loader, "_connect",
                        lambda *a, **k: _TracingConnection(real_connect(*a, **k), statements))
    result = load_env.load()
    assert statements
    for sql in statements:
        for value in [*SQL_NASTY, registry_code, name, "registry-quote"]:
            assert value not in sql, (value, sql[:200])
    all_accounted(load_env, result)
    assert load_env.file_row(name)[:5] == ("loaded", None, len(rows), len(SQL_NASTY) + 1,
                                           len(SQL_NASTY))
    stored = {r[0] for r in load_env.q('SELECT "Record ID" FROM raw.submission_records')}
    assert set(SQL_NASTY) <= stored and "registry-quote" in stored
    rejected = load_env.q("SELECT fls_code, reject_code, reject_reason FROM raw.submission_rejects "
                          "ORDER BY _line_number")
    assert [r[0] for r in rejected] == SQL_NASTY
    assert all(code == "unknown_fls_code" for _, code, _ in rejected)
    assert "'RX1''; DROP TABLE raw.submission_records; --'" in rejected[0][2]
    tables = load_env.q("SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = 'raw' ORDER BY 1")
    assert tables == [("load_file_rejects",), ("load_files",), ("submission_records",),
                      ("submission_rejects",), ("withdrawals",)]


def test_fls_code_differing_row_to_row_is_allowed_per_row_with_a_warning(load_env):
    rows = [good_row(0), good_row(1, **{"FLS Code": "RX2"}), good_row(2, **{"FLS Code": "7a4"}),
            good_row(3, **{"FLS Code": "NOPE"})]
    load_env.write("mixed_fls.csv", csv_text(rows))
    result = load_env.load()
    assert load_env.file_row("mixed_fls.csv")[:5] == ("loaded", None, 4, 3, 1)
    (f,) = result.files
    assert f.warnings == ["the accepted rows carry 3 different FLS codes (7A4, RX1, RX2); each row "
                          "is checked and counted under its own FLS code"]
    assert "WARNING: the accepted rows carry 3 different FLS codes" in result.summary_table()
    all_accounted(load_env, result)


# ---------------------------------------------------------------------------------------------
# Many files; a file that changes while it is loaded
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_ten_thousand_one_row_files(load_env):
    header = HEADER.encode()
    for i in range(10_000):
        (load_env.landing / f"one_{i:05d}.csv").write_bytes(header + (csv_line(good_row(i))
                                                                       + "\n").encode())
    t0 = time.perf_counter()
    result = load_env.load()
    seconds = time.perf_counter() - t0
    print(f"\n10,000 one-row files loaded in {seconds:.1f}s")
    assert (result.files_loaded, result.rows_read, result.rows_accepted) == (10_000, 10_000, 10_000)
    assert load_env.q("SELECT count(*), count(DISTINCT _source_file), min(load_order), "
                      "max(load_order) FROM raw.submission_records r JOIN raw.load_files f "
                      "ON f.file_sha256 = r._file_sha256") == [(10_000, 10_000, 1, 10_000)]
    assert load_env.q("SELECT count(*) FROM raw.submission_records "
                      "WHERE _line_number <> 2") == [(0,)]
    assert_counts_balance(load_env)
    again = load_env.load()
    assert again.files_unchanged == 10_000
    assert seconds < 120, seconds


def test_file_changing_during_read_is_retried_then_loaded(load_env, monkeypatch):
    path = load_env.write("growing.csv", csv_text([good_row(0)]))
    real_open, calls = open, []

    def open_then_append(file, *args, **kwargs):
        handle = real_open(file, *args, **kwargs)
        if Path(file) == path and not calls:
            calls.append(1)
            with real_open(path, "ab") as fh:             # a writer appends meanwhile
                fh.write((csv_line(good_row(1)) + "\n").encode())
        return handle

    monkeypatch.setattr(discovery, "open", open_then_append, raising=False)
    monkeypatch.setattr(discovery, "READ_RETRY_SECONDS", 0.01)
    result = load_env.load()
    assert calls and load_env.file_row("growing.csv")[:5] == ("loaded", None, 2, 2, 0)
    all_accounted(load_env, result)


def test_file_that_never_stops_changing_is_refused_clearly(load_env, monkeypatch):
    path = load_env.write("busy.csv", csv_text([good_row(0)]))
    load_env.write("calm.csv", csv_text([good_row(1)]))
    real_open = open

    def open_then_append(file, *args, **kwargs):
        handle = real_open(file, *args, **kwargs)
        if Path(file) == path:
            with real_open(path, "ab") as fh:
                fh.write((csv_line(good_row(2)) + "\n").encode())
        return handle

    monkeypatch.setattr(discovery, "open", open_then_append, raising=False)
    monkeypatch.setattr(discovery, "READ_RETRY_SECONDS", 0.01)
    result = load_env.load()
    out = {f.source_file: f for f in result.files}
    assert out["busy.csv"].status == "refused"
    assert "changed while it was being read" in out["busy.csv"].reason
    assert "run `flsdb load` again" in out["busy.csv"].reason
    assert out["calm.csv"].status == "loaded"
    assert load_env.q("SELECT source_file FROM raw.load_files WHERE status = 'loaded'") == [
        ("calm.csv",)]
    assert load_env.q("SELECT source_file, rows_read FROM raw.load_files "
                      "WHERE status = 'refused'") == [("busy.csv", 0)]
    assert "1 refused" in result.summary_table()
    monkeypatch.setattr(discovery, "open", real_open, raising=False)
    result = load_env.load()                                 # once quiet, it loads
    assert load_env.file_row("busy.csv")[:5] == ("loaded", None, 4, 4, 0)
    all_accounted(load_env, result)


def test_file_changed_after_reading_before_commit_is_not_committed(load_env, monkeypatch):
    path = load_env.write("late.csv", csv_text([good_row(0)]))
    load_env.write("other.csv", csv_text([good_row(1)]))
    real_flush = loader._Loader.flush

    def flush_after_a_write(self):
        if self.pending:
            with open(path, "ab") as fh:
                fh.write((csv_line(good_row(2)) + "\n").encode())
        return real_flush(self)

    monkeypatch.setattr(loader._Loader, "flush", flush_after_a_write)
    result = load_env.load()
    out = {f.source_file: f for f in result.files}
    assert out["late.csv"].status == "refused"
    assert "changed while it was being loaded (its size changed" in out["late.csv"].reason
    assert out["other.csv"].status == "loaded"
    assert load_env.q("SELECT DISTINCT _source_file FROM raw.submission_records") == [
        ("other.csv",)]
    monkeypatch.setattr(loader._Loader, "flush", real_flush)
    load_env.load()
    assert load_env.file_row("late.csv")[:5] == ("loaded", None, 2, 2, 0)
    assert_counts_balance(load_env)


# --- 2. Discovery: every file the loader does not load is listed and recorded ----------------

def test_symlink_loops_and_hidden_names_are_recorded(load_env):
    landing = load_env.landing
    load_env.write("ok.csv", csv_text([good_row(0)]))
    os.symlink("self_loop.csv", landing / "self_loop.csv")
    os.symlink("loop_b.csv", landing / "loop_a.csv")
    os.symlink("loop_a.csv", landing / "loop_b.csv")
    (landing / "sub").mkdir()
    os.symlink("../sub", landing / "sub" / "dir_loop")               # a link to its own folder
    load_env.write(".DS_Store", b"\x00\x00\x00\x01Bud1")
    load_env.write(".part.csv.part", csv_text([good_row(1)]))
    load_env.write("_notes.txt", "notes")
    load_env.write("_drafts/a.csv", csv_text([good_row(2)]))
    load_env.write("_drafts/deeper/b.csv", csv_text([good_row(3)]))
    load_env.write(".git/config", "[core]")
    load_env.write("sub/.hidden/c.csv", csv_text([good_row(4)]))
    load_env.write("_reference/synthetic_nspl_postcode_lookup.csv", "pcds,lsoa11\n")
    result = load_env.load()                                      # no RuntimeError
    all_accounted(load_env, result)
    out = {f.source_file: f for f in result.files}
    for name in ("self_loop.csv", "loop_a.csv", "loop_b.csv"):
        assert out[name].status == "refused" and "loop" in out[name].reason
    assert out["sub/dir_loop"].status == "refused"
    for name in (".DS_Store", ".part.csv.part", "_notes.txt", "_drafts/a.csv",
                 "_drafts/deeper/b.csv", ".git/config", "sub/.hidden/c.csv"):
        assert out[name].status == "skipped", name
    assert "_reference/synthetic_nspl_postcode_lookup.csv" not in out     # exempt by rule
    assert load_env.q("SELECT count(*) FROM raw.load_files WHERE status = 'loaded'") == [(1,)]


def test_unreadable_files_and_folders_are_recorded(load_env, monkeypatch):
    """A file that cannot be read and a folder that cannot be listed (simulated: the tests run as
    root, for whom permissions do not apply) are refused, listed and recorded; the rest loads."""
    load_env.write("ok.csv", csv_text([good_row(0)]))
    secret = load_env.write("locked.csv", csv_text([good_row(1)]))
    load_env.write("closed/inside.csv", csv_text([good_row(2)]))
    closed = load_env.landing / "closed"
    real_open, real_scandir = open, os.scandir

    def fake_open(file, *args, **kwargs):
        if Path(file) == secret:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    def fake_scandir(path="."):
        if isinstance(path, (str, os.PathLike)) and Path(path) == closed:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(discovery, "open", fake_open, raising=False)
    monkeypatch.setattr(os, "scandir", fake_scandir)
    result = load_env.load()
    out = {f.source_file: f for f in result.files}
    assert out["ok.csv"].status == "loaded"
    assert out["locked.csv"].status == "refused" and "Permission denied" in out["locked.csv"].reason
    assert out["closed"].status == "refused" and "cannot be listed" in out["closed"].reason
    assert set(load_env.q("SELECT source_file, status FROM raw.load_files")) == {
        ("ok.csv", "loaded"), ("locked.csv", "refused"), ("closed", "refused")}
    assert "REFUSED" in result.summary_table()
    monkeypatch.undo()
    result = load_env.load()                                       # readable again: loads
    assert load_env.file_row("locked.csv")[:5] == ("loaded", None, 1, 1, 0)
    assert load_env.file_row("closed/inside.csv")[:5] == ("loaded", None, 1, 1, 0)
    all_accounted(load_env, result)


# --- 7. File names: newline vs a literal backslash-n -----------------------------------------

def test_file_names_with_newline_and_literal_backslash_n_stay_apart(load_env):
    names = ["a\nb.csv", "a\\nb.csv", "tab\there.csv", "tab\\there.csv", "cr\rx.csv",
             "back\\\\slash.csv", "nel\u0085x.csv", "bidi\u202ex.csv"]
    for i, name in enumerate(names):
        load_env.write(name, csv_text([good_row(i)]))
    result = load_env.load()
    all_accounted(load_env, result)
    rows = load_env.q("SELECT source_file, source_file_escaped FROM raw.load_files")
    assert sorted(r[0] for r in rows) == sorted(names)             # the exact names
    escaped = [r[1] for r in rows]
    assert len(set(escaped)) == len(names)                         # unambiguous
    assert all(c.isprintable() for e in escaped for c in e)
    assert {"a\\nb.csv", "a\\\\nb.csv"} <= set(escaped)
    table = result.summary_table()
    assert "a\\nb.csv" in table and "a\\\\nb.csv" in table and "a\nb.csv" not in table
    # lineage: each record points at exactly one file row
    assert load_env.q("SELECT count(*) FROM raw.submission_records r JOIN raw.load_files f "
                      "ON f.file_sha256 = r._file_sha256 AND f.source_file = r._source_file"
                      ) == [(len(names),)]


# ---------------------------------------------------------------------------------------------
# Names starting with '_' or '.'
# ---------------------------------------------------------------------------------------------

def test_underscore_and_dot_paths_skipped_and_recorded(load_env):
    """Names starting with '.' or '_' are not loaded, but every such file is listed and recorded
    with its reason; only the top-level _reference/ folder (the project's own) is exempt."""
    load_env.write("_reference/postcodes.csv", "pcd,lsoa\nAB1 2CD,E01\n")
    load_env.write(".hidden.csv", "junk")
    load_env.write("sub/_tmp/x.csv", "junk")
    load_env.write("sub/_reference/not_exempt.csv", "junk")
    load_env.write("ok.csv", csv_text([good_row(0)]))
    res = load_env.load()
    out = {f.source_file: f for f in res.files}
    assert sorted(out) == [".hidden.csv", "ok.csv", "sub/_reference/not_exempt.csv",
                           "sub/_tmp/x.csv"]
    assert out["ok.csv"].status == "loaded"
    assert out[".hidden.csv"].status == "skipped" and "'.'" in out[".hidden.csv"].reason
    assert "inside the folder 'sub/_tmp'" in out["sub/_tmp/x.csv"].reason
    assert load_env.q("SELECT source_file, status, rows_read FROM raw.load_files "
                      "WHERE status = 'skipped' ORDER BY 1") == [
        (".hidden.csv", "skipped", 0), ("sub/_reference/not_exempt.csv", "skipped", 0),
        ("sub/_tmp/x.csv", "skipped", 0)]
    assert "SKIPPED (not loaded)" in res.summary_table() and "3 skipped" in res.summary_table()
    before = load_env.snapshot()
    res = load_env.load()                      # recorded once: a rerun adds nothing
    assert load_env.snapshot() == before and res.files_skipped == 3
    assert_counts_balance(load_env)
