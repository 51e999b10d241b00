"""Issue 21: a production build leaves dbt's unit tests out, and a plain `flsdb build` with nothing
new is skipped (src/flsdb/build_state.py). The skip must never happen when anything that feeds a
number changed: each case below changes one input of a recorded build and expects the next build
to run and to name that input.

The fingerprint cases need no dbt build: a small landing set loaded into a warehouse (the raw
schema), a copy of the dbt project, and a recorded fingerprint. The end-to-end case
(`flsdb build` twice on a copy of the tiny build, then a dbt command that must make the record
forgotten) is marked `warehouse`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import tiny_build
from flsdb import build_state
from flsdb.ingest import withdraw as withdrawals
from flsdb.ingest.loader import load_landing
from flsdb.synthetic import generate


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> dict:
    """A small landing set (2024 at 0.2%) loaded into a warehouse: the raw schema only."""
    root = tmp_path_factory.mktemp("build_state")
    landing, warehouse = root / "landing", root / "loaded.duckdb"
    generate(years=[2024], scale=0.002, out_dir=landing, seed=11)
    load_landing(landing, warehouse, progress=False)
    return {"landing": landing, "warehouse": warehouse}


@pytest.fixture
def recorded(loaded, tmp_path, monkeypatch) -> dict:
    """A copy of the project and of the loaded warehouse, with the fingerprint of both recorded as
    if `flsdb build` had just succeeded (its run_results.json in target/)."""
    monkeypatch.delenv("FLSDB_PSEUDONYM_KEY", raising=False)
    project = tiny_build.copy_dbt_project(tmp_path)
    warehouse = tmp_path / "flsdb.duckdb"
    shutil.copyfile(loaded["warehouse"], warehouse)
    lookup = tmp_path / "postcode_lookup.csv"
    shutil.copyfile(loaded["landing"] / "_reference" / "synthetic_nspl_postcode_lookup.csv", lookup)
    run_results = tmp_path / "target" / "run_results.json"
    run_results.parent.mkdir()
    run_results.write_text(json.dumps({"metadata": {"invocation_id": "build-1"}, "results": []}))
    with duckdb.connect(str(warehouse)) as con:
        build_state.write_record(con, build_state.fingerprint(con, project, lookup), "build-1")
    case = {"project": project, "warehouse": warehouse, "lookup": lookup, "run_results": run_results,
            "landing": loaded["landing"]}
    case["decide"] = lambda: build_state.decide(warehouse, project, lookup, run_results)
    return case


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def _sql(case: dict, sql: str) -> None:
    with duckdb.connect(str(case["warehouse"])) as con:
        con.execute(sql)


def _withdraw_a_record(case: dict) -> None:
    with duckdb.connect(str(case["warehouse"]), read_only=True) as con:
        fls, record = con.execute('select "FLS Code", "Record ID" from raw.submission_records '
                                  'order by all limit 1').fetchone()
    withdrawals.withdraw(case["warehouse"], by="test", reason="a patient's objection",
                         record=f"{fls}:{record}", landing=case["landing"])


#: (what changes, how, the input the next build must name: the words, or a regular expression)
CHANGES = {
    "a seed row": (lambda c: _append(c["project"] / "seeds" / "kpi_definitions.csv", "\n"),
                   "seeds/kpi_definitions.csv changed"),
    "a model": (lambda c: _append(c["project"] / "models" / "marts" / "kpi_results.sql", "\n-- edited\n"),
                "models/marts/kpi_results.sql changed"),
    "a macro": (lambda c: _append(c["project"] / "macros" / "cross_engine" / "age_in_years.sql", "\n"),
                "macros/cross_engine/age_in_years.sql changed"),
    "a data test": (lambda c: _append(c["project"] / "tests" / "assert_seed_rows_match.sql", "\n"),
                    "tests/assert_seed_rows_match.sql changed"),
    "a var in dbt_project.yml": (
        lambda c: (c["project"] / "dbt_project.yml").write_text(
            (c["project"] / "dbt_project.yml").read_text(encoding="utf-8").replace(
                "suppression_min_denominator: 10", "suppression_min_denominator: 11"), encoding="utf-8"),
        "dbt_project.yml changed"),
    "a reference file": (lambda c: _append(next((c["project"] / "data" / "reference").glob("*.csv.gz")), "x"),
                         "data/reference/"),
    "the postcode lookup": (lambda c: _append(c["lookup"], "ZZ1 1ZZ,E01000001\n"), "postcode lookup changed"),
    "a new raw row": (lambda c: _sql(c, "insert into raw.submission_records "
                                        "select * from raw.submission_records limit 1"),
                      r"raw\.submission_records (\d+) -> (\d+) rows"),
    "a changed raw value": (lambda c: _sql(c, "update raw.submission_records set \"1.03 Gender\" = 'X' "
                                              "where rowid = (select min(rowid) from raw.submission_records)"),
                            "raw.submission_records changed"),
    "a withdrawal": (_withdraw_a_record, r"raw\.withdrawals 0 -> 1 rows"),
    "a rejected row gone": (lambda c: _sql(c, "delete from raw.submission_rejects "
                                              "where rowid = (select min(rowid) from raw.submission_rejects)"),
                            "raw.submission_rejects"),
}


def test_nothing_changed_is_skipped(recorded):
    decision = recorded["decide"]()
    assert decision.skip, decision.reason
    assert decision.reason.startswith("nothing changed since the build of ")


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_any_changed_input_makes_the_build_run_and_is_named(recorded, change):
    make, named = CHANGES[change]
    make(recorded)
    decision = recorded["decide"]()
    assert not decision.skip
    assert named in decision.reason or re.search(named, decision.reason), decision.reason
    counts = re.search(r"(\d+) -> (\d+) rows", decision.reason)
    if change == "a new raw row":
        assert int(counts.group(2)) == int(counts.group(1)) + 1


def test_a_new_pseudonym_key_makes_the_build_run_and_is_never_written(recorded, monkeypatch):
    key = "k" * 40
    monkeypatch.setenv("FLSDB_PSEUDONYM_KEY", key)
    decision = recorded["decide"]()
    assert not decision.skip and "FLSDB_PSEUDONYM_KEY changed" in decision.reason
    assert key not in json.dumps(decision.components)


def test_where_and_how_fast_are_not_inputs(recorded, monkeypatch):
    """The warehouse path, threads and memory cap change no number: no rebuild for them."""
    monkeypatch.setenv("FLSDB_THREADS", "1")
    monkeypatch.setenv("FLSDB_DUCKDB_MEMORY_LIMIT", "1GB")
    monkeypatch.setenv("FLSDB_WAREHOUSE", "/elsewhere.duckdb")
    assert recorded["decide"]().skip


def test_tool_versions_are_inputs(recorded):
    from importlib import metadata

    components = recorded["decide"]().components
    assert components["tool dbt-core"] == metadata.version("dbt-core")
    assert components["tool duckdb"] == duckdb.__version__
    assert "tool flsdb.dbt_duckdb_plugin" in components
    old = dict(components, **{"tool dbt-core": "1.10.0"})
    assert build_state.changes(old, components) == [f"dbt-core 1.10.0 -> {metadata.version('dbt-core')}"]


def test_replaced_run_results_make_the_build_run(recorded):
    """`flsdb validate` reads run_results.json: a skip is only right while it is the recorded build's."""
    recorded["run_results"].write_text(json.dumps({"metadata": {"invocation_id": "other"}}))
    decision = recorded["decide"]()
    assert not decision.skip and "replaced or removed" in decision.reason


