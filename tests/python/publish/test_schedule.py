"""Two extracts in a row (issue 22, part 6): the publication schedule (flsdb.publish.schedule).

Publish extract 1, add one record to one service, rebuild extract 2. Published as well, the two
would give that record away: the national rows of the two differ by exactly one patient, in one
age band and one deprivation quintile. The rule (docs/bi.md, "Two extracts in a row"): the published
tier changes at most once per publication period, so `flsdb publish` does not publish extract 2
(same period, other numbers) and leaves extract 1 published, byte for byte; it checks the schedule
after the quality gate and the sign-off (test_gate.py has the signed-off extract held back). A re-run of the
extract published now, and an extract of a later period, are published.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

import tiny_build
from flsdb.cli import main
from flsdb.publish.marts import PUBLISHED_DB_NAME, publish_marts, read_manifest
from flsdb.publish.schedule import period, refusal


def _valid_nhs_number(base: int) -> str:
    """A 10-digit number passing the NHS modulus-11 check, from a 9-digit base."""
    for b in range(base, base + 100):
        digits = [int(d) for d in f"{b:09d}"]
        check = 11 - sum(d * w for d, w in zip(digits, range(10, 1, -1))) % 11
        if check == 11:
            check = 0
        if check != 10:
            return f"{b:09d}{check}"
    raise AssertionError("no valid NHS number")


def _add_one_record(landing: Path, warehouse: Path) -> tuple[str, str]:
    """A copy of one cohort record of one service as a new patient, in a new file, updated on the
    extract date (so the extract date does not move). Returns (FLS code, new record ID)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    fls, record_id, source_file, line_number, extract_date = con.execute("""
        select fls_code, record_id, source_file, line_number, extract_date from marts.fct_episodes
        where is_in_cohort and versions_seen = 1 order by fls_code, record_id limit 1""").fetchone()
    con.close()
    source = Path(source_file) if Path(source_file).is_absolute() else landing / source_file
    lines = source.read_text(encoding="latin-1").splitlines()
    header = next(csv.reader([lines[0].lstrip("\ufeff")]))
    names = [h.strip() for h in header]
    row = next(csv.reader([lines[line_number - 1]]))
    assert row[names.index("Record ID")].strip() == record_id
    new_id = "R9999999"
    row[names.index("Record ID")] = new_id
    row[names.index("1.01 NHS Number")] = _valid_nhs_number(987654321)
    row[names.index("Last Updated")] = f"{extract_date} 09:00:00"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerow(row)
    (landing / f"{fls}_added_{extract_date}.csv").write_text(buffer.getvalue(), encoding="latin-1")
    return fls, new_id


@pytest.fixture(scope="module")
def two_extracts(tmp_path_factory) -> dict:
    """Extract 1 (the tiny build) published; extract 2 = extract 1 + one record, built."""
    tiny = tiny_build.tiny_build(tmp_path_factory)
    root = tmp_path_factory.mktemp("two-extracts")
    out = root / "output"
    publish_marts(tiny["warehouse"], out)
    landing = root / "landing"
    shutil.copytree(tiny["landing"], landing)
    fls, record_id = _add_one_record(landing, tiny["warehouse"])
    build = {"root": root, "landing": landing, "warehouse": root / "extract2.duckdb",
             "target": root / "target", "logs": root / "logs"}
    flsdb = Path(sys.executable).with_name("flsdb")
    load = subprocess.run([str(flsdb), "load", "--landing", str(landing), "--warehouse", str(build["warehouse"])],
                          env=tiny_build.dbt_env(build["warehouse"], landing), capture_output=True, text=True,
                          timeout=900)
    assert load.returncode == 0, load.stdout[-3000:] + load.stderr[-3000:]
    result = tiny_build.run_dbt(build, ["build", "--exclude-resource-type", "unit_test"])
    tiny_build.assert_built(build, result)
    return {"tiny": tiny, "out": out, "extract_2": build["warehouse"], "fls": fls, "record_id": record_id,
            "root": root}


def _national(db: Path) -> dict:
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("""
        select kpi_number, breakdown, breakdown_value, numerator, denominator
        from publication.published_kpi_results
        where geography_level = 'national' and not is_suppressed and kpi_number > 1""").fetchall()
    con.close()
    return {(k, b, v): (n, d) for k, b, v, n, d in rows}


