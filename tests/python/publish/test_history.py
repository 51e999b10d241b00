"""The extract history (docs/specification/monitoring.md section 5; src/flsdb/publish/history.py and history.sql).

Two kinds of test:
- the rules of the change views on small hand-made warehouses (fast): the 0.1-point threshold,
  numerator/denominator changes, results added and removed, outliers appearing, resolving and
  changing, data-quality problems appearing and resolving, idempotence and re-publication;
- end to end: a tiny landing set is loaded, built and recorded (extract 1); then one more month
  of records and one restated record arrive, the warehouse is deleted and rebuilt, and extract 2
  is recorded. The history holds both, recording extract 2 again adds nothing, and the change
  list names the restated record's results and the new month's effect.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from flsdb.publish import history as hist

T1 = dt.datetime(2025, 1, 10, 9, 0, tzinfo=dt.timezone.utc)
T2 = dt.datetime(2025, 2, 10, 9, 0, tzinfo=dt.timezone.utc)
T3 = dt.datetime(2025, 2, 11, 9, 0, tzinfo=dt.timezone.utc)


# ----------------------------------------------------------------------------- hand-made warehouses

def _result(fls="SYN001", kpi=7, numerator=40.0, denominator=80.0, year=2024, breakdown="all",
            value="all", alert=False, alarm=False, direction=None, level="fls") -> dict:
    return {"audit_year": year, "geography_level": level, "geography_code": fls,
            "geography_name": f"Service {fls}", "kpi_number": kpi, "kpi_name": f"KPI {kpi} name",
            "breakdown": breakdown, "breakdown_value": value, "numerator": numerator,
            "denominator": denominator,
            "value_pct": 100.0 * numerator / denominator if denominator else None,
            "denominator_note": None, "ci_lower_pct": None, "ci_upper_pct": None, "rating": None,
            "national_value_pct": 50.0, "is_outlier_alert": alert or alarm,
            "is_outlier_alarm": alarm, "outlier_direction": direction, "is_suppressed": False,
            "is_synthetic_data": True}


def make_warehouse(path: Path, extract_date: str, results: list[dict],
                   problems: list[dict] | None = None) -> Path:
    """A warehouse with the relations the history reads: marts.kpi_results, marts.fct_episodes
    (its extract date) and, when given, quality.dq_problems."""
    if path.exists():
        path.unlink()
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute(f"create table marts.fct_episodes as select date '{extract_date}' as extract_date")
    con.execute("""create table marts.kpi_results (
        audit_year integer, geography_level varchar, geography_code varchar, geography_name varchar,
        kpi_number integer, kpi_name varchar, breakdown varchar, breakdown_value varchar,
        numerator double, denominator double, value_pct double, denominator_note varchar,
        ci_lower_pct double, ci_upper_pct double, rating varchar, national_value_pct double,
        is_outlier_alert boolean, is_outlier_alarm boolean, outlier_direction varchar,
        is_suppressed boolean, is_synthetic_data boolean)""")
    for row in results:
        con.execute(f"insert into marts.kpi_results by name select {', '.join('? as ' + k for k in row)}",
                    list(row.values()))
    if problems is not None:
        con.execute("create schema quality")
        con.execute("""create table quality.dq_problems (problem_kind varchar, problem_code varchar,
            fls_code varchar, source_file varchar, line_number bigint, field_name varchar,
            reason varchar, description varchar)""")
        for p in problems:
            con.execute("insert into quality.dq_problems values (?, ?, ?, ?, ?, ?, ?, ?)",
                        [p["kind"], p.get("code", "x"), p.get("fls", "SYN001"), p["file"], p["line"],
                         p.get("field"), p.get("reason", "r"), p.get("description", "d")])
    con.close()
    return path


def _kinds(changes: list[dict]) -> dict[tuple, str]:
    return {(c["change_section"], c["geography_code"], c["kpi_number"], c["breakdown_value"],
             c["line_number"]): c["change_kind"] for c in changes}


def test_restatement_threshold_and_added_removed(tmp_path):
    history = tmp_path / "h" / "history.duckdb"
    first = [_result("A", numerator=450, denominator=1000),      # 45.0%
             _result("B", numerator=450, denominator=1000),      # 45.0%
             _result("C", numerator=500, denominator=1000),      # 50.0%
             _result("D", kpi=2, numerator=30, denominator=60.000000000000001),
             _result("E", numerator=10, denominator=20),
             _result("F", kpi=2, numerator=30, denominator=60),
             _result("G", numerator=100, denominator=1000),      # 10.0%
             _result("OLD", numerator=1, denominator=2)]
    second = [_result("A", numerator=451, denominator=1000),     # 45.1%: moved 0.1 -> restated
              _result("B", numerator=900.9, denominator=2000),   # 45.045%: < 0.1, but num/den changed
              _result("C", numerator=500, denominator=1000),     # same
              # the same expected count, different in the last bit: not a change
              _result("D", kpi=2, numerator=30, denominator=60.00000000000001),
              _result("E", numerator=10, denominator=0),         # value gone: restated
              # an expected count changed a little: restated, the value moved < 0.1
              _result("F", kpi=2, numerator=30, denominator=60.01),
              # 10.1% - 10.0% is 0.09999999999999964 in floating point: a move of 0.1 all the same
              _result("G", numerator=101, denominator=1000),
              _result("NEW", numerator=3, denominator=4)]
    r1 = hist.record_published_extract(make_warehouse(tmp_path / "w1.duckdb", "2024-12-31", first),
                                       history, T1)
    assert r1.appended and r1.publication_id == 1 and r1.rows["kpi_result_history"] == 8
    assert hist.changes_since_last_extract(history) == []  # one publication: nothing to compare
    r2 = hist.record_published_extract(make_warehouse(tmp_path / "w2.duckdb", "2025-01-31", second),
                                       history, T2)
    assert r2.appended and r2.publication_id == 2
    changes = hist.changes_since_last_extract(history)
    kinds = {c["geography_code"]: c["change_kind"] for c in changes}
    assert kinds == {"A": "result_restated", "B": "result_restated", "E": "result_restated",
                     "F": "result_restated", "G": "result_restated", "NEW": "result_added",
                     "OLD": "result_removed"}
    moved = {c["geography_code"]: c["is_value_moved"] for c in changes}
    assert moved == {"A": True, "B": False, "E": True, "F": False, "G": True, "NEW": True, "OLD": True}
    a = next(c for c in changes if c["geography_code"] == "A")
    assert a["previous_numerator"] == 450 and a["latest_numerator"] == 451
    assert a["previous_extract_date"] == dt.date(2024, 12, 31)
    assert a["latest_extract_date"] == dt.date(2025, 1, 31)
    assert "restated from 45.0% to 45.1% (numerator 450 to 451, denominator 1000 to 1000)" in a["description"]
    assert "no longer reported" in next(c for c in changes if c["geography_code"] == "OLD")["description"]


def test_same_extract_twice_adds_nothing_and_a_republication_is_new(tmp_path):
    history = tmp_path / "history.duckdb"
    w = make_warehouse(tmp_path / "w.duckdb", "2025-01-31", [_result("A")])
    assert hist.record_published_extract(w, history, T1).appended
    again = hist.record_published_extract(w, history, T2)
    assert not again.appended and again.publication_id == 1
    con = duckdb.connect(str(history), read_only=True)
    assert con.execute("select count(*) from extracts").fetchone()[0] == 1
    assert con.execute("select count(*) from kpi_result_history").fetchone()[0] == 1
    con.close()
    # the same extract date with different content: a new publication, compared with the first
    w = make_warehouse(tmp_path / "w.duckdb", "2025-01-31", [_result("A", numerator=41)])
    fix = hist.record_published_extract(w, history, T3)
    assert fix.appended and fix.publication_id == 2
    (change,) = hist.changes_since_last_extract(history)
    assert change["change_kind"] == "result_restated"
    assert change["previous_published_at"] == T1.replace(tzinfo=None)
    assert change["latest_published_at"] == T3.replace(tzinfo=None)
    assert [e["publication_id"] for e in hist.list_extracts(history)] == [1, 2]


def test_a_rebuild_that_differs_in_the_last_bit_is_the_same_extract(tmp_path):
    history = tmp_path / "history.duckdb"
    # the pair met in a real rebuild: rounding either to 6 decimals gives different text
    w = make_warehouse(tmp_path / "w.duckdb", "2025-01-31",
                       [_result("A", kpi=2, numerator=26, denominator=1397.6661004999999)])
    assert hist.record_published_extract(w, history, T1).appended
    w = make_warehouse(tmp_path / "w.duckdb", "2025-01-31",
                       [_result("A", kpi=2, numerator=26, denominator=1397.6661005)])
    assert not hist.record_published_extract(w, history, T2).appended
    # a real change of the same size as the threshold's allowance is not noise
    w = make_warehouse(tmp_path / "w.duckdb", "2025-01-31",
                       [_result("A", kpi=2, numerator=26, denominator=1397.6671005)])
    assert hist.record_published_extract(w, history, T3).appended


def test_outliers_appear_resolve_and_change(tmp_path):
    history = tmp_path / "history.duckdb"
    first = [_result("A", alert=True, direction="low"), _result("B", alarm=True, direction="high"),
             _result("C", alert=True, direction="low"), _result("D"),
             # not an FLS row, not breakdown all: never an outlier of the register
             _result("K04000001", level="national", alert=True, direction="low"),
             _result("E", breakdown="sex", value="male", alert=True, direction="low")]
    second = [_result("A", alert=True, direction="low"), _result("B"),
              _result("C", alarm=True, direction="low"), _result("D", alert=True, direction="high")]
    hist.record_published_extract(make_warehouse(tmp_path / "w.duckdb", "2024-12-31", first), history, T1)
    hist.record_published_extract(make_warehouse(tmp_path / "w.duckdb", "2025-01-31", second), history, T2)
    outliers = {c["geography_code"]: c for c in hist.changes_since_last_extract(history)
                if c["change_section"] == "outlier"}
    assert {k: c["change_kind"] for k, c in outliers.items()} == {
        "B": "outlier_resolved", "C": "outlier_changed", "D": "outlier_appeared"}
    assert "became a high alert" in outliers["D"]["description"]
    assert "no longer an outlier (was a high alarm at 50.0%, now 50.0%)" in outliers["B"]["description"]
    assert "changed from a low alert to a low alarm" in outliers["C"]["description"]


def test_dq_problems_appear_and_resolve_only_when_both_extracts_recorded_them(tmp_path):
    history = tmp_path / "history.duckdb"
    rows = [_result("A")]
    p1 = [{"kind": "row rejected", "file": "SYN001_a.csv", "line": 5, "field": "1.09"},
          {"kind": "warning", "file": "SYN001_a.csv", "line": 7, "field": "2.01"},
          {"kind": "file refused", "fls": None, "file": "bad.csv", "line": None},
          {"kind": "warning", "file": "SYN001_c.csv", "line": 3, "field": "2.01"}]
    p2 = [{"kind": "warning", "file": "SYN001_a.csv", "line": 7, "field": "2.01",
           "description": "reworded: still the same problem"},
          {"kind": "file refused", "fls": None, "file": "bad.csv", "line": None},
          {"kind": "warning", "file": "SYN001_b.csv", "line": 2, "field": "2.01"},
          {"kind": "warning", "file": "SYN001_c.csv", "line": 4, "field": "2.01"}]
    # the first warehouse has no quality models: problems are not compared with it
    hist.record_published_extract(make_warehouse(tmp_path / "w.duckdb", "2024-11-30", rows), history, T1)
    r = hist.record_published_extract(make_warehouse(tmp_path / "w.duckdb", "2024-12-31", rows, p1),
                                      history, T2)
    assert r.sources["dq_problem_history"] == "quality.dq_problems" and r.rows["dq_problem_history"] == 4
    assert hist.changes_since_last_extract(history) == []
    hist.record_published_extract(make_warehouse(tmp_path / "w.duckdb", "2025-01-31", rows, p2), history, T3)
    dq = {(c["source_file"], c["line_number"]): c for c in hist.changes_since_last_extract(history)
          if c["change_section"] == "data_quality"}
    assert {k: c["change_kind"] for k, c in dq.items()} == {
        ("SYN001_a.csv", 5): "dq_problem_resolved", ("SYN001_b.csv", 2): "dq_problem_appeared",
        ("SYN001_c.csv", 3): "dq_problem_resolved", ("SYN001_c.csv", 4): "dq_problem_appeared"}
    assert dq[("SYN001_b.csv", 2)]["description"].startswith(
        "New data-quality problem (warning, FLS SYN001, SYN001_b.csv line 2, field 2.01)")


def test_a_locked_history_is_a_one_line_error(tmp_path):
    history = tmp_path / "history.duckdb"
    w = make_warehouse(tmp_path / "w.duckdb", "2025-01-31", [_result("A")])
    hist.record_published_extract(w, history, T1)
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
          "print('ready', flush=True); time.sleep(60)"), str(history)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        w = make_warehouse(tmp_path / "w.duckdb", "2025-02-28", [_result("A", numerator=1)])
        with pytest.raises(hist.HistoryError) as error:
            hist.record_published_extract(w, history, T2)
        message = str(error.value)
        assert "\n" not in message and "is busy" in message and str(holder.pid) in message
    finally:
        holder.kill()
        holder.wait()
    # nothing half-written: the next attempt appends the extract in full
    assert hist.record_published_extract(w, history, T2).appended
    assert len(hist.list_extracts(history)) == 2


# ------------------------------------------------------------------------------------ end to end

FRACTURE_DATE = "1.09 Date Index Frac Diagnosed"
BONE_THERAPY = "4.01 BoneTherapy"
LAST_UPDATED = "Last Updated"
NEW_MONTH = "2024-12"


def _month(value: str) -> str | None:
    value = value.strip()
    if len(value) == 10 and value[4] == "-":
        return value[:7]
    if len(value) == 10 and value[2] == "/":
        return f"{value[6:]}-{value[3:5]}"
    return None


def _split_new_month(landing: Path, base: Path, month: Path) -> dict[str, int]:
    """Copy `landing` to `base` without the rows fractured in NEW_MONTH; those rows go to `month`
    (one extra file per source file). Returns rows moved per FLS file name prefix (SYNnnn)."""
    shutil.copytree(landing / "_reference", base / "_reference")
    moved: dict[str, int] = {}
    for path in sorted(landing.glob("SYN*.csv")):
        lines = path.read_bytes().splitlines(keepends=True)
        names = next(csv.reader(io.StringIO(lines[0].decode("latin-1").lstrip("\ufeff").lstrip("ï»¿"))))
        try:
            column = [n.strip() for n in names].index(FRACTURE_DATE)
        except ValueError:
            (base / path.name).write_bytes(b"".join(lines))
            continue
        keep, new = [lines[0]], [lines[0]]
        for line in lines[1:]:
            try:
                row = next(csv.reader(io.StringIO(line.decode("latin-1"))))
                fractured = _month(row[column])
            except (StopIteration, IndexError):
                fractured = None
            (new if fractured == NEW_MONTH else keep).append(line)
        (base / path.name).write_bytes(b"".join(keep))
        if len(new) > 1:
            (month / path.name.replace(".csv", f"_new_{NEW_MONTH}.csv")).write_bytes(b"".join(new))
            moved[path.name[:6]] = moved.get(path.name[:6], 0) + len(new) - 1
    return moved


def _load_and_build(landing: Path, warehouse: Path, root: Path) -> None:
    from tiny_build import dbt_env, run_dbt

    flsdb = Path(sys.executable).with_name("flsdb")
    load = subprocess.run([str(flsdb), "load", "--landing", str(landing), "--warehouse", str(warehouse)],
                          env=dbt_env(warehouse, landing), capture_output=True, text=True, timeout=600)
    assert load.returncode == 0, load.stderr[-3000:]
    # seeds and models only: the data tests and unit tests are other tests' business
    build = {"warehouse": warehouse, "landing": landing, "target": root / "target", "logs": root / "logs"}
    result = run_dbt(build, ["build", "--resource-type", "seed", "--resource-type", "model"])
    assert result.returncode == 0, result.stdout[-5000:]


def _kpi_rows(warehouse: Path) -> dict[tuple, tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return {tuple(r[:6]): r[6:] for r in con.execute(
            "select audit_year, geography_level, geography_code, kpi_number, breakdown, breakdown_value,"
            " numerator, denominator, value_pct from marts.kpi_results").fetchall()}
    finally:
        con.close()


@pytest.mark.warehouse
def test_two_extracts_end_to_end(tmp_path):
    from flsdb.synthetic import generate

    root = tmp_path
    generated, landing, month = root / "generated", root / "landing", root / "month"
    for folder in (landing, month):
        folder.mkdir()
    generate(years=[2024], scale=0.03, out_dir=generated, seed=11, clean=True)
    moved = _split_new_month(generated, landing, month)
    assert sum(moved.values()) > 0
    warehouse = root / "warehouse.duckdb"
    history = root / "history" / "flsdb_history.duckdb"

    # ---- extract 1: everything but December
    _load_and_build(landing, warehouse, root)
    first = hist.record_published_extract(warehouse, history, T1)
    assert first.appended and first.sources["outlier_history"] in ("marts.outlier_register",
                                                                   "marts.kpi_results")
    results_1 = _kpi_rows(warehouse)

    # ---- the record to restate: a KPI 7 numerator episode fractured before the new month, at a
    # service that sent nothing for December, so that nothing else moves its KPI 7 result
    con = duckdb.connect(str(warehouse), read_only=True)
    quiet = [f"SYN{n:03d}" for n in range(1000)]
    quiet = [code for code in quiet if code not in moved]
    (extract_1,) = con.execute("select max(extract_date) from marts.fct_episodes").fetchone()
    fls, record_id, source_file, line_number = con.execute(
        """
        select fls_code, record_id, source_file, line_number from marts.fct_episodes
        where is_in_cohort and kpi_7_in_numerator and versions_seen = 1 and audit_year = 2024
          and fracture_date < date '2024-11-01' and list_contains(?, fls_code)
        order by fls_code, record_id limit 1
        """, [quiet]).fetchone()
    # a second quiet service, untouched: its KPI 7 result must not appear among the changes
    (control,) = con.execute(
        "select min(geography_code) from marts.kpi_results where geography_level = 'fls' "
        "and kpi_number = 7 and breakdown = 'all' and denominator > 0 and list_contains(?, geography_code)"
        " and geography_code <> ?", [quiet, fls]).fetchone()
    con.close()
    source = Path(source_file) if Path(source_file).is_absolute() else landing / source_file
    lines = source.read_text(encoding="latin-1").splitlines()
    header = next(csv.reader([lines[0].lstrip("\ufeff").lstrip("ï»¿")]))
    row = next(csv.reader([lines[line_number - 1]]))
    header_names = [h.strip() for h in header]
    assert row[header_names.index("Record ID")].strip() == record_id
    row[header_names.index(BONE_THERAPY)] = "Informed decline"
    row[header_names.index(LAST_UPDATED)] = f"{extract_1 + dt.timedelta(days=3)}T10:00:00"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerow(row)
    (month / f"{fls}_restated_{extract_1 + dt.timedelta(days=3)}.csv").write_text(
        buffer.getvalue(), encoding="latin-1")

    # ---- extract 2: the warehouse is deleted and rebuilt from every file; the history survives
    warehouse.unlink()
    for path in month.iterdir():
        shutil.copy(path, landing / path.name)
    _load_and_build(landing, warehouse, root)
    second = hist.record_published_extract(warehouse, history, T2)
    assert second.appended and second.publication_id == 2
    assert second.extract_date == extract_1 + dt.timedelta(days=3)
    results_2 = _kpi_rows(warehouse)

    # the history holds both; recording extract 2 again adds nothing
    extracts = hist.list_extracts(history)
    assert [(e["publication_id"], e["extract_date"]) for e in extracts] == [
        (1, first.extract_date), (2, second.extract_date)]
    con = duckdb.connect(str(history), read_only=True)
    counts = dict(con.execute("select publication_id, count(*) from kpi_result_history group by 1").fetchall())
    con.close()
    assert counts == {1: len(results_1), 2: len(results_2)}
    again = hist.record_published_extract(warehouse, history, T3)
    assert not again.appended and again.publication_id == 2
    # ... nor does publishing it again from a warehouse rebuilt from scratch from the same files
    warehouse.unlink()
    _load_and_build(landing, warehouse, root)
    rebuilt = hist.record_published_extract(warehouse, history, T3)
    assert not rebuilt.appended and rebuilt.publication_id == 2
    assert len(hist.list_extracts(history)) == 2

    changes = hist.changes_since_last_extract(history)
    results = {(c["audit_year"], c["geography_level"], c["geography_code"], c["kpi_number"],
                c["breakdown"], c["breakdown_value"]): c for c in changes if c["change_section"] == "result"}

    # the restated record: its service's KPI 7 lost one numerator record, same denominator
    restated = results[(2024, "fls", fls, 7, "all", "all")]
    assert restated["change_kind"] == "result_restated"
    assert restated["latest_numerator"] == restated["previous_numerator"] - 1
    assert restated["latest_denominator"] == restated["previous_denominator"]
    assert (2024, "fls", control, 7, "all", "all") not in results
    # the new month: more records nationally, so the national results moved
    national = results[(2024, "national", "K04000001", 7, "all", "all")]
    assert national["change_kind"] == "result_restated"
    assert national["latest_denominator"] > national["previous_denominator"]

    # the view agrees with the rule applied here, independently, to the two builds' kpi_results
    def changed(before, after) -> bool:
        (n1, d1, v1), (n2, d2, v2) = before, after
        if (v1 is None) != (v2 is None) or (v1 is not None and abs(v2 - v1) >= 0.1 - 1e-9):
            return True
        return any((a is None) != (b is None) or (a is not None and abs(a - b) > 1e-9 * max(1, abs(a), abs(b)))
                   for a, b in ((n1, n2), (d1, d2)))

    expected = {k: "result_restated" for k in results_1.keys() & results_2.keys()
                if changed(results_1[k], results_2[k])}
    expected.update({k: "result_added" for k in results_2.keys() - results_1.keys()})
    expected.update({k: "result_removed" for k in results_1.keys() - results_2.keys()})
    assert {k: c["change_kind"] for k, c in results.items()} == expected


# ------------------------------------------------------------------ sources, read-only, the command

def test_the_outlier_register_is_preferred_and_the_warehouse_is_only_read(tmp_path):
    history = tmp_path / "history.duckdb"
    warehouse = make_warehouse(tmp_path / "w.duckdb", "2025-01-31",
                               [_result("A", alert=True, direction="low")])
    con = duckdb.connect(str(warehouse))
    # the columns of models/marts/outlier_register.sql (issue 14 part 4)
    con.execute("""create table marts.outlier_register as select
        2024 as audit_year, 'REG' as fls_code, 'Register FLS' as fls_name, 7 as kpi_number,
        'KPI 7' as kpi_name, 'alarm' as outlier_level, 'high' as outlier_direction,
        9.0 ::double as numerator, 10.0::double as denominator, 90.0::double as value_pct,
        50.0::double as national_value_pct, 'fls_notified' as status""")
    con.close()
    before = (warehouse.stat().st_mtime_ns, warehouse.stat().st_size)
    recorded = hist.record_published_extract(warehouse, history, T1)
    assert (warehouse.stat().st_mtime_ns, warehouse.stat().st_size) == before
    assert recorded.sources["outlier_history"] == "marts.outlier_register"
    con = duckdb.connect(str(history), read_only=True)
    assert con.execute("select fls_code, outlier_level, status from outlier_history").fetchall() == [
        ("REG", "alarm", "fls_notified")]
    con.close()


def test_flsdb_history_command(tmp_path):
    from click.testing import CliRunner

    from flsdb.cli import main

    history = tmp_path / "history.duckdb"
    runner = CliRunner()
    assert "No publication recorded" in runner.invoke(main, ["history", "--history", str(history)]).output
    hist.record_published_extract(make_warehouse(tmp_path / "w.duckdb", "2024-12-31",
                                                 [_result("A"), _result("B", alert=True, direction="low")]),
                                  history, T1)
    hist.record_published_extract(make_warehouse(tmp_path / "w.duckdb", "2025-01-31",
                                                 [_result("A", numerator=41), _result("B")]), history, T2)
    result = runner.invoke(main, ["history", "--history", str(history), "--changes", "--section", "outlier"])
    assert result.exit_code == 0, result.output
    assert "2 publication(s)" in result.output
    assert "Changes since the last extract (2024-12-31 -> 2025-01-31)" in result.output
    assert "[outlier_resolved]" in result.output and "[result_restated]" not in result.output
    assert "result_restated" in result.output  # the count per kind


# ---------------------------------------------- a history that is lost or damaged (issue 19)
# The history cannot be rebuilt: a damaged one is refused, before anything is written, with one
# line that says to restore it from a backup (never "rebuild it from the landing folder"), and its
# bytes are left as they were. The same cases through `flsdb publish`, with the published tier
# left untouched: test_hostile_pipeline.py.

def _two_publications(tmp_path: Path) -> Path:
    history = tmp_path / "history" / "flsdb_history.duckdb"
    hist.record_published_extract(make_warehouse(tmp_path / "w1.duckdb", "2024-12-31", [_result("A")]), history, T1)
    hist.record_published_extract(make_warehouse(tmp_path / "w2.duckdb", "2025-01-31",
                                                 [_result("A", numerator=41)]), history, T2)
    return history


def _damage(history: Path, damage: str) -> None:
    if damage == "empty":
        history.write_bytes(b"")
    elif damage.startswith("truncated"):
        size = history.stat().st_size
        keep = {"truncated_90": size * 9 // 10, "truncated_50": size // 2, "truncated_header": 4096}[damage]
        with open(history, "r+b") as handle:
            handle.truncate(keep)
    elif damage == "garbage":
        history.write_bytes(bytes(range(256)) * 400)
    elif damage == "folder":
        history.unlink()
        history.mkdir()
        (history / "something.txt").write_text("x")
    elif damage == "incomplete":                 # rows, but no extracts table
        with duckdb.connect(str(history)) as con:
            con.execute("drop view if exists changes_since_last_extract")
            for view in ("result_changes", "outlier_changes", "dq_problem_changes", "latest_two_extracts"):
                con.execute(f"drop view if exists {view}")
            con.execute("drop table extracts")
    else:
        raise ValueError(damage)


def _state(path: Path):
    return sorted(p.name for p in path.iterdir()) if path.is_dir() else path.read_bytes()


DAMAGES = {"empty": ("history_corrupt", 6, "empty file (0 bytes)"),
           "truncated_90": ("history_corrupt", 6, "truncated"),
           "truncated_50": ("history_corrupt", 6, "truncated"),
           "truncated_header": ("history_corrupt", 6, "unreadable, truncated or corrupt"),
           "garbage": ("history_corrupt", 6, "unreadable, truncated or corrupt"),
           "incomplete": ("history_corrupt", 6, "incomplete"),
           "folder": ("configuration", 8, "is a folder, not a history file")}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_history_is_refused_before_anything_is_written(tmp_path, damage):
    from click.testing import CliRunner

    from flsdb.cli import main

    history = _two_publications(tmp_path)
    _damage(history, damage)
    before = _state(history)
    kind, code, words = DAMAGES[damage]
    warehouse = make_warehouse(tmp_path / "w3.duckdb", "2025-02-28", [_result("A", numerator=42)])
    for attempt in (lambda: hist.record_published_extract(warehouse, history, T3),
                    lambda: hist.check_history(history, writing=True),
                    lambda: hist.list_extracts(history),
                    lambda: hist.changes_since_last_extract(history)):
        with pytest.raises(hist.HistoryError) as error:
            attempt()
        message = str(error.value)
        assert error.value.kind == kind and error.value.exit_code == code, message
        assert "\n" not in message and words in message and str(history) in message
        assert "landing folder:" not in message and "flsdb load" not in message
        if kind == "history_corrupt":
            assert "Restore it from your backup" in message
    assert _state(history) == before                  # nothing written, nothing made worse
    assert not list(history.parent.glob(f".{history.name}.new-*"))
    result = CliRunner().invoke(main, ["history", "--history", str(history)])
    assert result.exit_code == code, result.output
    # (a folder is refused by the settings check at start-up, before the history is opened)
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
    assert str(history) in result.output
    assert "Unexpected error" not in result.output


def test_a_history_file_without_tables_is_an_empty_history(tmp_path):
    """A DuckDB file with no tables (what a kill during the first append left before the history
    was created whole) holds nothing: it reads as empty, and the next publication fills it."""
    from click.testing import CliRunner

    from flsdb.cli import main

    history = tmp_path / "flsdb_history.duckdb"
    duckdb.connect(str(history)).close()
    assert hist.check_history(history, writing=False) == "empty"
    assert hist.list_extracts(history) == [] and hist.changes_since_last_extract(history) == []
    result = CliRunner().invoke(main, ["history", "--history", str(history)])
    assert result.exit_code == 0 and "No publication recorded" in result.output
    recorded = hist.record_published_extract(make_warehouse(tmp_path / "w.duckdb", "2025-01-31", [_result("A")]),
                                             history, T1)
    assert recorded.appended and recorded.publication_id == 1
    assert hist.check_history(history, writing=True) == "ready"


def test_a_history_held_or_on_a_read_only_file_system_is_refused(tmp_path):
    history = _two_publications(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(60)"), str(history)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(hist.HistoryError) as error:
            hist.check_history(history, writing=True)
        assert error.value.kind == "history_busy" and error.value.exit_code == 4
        assert str(holder.pid) in str(error.value)
    finally:
        holder.kill()
        holder.wait()
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        shutil.copy(history, mount / history.name)
        assert subprocess.run(["mount", "-o", "remount,ro", str(mount)]).returncode == 0
        read_only = mount / history.name
        assert len(hist.list_extracts(read_only)) == 2          # reading still works
        w = make_warehouse(tmp_path / "w3.duckdb", "2025-02-28", [_result("A", numerator=42)])
        with pytest.raises(hist.HistoryError) as error:
            hist.record_published_extract(w, read_only, T3)
        assert error.value.kind == "history_read_only" and error.value.exit_code == 5
        assert "Nothing was published" in str(error.value)
        with pytest.raises(hist.HistoryError) as error:   # a new history in a read-only folder
            hist.record_published_extract(w, mount / "new" / "h.duckdb", T3)
        assert error.value.kind == "history_read_only"
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)


def test_a_history_from_before_signoffs_is_read_and_gains_the_columns(tmp_path):
    history = _two_publications(tmp_path)
    with duckdb.connect(str(history)) as con:                 # the history as issue 14 made it
        for column in hist.SIGNOFF_COLUMNS | {"warehouse_sha256": 0, "validation_sha256": 0, "report_sha256": 0}:
            con.execute(f"alter table extracts drop column {column}")
    old = hist.list_extracts(history)
    assert len(old) == 2 and "signed_off_by" not in old[0]
    signoff = {"reviewer": "Dr Grace Hopper", "kind": "person", "decided_at": "2025-03-01T09:00:00+00:00",
               "note": "fine", "verdict": "PASS WITH WARNINGS", "warnings_acknowledged": ["dq.a", "gx.b"],
               "checks_skipped": [], "warehouse": {"sha256": "w" * 64}, "validation": {"sha256": "v" * 64},
               "report": {"sha256": "r" * 64}}
    w = make_warehouse(tmp_path / "w3.duckdb", "2025-02-28", [_result("A", numerator=42)])
    assert hist.record_published_extract(w, history, T3, signoff=signoff).appended
    extracts = hist.list_extracts(history)
    assert [e["signed_off_by"] for e in extracts] == [None, None, "Dr Grace Hopper"]
    latest = extracts[-1]
    assert latest["warnings_acknowledged"] == ["dq.a", "gx.b"] and latest["report_sha256"] == "r" * 64
    assert latest["signed_off_at"] == dt.datetime(2025, 3, 1, 9, 0)
    assert hist.changes_since_last_extract(history)


BIG_RESULTS = 20_000


def _big_warehouse(path: Path) -> Path:
    """A warehouse whose results take the history a moment to append (room for a kill)."""
    make_warehouse(path, "2025-01-31", [_result("A")])
    with duckdb.connect(str(path)) as con:
        con.execute(f"""insert into marts.kpi_results by name
            select 2024 as audit_year, 'fls' as geography_level, 'F' || i as geography_code,
                   'Service ' || i as geography_name, 7 as kpi_number, 'KPI 7' as kpi_name,
                   'all' as breakdown, 'all' as breakdown_value, 1.0 * (i % 50) as numerator,
                   50.0 as denominator, 2.0 * (i % 50) as value_pct, false as is_suppressed,
                   true as is_synthetic_data
            from range({BIG_RESULTS}) as t(i)""")
    return path


def test_a_kill_during_the_first_append_never_leaves_a_history_without_tables(tmp_path):
    """SIGKILL at moments of a first append (the history's temporary file appearing, the history
    appearing, its write-ahead log appearing, and fixed delays): after every kill the history is
    absent or whole, `flsdb history` answers, and the next append records the publication."""
    from click.testing import CliRunner

    from flsdb.cli import main

    warehouse = _big_warehouse(tmp_path / "big.duckdb")
    history = tmp_path / "history" / "flsdb_history.duckdb"
    history.parent.mkdir()
    script = ("import sys, datetime as dt; from flsdb.publish import history as h; "
              "h.record_published_extract(sys.argv[1], sys.argv[2], dt.datetime(2025, 2, 1))")
    # the delays are fractions of one uninterrupted append timed here, so that they land during the
    # append on a quiet machine and a busy one alike (fixed delays missed it when the machine was quiet)
    timing = tmp_path / "timing" / "flsdb_history.duckdb"
    timing.parent.mkdir()
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script, str(warehouse), str(timing)], check=True)
    whole = time.monotonic() - started
    triggers = [".new-", "history", ".wal", *(whole * f for f in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95))]
    outcomes = []
    for trigger in triggers:
        for leftover in history.parent.iterdir():
            leftover.unlink()
        writer = subprocess.Popen([sys.executable, "-c", script, str(warehouse), str(history)])
        started = time.monotonic()
        while writer.poll() is None:
            names = os.listdir(history.parent)
            if (isinstance(trigger, float) and time.monotonic() - started >= trigger) \
                    or (trigger == ".new-" and any(".new-" in n for n in names)) \
                    or (trigger == "history" and history.name in names) \
                    or (trigger == ".wal" and f"{history.name}.wal" in names):
                writer.send_signal(signal.SIGKILL)
                break
            time.sleep(0.001)
        writer.wait()
        state = hist.check_history(history, writing=False)           # never raises: not damaged
        outcomes.append((trigger, writer.returncode, state))
        assert state in ("absent", "empty", "ready"), outcomes
        extracts = hist.list_extracts(history)
        assert len(extracts) == (1 if state == "ready" else 0)
        result = CliRunner().invoke(main, ["history", "--history", str(history)])
        assert result.exit_code == 0, (trigger, result.output)
        if state != "ready":              # the next append records it (a whole one stays as it is)
            recorded = hist.record_published_extract(warehouse, history, T2)
            assert recorded.publication_id == 1 and recorded.appended
        assert len(hist.list_extracts(history)) == 1
        assert not list(history.parent.glob(f".{history.name}.new-*"))
    killed = [o for o in outcomes if o[1] == -signal.SIGKILL]
    assert len(killed) >= 6, outcomes      # most kill points land during the append
