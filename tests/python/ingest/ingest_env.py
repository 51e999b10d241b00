"""Shared by the tests of src/flsdb/ingest/ (tests/python/ingest/): the `load_env` fixture (a
landing folder, FLS registry and warehouse of the test's own), `assert_counts_balance`, and
ROW_CASES, each row-level reject of docs/specification/submission-format.md (asserted one by one in
test_row_checks.py, reused in test_hostile_input.py's corpus). The submission-row builders are re-exported from
submission_rows.py."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flsdb.ingest import load_landing

from submission_rows import COLS, csv_line, csv_text, good_row, nhs  # noqa: F401  (shared)

REGISTRY_CODES = ("RX1", "RX2", "7A4")


@pytest.fixture
def load_env(tmp_path):
    landing = tmp_path / "landing"
    landing.mkdir()
    registry = tmp_path / "fls_registry.csv"
    registry.write_text("fls_code,fls_name\n" + "".join(f"{c},FLS {c}\n" for c in REGISTRY_CODES))
    wh = tmp_path / "wh" / "test.duckdb"

    class Env:
        def __init__(self):
            self.landing, self.registry, self.warehouse = landing, registry, wh

        def write(self, name: str, content: str | bytes) -> Path:
            p = landing / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                p.write_bytes(content.encode("utf-8"))
            else:
                p.write_bytes(content)
            return p

        def load(self):
            return load_landing(landing, self.warehouse, registry_path=registry, progress=False)

        def q(self, sql: str, params=None):
            con = duckdb.connect(str(self.warehouse), read_only=True)
            try:
                return con.execute(sql, params or []).fetchall()
            finally:
                con.close()

        def file_row(self, name: str):
            # The file's content row; a name may also have rows of runs that did not load it
            # (status skipped or refused), which are history.
            rows = self.q("SELECT status, rejection_reason, rows_read, rows_accepted, "
                          "rows_rejected, detected_encoding FROM raw.load_files "
                          "WHERE source_file = ? AND status IN ('loaded', 'rejected')", [name])
            assert len(rows) == 1, rows
            return rows[0]

        def rejects(self, name: str):
            return self.q("SELECT _line_number, reject_code, column_name, reject_reason, raw_line "
                          "FROM raw.submission_rejects WHERE _source_file = ? "
                          "ORDER BY _line_number", [name])

        def snapshot(self):
            return {t: self.q(f"SELECT * FROM raw.{t} ORDER BY ALL") for t in
                    ("load_files", "submission_records", "submission_rejects")}

    return Env()


def assert_counts_balance(env):
    for name, read, acc, rej, n_rec, n_rej in env.q(
            "SELECT f.source_file, rows_read, rows_accepted, rows_rejected, "
            "(SELECT count(*) FROM raw.submission_records r WHERE r._file_sha256 = f.file_sha256),"
            "(SELECT count(*) FROM raw.submission_rejects r WHERE r._file_sha256 = f.file_sha256)"
            " FROM raw.load_files f"):
        assert read == acc + rej, name
        assert (acc, rej) == (n_rec, n_rej), name


# ---------------------------------------------------------------------------------------------
# Row-level rejects: each code, its column and line number
# ---------------------------------------------------------------------------------------------

ROW_CASES = [
    # (overrides, code, column, text expected in the reason)
    ({"1.11 SiteFirstFrac": "  "}, "missing_required_value", "1.11 SiteFirstFrac", "missing"),
    ({"Record ID": ""}, "missing_required_value", "Record ID", "missing"),
    ({"1.09 Date Index Frac Diagnosed": "31/02/2024"}, "invalid_date",
     "1.09 Date Index Frac Diagnosed", "'31/02/2024'"),
    ({"1.09 Date Index Frac Diagnosed": "2024/06/01"}, "invalid_date",
     "1.09 Date Index Frac Diagnosed", "'2024/06/01'"),
    ({"1.02 Date of Birth": "1948-13-01"}, "invalid_date", "1.02 Date of Birth", "not a valid"),
    ({"Last Updated": "yesterday"}, "invalid_date", "Last Updated", "'yesterday'"),
    ({"Last Updated": "2024-12-01T25:00:00"}, "invalid_date", "Last Updated", "timestamp"),
    ({"3.03 DateofDXA": "30/02/2024"}, "invalid_date", "3.03 DateofDXA", "'30/02/2024'"),
    ({"Date of Death": "soon"}, "invalid_date", "Date of Death", "'soon'"),
    ({"1.01 NHS Number": "9434765918"}, "invalid_nhs_number", "1.01 NHS Number", "modulus-11"),
    ({"1.01 NHS Number": "12345"}, "invalid_nhs_number", "1.01 NHS Number", "modulus-11"),
    ({"FLS Code": "NOPE"}, "unknown_fls_code", "FLS Code", "'NOPE'"),
    ({"1.09 Date Index Frac Diagnosed": "2024-12-02"}, "fracture_after_extract",
     "1.09 Date Index Frac Diagnosed", "2024-12-01"),
    ({"1.09 Date Index Frac Diagnosed": "31/12/2015"}, "fracture_before_2016",
     "1.09 Date Index Frac Diagnosed", "'31/12/2015'"),
    ({"1.02 Date of Birth": "2024-06-02"}, "birth_after_fracture", "1.02 Date of Birth",
     "after the index fracture"),
    ({"1.02 Date of Birth": "1913-05-31"}, "age_over_110", "1.02 Date of Birth", "111 years"),
    ({"1.11 SiteFirstFrac": "Knee"}, "invalid_fracture_site", "1.11 SiteFirstFrac", "'Knee'"),
]