def test_a_forgotten_record_makes_the_build_run(recorded):
    """What the on-run-start hook does for every dbt command (the SQL of its DuckDB macro)."""
    macro = (recorded["project"] / "macros" / "cross_engine" / "forget_build_fingerprint.sql").read_text()
    drop = macro.split("duckdb__forget_build_fingerprint() -%}")[1].split("{%-")[0].strip()
    _sql(recorded, drop)
    decision = recorded["decide"]()
    assert not decision.skip and decision.reason.startswith("no build recorded")


def test_production_builds_leave_unit_tests_out():
    assert build_state.production_args(["build"]) == ["build", "--exclude-resource-type", "unit_test"]
    assert build_state.production_args(["build", "--full-refresh"])[-2:] == ["--exclude-resource-type",
                                                                             "unit_test"]
    # a command that names unit tests itself is left as it is; the data-only refresh leaves them out
    assert build_state.production_args(["build", "--select", "resource_type:unit_test"]) == \
        ["build", "--select", "resource_type:unit_test"]
    from flsdb.cli import DATA_ONLY_BUILD
    assert build_state.production_args(DATA_ONLY_BUILD) == [*DATA_ONLY_BUILD, "--exclude-resource-type", "unit_test"]


def test_the_test_suite_still_runs_every_unit_test(tiny):
    """`make test` and CI run dbt's unit tests: the shared tiny build is a plain `dbt build`
    (tiny_build.py), and every unit test in it passed (its output; its run_results.json may be
    another test's by now)."""
    output = tiny["build_output"]
    started = [line for line in output.splitlines() if " START unit_test " in line]
    assert len(started) >= 40, output[-3000:]
    assert "Completed successfully" in output and " ERROR=0 " in output, output[-3000:]