def test_two_extracts_a_record_apart_would_give_the_record_away(two_extracts, tmp_path):
    """Why the rule: extract 2 published beside extract 1, the national rows alone show the added
    patient: each KPI whose national denominator rose by one says whether the patient met it, and
    each breakdown published in both says which value the patient has."""
    second = publish_marts(two_extracts["extract_2"], tmp_path / "output")
    before = _national(two_extracts["out"] / "published" / PUBLISHED_DB_NAME)
    after = _national(second)
    both = before.keys() & after.keys()
    outcomes = {k: after[(k, "all", "all")][0] - before[(k, "all", "all")][0] for (k, b, v) in both
                if b == "all" and after[(k, b, v)][1] - before[(k, b, v)][1] == 1}
    assert len(outcomes) >= 3 and set(outcomes.values()) <= {0, 1}, outcomes
    moved: dict[tuple, list] = {}
    for k, b, v in both:
        if b != "all" and k in outcomes and after[(k, b, v)][1] != before[(k, b, v)][1]:
            moved.setdefault((k, b), []).append((v, after[(k, b, v)][1] - before[(k, b, v)][1]))
    assert all(len(values) == 1 and values[0][1] == 1 for values in moved.values()), moved
    print(f"the added patient: outcomes {outcomes}, breakdown values {moved}")


def test_the_second_extract_of_a_period_is_not_published(two_extracts, tmp_path):
    out = two_extracts["out"]
    before = read_manifest(out)["database_sha256"]
    reason = refusal(two_extracts["extract_2"], out)
    assert reason and "already has its publication" in reason and "once per month" in reason
    # `flsdb publish` applies it after the quality gate and the sign-off (flsdb.publish.release):
    # extract 2, not validated nor signed off, is refused by the gate; nothing is written. The
    # signed-off extract held back by the schedule: test_gate.py.
    validation = tmp_path / "validation.json"
    validation.write_text(json.dumps({"warehouse": str(two_extracts["extract_2"])}), encoding="utf-8")
    approval = out / "approval.json"
    outcome = CliRunner().invoke(main, ["publish", "--validation", str(validation), "--output", str(out)])
    assert outcome.exit_code in (3, 9), outcome.output
    assert "Not published" not in outcome.output and "Error: " in outcome.output, outcome.output
    assert read_manifest(out)["database_sha256"] == before
    assert not approval.exists()


def test_a_rerun_of_the_published_extract_may_be_published_again(two_extracts):
    assert refusal(two_extracts["tiny"]["warehouse"], two_extracts["out"]) is None


def _fake_publication(path: Path, extract_date: str, value: float) -> Path:
    con = duckdb.connect(str(path))
    con.execute("create schema publication")
    con.execute(f"create table publication.published_records_submitted as "
                f"select 2024 as audit_year, 100 as records_submitted, date '{extract_date}' as extract_date")
    for table in ("published_kpi_results", "published_kpi_monthly"):
        con.execute(f"create table publication.{table} as select {value} as numerator")
    con.close()
    return path


@pytest.mark.parametrize("published, new, value, allowed", [
    ("2025-06-30", "2025-07-31", 2.0, True),       # a later month: the next scheduled publication
    ("2025-06-30", "2025-06-30", 1.0, True),       # the same extract, the same numbers: a re-run
    ("2025-06-30", "2025-06-30", 2.0, False),      # the same extract date, other numbers
    ("2025-06-01", "2025-06-30", 2.0, False),      # a later extract of the same month
    ("2025-06-30", "2025-05-31", 2.0, False),      # an older extract
])
def test_the_schedule(tmp_path, published, new, value, allowed):
    out = tmp_path / "output"
    (out / "published").mkdir(parents=True)
    _fake_publication(out / "published" / PUBLISHED_DB_NAME, published, 1.0)
    warehouse = _fake_publication(tmp_path / "warehouse.duckdb", new, value)
    assert (refusal(warehouse, out) is None) == allowed
    assert refusal(warehouse, tmp_path / "nothing-published") is None


def test_periods():
    assert period(dt.date(2025, 6, 30), "month") == (2025, 6) < period(dt.date(2025, 7, 1), "month")
    assert period(dt.date(2025, 6, 30), "quarter") == period(dt.date(2025, 4, 1), "quarter") == (2025, 2)
    assert period(dt.date(2025, 12, 31), "year") < period(dt.date(2026, 1, 1), "year")
