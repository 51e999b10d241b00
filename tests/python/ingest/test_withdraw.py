"""Issue 19: withdrawing data, and paths a service folder really has, end to end.

One small pipeline (one audit year at 2%), run once for the module with every path under a folder
named like a service's (an apostrophe, spaces, an en dash, a non-ASCII letter): a copy of the dbt
project, the landing folder, the warehouse, the output folder, the history and dbt's target and
logs. `flsdb run` builds and publishes it; then

- a file is withdrawn (`flsdb withdraw --file`), and its bytes are sent again under another name;
- a record is withdrawn (`flsdb withdraw --record`, written in lower case with spaces), and a new
  file re-submits it;
- another file is deleted from the landing folder (not withdrawn);
- next month's submission arrives (one new record updated in the following month: the extract of
  the refresh is in a later publication period, so it is published, flsdb.publish.schedule);
- `flsdb refresh` loads, builds (incremental staging), validates, publishes and reports;
- the record withdrawal is revoked and staging rebuilt.

Each test below checks one promise of docs/reliability.md ("Withdrawing data", "Settings and
paths") on that run.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import tiny_build

# one module-scoped pipeline of its own (generate, load, build, validate, publish, withdraw, refresh)
pytestmark = pytest.mark.warehouse

SERVICE_FOLDER = "St Mary's FLS – ü"


def _flsdb(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).with_name("flsdb")), *args], env=env,
                          capture_output=True, text=True, timeout=1200)


def _ok(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, (proc.args, out[-6000:])
    assert "Traceback" not in out, out[-6000:]
    return out


def _q(warehouse: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _staged(warehouse: Path) -> list[tuple]:
    return _q(warehouse, "select * exclude (staging_inputs_fingerprint) from "
                         "staging.stg_fls_db__submission_records order by all")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict:
    from flsdb.synthetic import generate

    root = tmp_path_factory.mktemp("withdraw") / SERVICE_FOLDER
    root.mkdir()
    project = tiny_build.copy_dbt_project(root, "project – copy")
    landing = root / "landing"
    generate(years=[2024], scale=0.02, out_dir=landing, seed=19, clean=False)
    warehouse = root / "ware house" / "flsdb.duckdb"
    env = {k: v for k, v in os.environ.items() if k != "FLSDB_PSEUDONYM_KEY"}
    env.update({
        "FLSDB_PROJECT_DIR": str(project), "DBT_PROFILES_DIR": str(project),
        "FLSDB_WAREHOUSE": str(warehouse), "FLSDB_LANDING": str(landing),
        "FLSDB_OUTPUT": str(root / "out put"), "FLSDB_HISTORY": str(root / "history" / "h.duckdb"),
        "FLSDB_POSTCODE_LOOKUP": str(landing / "_reference" / "synthetic_nspl_postcode_lookup.csv"),
        "DBT_TARGET_PATH": str(root / "target"), "DBT_LOG_PATH": str(root / "logs"),
        "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    })
    out = {"root": root, "project": project, "landing": landing, "warehouse": warehouse,
           "env": env, "first_run": _ok(_flsdb(["run"], env))}
    out["staged_before"] = _staged(warehouse)

    files = sorted(p for p in landing.glob("SYN0*.csv"))
    by_rows = {name: rows for name, rows in _q(
        warehouse, "select source_file, rows_accepted from raw.load_files where status = 'loaded'")}
    # the file to withdraw, another (its service has other files) to delete, and a record of a
    # third file to withdraw: three different services
    withdrawn_file = next(p for p in files if by_rows.get(p.name, 0) >= 5)
    deleted_file = next(p for p in files if p.name[:6] != withdrawn_file.name[:6]
                        and by_rows.get(p.name, 0) >= 5)
    record_file = next(p for p in files if p.name[:6] not in (withdrawn_file.name[:6],
                                                               deleted_file.name[:6]))
    with record_file.open(newline="", encoding="utf-8-sig") as handle:
        header, first, *_ = list(csv.reader(handle))
    fls, record_id = first[header.index("FLS Code")], first[header.index("Record ID")]
    out.update(withdrawn_file=withdrawn_file.name, deleted_file=deleted_file.name,
               fls=fls.strip().upper(), record_id=record_id.strip())
    out["withdraw_file"] = _flsdb(["withdraw", "--file", withdrawn_file.name, "--by", "Dr Ann O'Neil",
                                   "--reason", "wrong file sent by the service"], env)
    out["withdraw_again"] = _flsdb(["withdraw", "--file", str(withdrawn_file), "--by", "someone",
                                    "--reason", "the same again"], env)
    out["withdraw_record"] = _flsdb(["withdraw", "--record", f" {fls.lower()} :{record_id} ",
                                     "--by", "Caldicott Guardian",
                                     "--reason", "patient objection (data opt-out)"], env)
    out["list"] = _flsdb(["withdraw", "--list"], env)
    # the withdrawn bytes sent again under another name; the withdrawn record re-submitted
    shutil.copy(withdrawn_file, landing / ("resent_" + withdrawn_file.name))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, first])
    (landing / "resubmitted_record.csv").write_text(buf.getvalue(), encoding="utf-8")
    # a file deleted from the landing folder (moved away), not withdrawn
    shutil.move(deleted_file, root / deleted_file.name)
    # next month's submission: one new record of a fourth service, updated in the month after the
    # first extract, so that the refresh's extract falls in a later publication period and is
    # published (one publication per period, flsdb.publish.schedule: a withdrawal reaches the
    # published tier with the next period's extract)
    touched = {p.name[:6] for p in (withdrawn_file, deleted_file, record_file)}
    next_file = next(p for p in files if p.name[:6] not in touched)
    with next_file.open(newline="", encoding="utf-8-sig") as handle:
        next_header, next_row, *_ = list(csv.reader(handle))
    (first_extract,), = _q(warehouse, "select max(extract_date) from marts.fct_episodes")
    next_row[next_header.index("Record ID")] = "NEXT-MONTH-1"
    next_row[next_header.index("Last Updated")] = f"{first_extract + dt.timedelta(days=31)} 09:00:00"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([next_header, next_row])
    (landing / f"{next_file.name[:6]}_next_month.csv").write_text(buf.getvalue(), encoding="utf-8")
    out["first_extract"] = first_extract
    out["refresh"] = _ok(_flsdb(["refresh"], env))
    out["staged_after"] = _staged(warehouse)
    out["history"] = _ok(_flsdb(["history", "--changes"], env))
    return out


# --- Settings and paths: an apostrophe, spaces and non-ASCII letters in every path ---------------

def test_a_project_and_data_under_a_service_folder_name_build_and_publish(run):
    """Issue 19: `flsdb run` under "St Mary's FLS – ü" gave 51 model failures (a seed path written
    into SQL unquoted). Now every step passes and writes only under that folder."""
    import json

    assert "ERROR=0" in run["first_run"] and "Done (" in run["first_run"]
    results = json.loads((run["root"] / "target" / "run_results.json").read_text())["results"]
    assert results and all(r["status"] in ("success", "pass", "no-op") for r in results), \
        [r["unique_id"] for r in results if r["status"] not in ("success", "pass", "no-op")]
    out = run["root"] / "out put"
    for made in (out / "published" / "flsdb_published.duckdb", out / "site" / "index.html",
                 out / "quality" / "report.html", run["root"] / "history" / "h.duckdb",
                 run["warehouse"]):
        assert made.exists(), made


# --- Withdrawing data ----------------------------------------------------------------------------

def test_a_withdrawal_is_recorded_with_who_when_and_why_and_is_idempotent(run):
    for key in ("withdraw_file", "withdraw_again", "withdraw_record", "list"):
        _ok(run[key])
    assert run["withdraw_file"].stdout.startswith("Withdrawn: file " + run["withdrawn_file"])
    assert run["withdraw_again"].stdout.startswith("Already withdrawn: withdrawal 1")
    rows = _q(run["warehouse"], "select withdrawal_id, withdrawal_kind, source_file, withdrawn_by, "
                                "reason, withdrawn_at is not null, revoked_at from raw.withdrawals "
                                "order by 1")
    assert rows[0] == (1, "file", run["withdrawn_file"], "Dr Ann O'Neil",
                       "wrong file sent by the service", True, None)
    assert rows[1][:2] == (2, "record") and rows[1][3] == "Caldicott Guardian"
    assert "2 withdrawal(s) (2 active)" in run["list"].stdout


def test_withdrawn_rows_leave_staging_the_marts_and_the_extract_but_stay_counted(run):
    wh = run["warehouse"]
    (sha,), = _q(wh, "select file_sha256 from raw.load_files where source_file = ?",
                 [run["withdrawn_file"]])
    covered = "(file_sha256 = ? or (fls_code = ? and record_id = ?))"
    args = [sha, run["fls"], run["record_id"]]
    assert _q(wh, f"select count(*) from staging.stg_fls_db__submission_records where {covered}",
              args) == [(0,)]
    # the marts: the record, and every record only the withdrawn file sent, have no episode
    only_there = _q(wh, """
        select upper(trim("FLS Code")), trim("Record ID") from raw.submission_records
        group by all having bool_and(_file_sha256 = ?)""", [sha])
    assert only_there
    episodes = set(_q(wh, "select fls_code, record_id from marts.fct_episodes"))
    assert not episodes & {*only_there, (run["fls"], run["record_id"])}
    # the raw rows are kept (and counted): rows read = accepted + rejected still holds
    raw_file = _q(wh, "select count(*) from raw.submission_records where _file_sha256 = ?", [sha])[0][0]
    assert raw_file > 0
    assert _q(wh, "select count(*) from raw.load_files where rows_read <> rows_accepted + rows_rejected") \
        == [(0,)]
    # the data-quality facts count them, per withdrawal
    problems = _q(wh, "select problem_code, source_file, description from quality.dq_problems "
                      "where problem_kind = 'withdrawn' order by 1")
    assert [p[0] for p in problems] == ["file_withdrawn", "record_withdrawn"]
    assert f"its {raw_file} accepted row(s) are not in the audit" in problems[0][2]
    assert "Dr Ann O'Neil" in problems[0][2] and "wrong file sent" in problems[0][2]
    # every row of the record, in every file (its re-submission too)
    (raw_record,), = _q(wh, "select count(*) from raw.submission_records where "
                            "upper(trim(\"FLS Code\")) = ? and trim(\"Record ID\") = ?",
                        [run["fls"], run["record_id"]])
    assert raw_record >= 2
    assert _q(wh, "select count(*) from raw.submission_records where _source_file = "
                  "'resubmitted_record.csv'") == [(1,)]
    assert f"its {raw_record} accepted row(s)" in problems[1][2]
    (measured,), = _q(wh, "select measured_value from quality.dq_checks where check_name = "
                          "'withdrawals'")
    assert measured == 2
    # staging lost exactly the rows withdrawn (the re-submission was never staged) and gained next
    # month's one record
    staged_drop = len(run["staged_before"]) - len(run["staged_after"])
    assert staged_drop == raw_file + raw_record - 1 - 1, (staged_drop, raw_file, raw_record)


def test_withdrawn_bytes_sent_again_stay_withdrawn(run):
    assert f"resent_{run['withdrawn_file']}" in run["refresh"]
    assert f"same content as {run['withdrawn_file']}" in run["refresh"]


def test_incremental_staging_after_a_withdrawal_equals_a_full_restage(run, tmp_path):
    """The pre-hook deleted the withdrawn rows already staged; a full restage gives the same."""
    copy = tmp_path / "full.duckdb"
    shutil.copy(run["warehouse"], copy)
    env = {**run["env"], "FLSDB_WAREHOUSE": str(copy), "DBT_TARGET_PATH": str(tmp_path / "t")}
    _ok(_flsdb(["build", "--full-refresh", "--select", "stg_fls_db__submission_records",
                "--exclude-resource-type", "unit_test"], env))
    assert _staged(copy) == run["staged_after"]


def test_the_history_shows_results_restated_and_the_withdrawals(run):
    history = run["history"]
    assert "Not published" not in run["refresh"] and "2 publication(s)" in history
    assert "result_restated" in history
    assert "[dq_problem_appeared] New data-quality problem (withdrawn" in history
    assert run["withdrawn_file"] in history


def test_a_file_deleted_from_the_landing_folder_is_reported_not_withdrawn(run):
    wh, name = run["warehouse"], run["deleted_file"]
    assert f"MISSING {name}" in run["refresh"]
    assert "no longer in the landing folder" in run["refresh"]
    (since, sha), = _q(wh, "select missing_since, file_sha256 from raw.load_files "
                           "where source_file = ?", [name])
    assert since is not None
    assert _q(wh, "select count(*) > 0 from staging.stg_fls_db__submission_records "
                  "where file_sha256 = ?", [sha]) == [(True,)]       # still counts
    (description,), = _q(wh, "select description from quality.dq_problems "
                             "where problem_kind = 'file missing from landing'")
    assert name in description and "flsdb withdraw --file" in description


def test_a_revoked_record_withdrawal_restages_its_rows(run, tmp_path):
    copy = tmp_path / "revoked.duckdb"                        # the module's warehouse stays as is
    shutil.copy(run["warehouse"], copy)
    env = {**run["env"], "FLSDB_WAREHOUSE": str(copy), "DBT_TARGET_PATH": str(tmp_path / "t")}
    _ok(_flsdb(["withdraw", "--revoke", "2", "--by", "Caldicott Guardian",
                "--reason", "objection withdrawn"], env))
    again = _ok(_flsdb(["withdraw", "--revoke", "2", "--by", "x", "--reason", "again"], env))
    assert again.startswith("Already revoked")
    _ok(_flsdb(["build", "--select", "stg_fls_db__withdrawals", "stg_fls_db__submission_records",
                "--resource-type", "model"], env))
    rows = _q(copy, "select source_file from staging.stg_fls_db__submission_records "
                    "where fls_code = ? and record_id = ?", [run["fls"], run["record_id"]])
    assert len(rows) >= 2 and ("resubmitted_record.csv",) in rows, rows
    # revoking restaged everything: the rows withdrawn by file stay out
    assert len(_staged(copy)) == len(run["staged_after"]) + len(rows)


@pytest.mark.parametrize("args,code,needle", [
    (["--record", "RX1:R1", "--by", "x", "--reason", "NHS number 943 476 5919"], 2, "NHS number"),
    (["--record", "RX1:R1", "--by", "x", "--reason", "sent on 03/02/2025"], 2, "a date"),
    (["--record", "RX1", "--by", "x", "--reason", "r"], 2, "FLS_CODE:RECORD_ID"),
    (["--record", "RX1:R1", "--reason", "r"], 2, "--by is required"),
    (["--file", "never-loaded.csv", "--by", "x", "--reason", "r"], 1, "No loaded file"),
    (["--file", "sha256:zz", "--by", "x", "--reason", "r"], 2, "hexadecimal"),
    (["--file", "a.csv", "--record", "RX1:R1", "--by", "x", "--reason", "r"], 2, "exactly one"),
])
def test_a_withdrawal_that_cannot_be_made_says_why(run, args, code, needle):
    proc = _flsdb(["withdraw", *args], run["env"])
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