@pytest.mark.warehouse
def test_flsdb_build_twice_skips_the_second_and_any_dbt_command_forgets(tiny, tmp_path):
    warehouse = tmp_path / "tiny.duckdb"
    shutil.copyfile(tiny["warehouse"], warehouse)
    env = tiny_build.dbt_env(warehouse, tiny["landing"])
    env.update({"FLSDB_WAREHOUSE": str(warehouse), "FLSDB_PROJECT_DIR": str(tiny_build.paths.PROJECT_DIR),
                "DBT_TARGET_PATH": str(tmp_path / "target"), "DBT_LOG_PATH": str(tmp_path / "logs")})
    flsdb = [str(Path(sys.executable).with_name("flsdb")), "build"]

    def run(command):
        return subprocess.run(command, env=env, cwd=tiny_build.paths.PROJECT_DIR, capture_output=True,
                              text=True, timeout=1200)

    first = run(flsdb)
    assert first.returncode == 0, first.stdout[-5000:]
    assert "Building: no build recorded" in first.stdout and "Build recorded" in first.stdout
    results = json.loads((tmp_path / "target" / "run_results.json").read_text())["results"]
    assert results and not [r for r in results if r["unique_id"].startswith("unit_test.")]
    second = run(flsdb)
    assert second.returncode == 0, second.stdout[-5000:]
    assert "Nothing changed since the build of " in second.stdout
    assert "skipped; --full to force" in second.stdout and "$ " not in second.stdout  # dbt not run
    # any dbt command on the warehouse forgets the record (on-run-start hook)
    seed = run(tiny_build.dbt_command(["seed", "--select", "kpi_definitions"], tmp_path / "target2",
                                      tmp_path / "logs"))
    assert seed.returncode == 0, seed.stdout[-5000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert build_state.recorded(con) is None


def test_one_not_null_test_per_model_is_worded_in_the_quality_report():
    """Fewer, wider data tests (issue 21): a model's not-null columns are one `not_null_columns`
    test; the quality report names every column it checks."""
    from flsdb.quality.validate import describe_dbt_test

    node = {"attached_node": "model.flsdb.dim_fls",
            "test_metadata": {"name": "not_null_columns",
                              "kwargs": {"column_names": ["fls_code", "fls_name"]}}}
    assert describe_dbt_test("test", node, "not_null_columns_dim_fls") == \
        "'fls_code', 'fls_name' of dim_fls are always recorded."


def test_flsdb_build_passes_dbt_options_through_and_full_forces(monkeypatch):
    from click.testing import CliRunner

    from flsdb import cli

    calls = []
    monkeypatch.setattr(build_state, "build",
                        lambda args, run_dbt, echo, force=False: calls.append((args, force)) or 0)
    assert CliRunner().invoke(cli.main, ["build", "--full-refresh", "--select", "x"]).exit_code == 0
    assert CliRunner().invoke(cli.main, ["build", "--full"]).exit_code == 0
    assert calls == [(["build", "--full-refresh", "--select", "x"], False), (["build"], True)]


def test_the_record_holds_nothing_a_scan_for_identifiers_could_take_for_one(recorded):
    """build_state.fingerprint is outside `raw`: test_privacy scans it for NHS-number-like runs of
    ten digits and for dates; its digests are base32, its counts row counts."""
    with duckdb.connect(str(recorded["warehouse"]), read_only=True) as con:
        text = " ".join(map(str, con.execute(f"select * from {build_state.TABLE}").fetchone()))
    assert not re.search(r"\d{10}", text.replace("-", "").replace(":", "").replace(" ", "x"))
