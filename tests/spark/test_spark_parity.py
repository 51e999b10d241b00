"""The same dbt project on Spark gives the same results as on DuckDB (`make test-spark`).

Not part of `make test` (pytest's testpaths is tests/python): it starts Spark and takes minutes.
Needs .venv-spark (requirements-spark.lock), which `make test-spark` installs, and Java 17.

One small synthetic landing set (audit year 2024 at 2% of the national volume) is
  - loaded into DuckDB by `flsdb load` and built with `dbt build` on the DuckDB target;
  - exported from DuckDB's raw schema as Parquet (flsdb.spark_export), registered as the raw.*
    sources on Spark and built with `dbt build --target spark` (seeds, unit tests, data tests),
    by tests/spark/run_on_spark.py in the Spark environment.
Then marts.kpi_results must be identical on the two engines row for row: every key and text
and flag equal, every number equal to within 1e-9 (relative, or absolute near zero: the engines
add up floating-point numbers in different orders). The other marts are compared the same way,
and so are the per-engine macros on a list of edge cases (tests/spark/macro_probes.jinja).
A non-development pseudonym key is set, so patient pseudonyms are compared too.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from flsdb import paths

SPARK_PYTHON = paths.PROJECT_DIR / ".venv-spark" / "bin" / "python"
HERE = Path(__file__).resolve().parent
TOLERANCE = 1e-9

# Each mart and the columns that identify a row.
MART_KEYS = {
    "kpi_results": ["audit_year", "geography_level", "geography_code", "kpi_number", "breakdown",
                    "breakdown_value"],
    "kpi_data_completeness": ["audit_year", "fls_code", "field_order"],
    "fct_episodes": ["fls_code", "record_id"],
    "dim_fls": ["fls_code"],
    "dim_geography": ["geography_level", "geography_code"],
    # Monthly series and SPC charts (docs/specification/monitoring.md sections 1-2).
    "kpi_monthly": ["geography_level", "geography_code", "kpi_number", "month_start"],
    "kpi_spc_summary": ["geography_level", "geography_code", "kpi_number"],
    "kpi_seasonal_profile": ["kpi_number", "month_of_year"],
    # What is published: suppression (primary and secondary, yearly and monthly as one system).
    "publication.published_kpi_results": ["audit_year", "geography_level", "geography_code", "kpi_number",
                                          "breakdown", "breakdown_value"],
    "publication.published_kpi_monthly": ["geography_level", "geography_code", "kpi_number", "month_start"],
}

TIMINGS: dict[str, float] = {}


def _env(root: Path, landing: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DBT_PROFILES_DIR": str(paths.PROJECT_DIR),
        "FLSDB_PROJECT_DIR": str(paths.PROJECT_DIR),
        "FLSDB_WAREHOUSE": str(root / "duckdb" / "warehouse.duckdb"),
        "FLSDB_SPARK_WAREHOUSE": str(root / "spark"),
        "FLSDB_POSTCODE_LOOKUP": str(landing / "_reference" / "synthetic_nspl_postcode_lookup.csv"),
        # Not the development key: the pseudonyms of both engines must agree for a real key too.
        "FLSDB_PSEUDONYM_KEY": "spark-parity-test-key-0123456789",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    })
    env.pop("FLSDB_TARGET", None)
    return env


def _run(step: str, command: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    started = time.monotonic()
    result = subprocess.run(command, env=env, cwd=paths.PROJECT_DIR, capture_output=True, text=True)
    TIMINGS[step] = round(time.monotonic() - started, 1)
    log.write_text(result.stdout + "\n--- stderr ---\n" + result.stderr, encoding="utf-8")
    assert result.returncode == 0, f"{step} failed (log: {log}):\n{result.stdout[-15000:]}\n{result.stderr[-5000:]}"
    return result


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, Path]:
    if not SPARK_PYTHON.exists():
        pytest.fail(f"{SPARK_PYTHON} not found: run `make test-spark`, which installs requirements-spark.lock")
    from flsdb.synthetic import generate
    from flsdb.ingest import load_landing
    from flsdb.spark_export import export_raw

    started = time.monotonic()
    root = tmp_path_factory.mktemp("spark_parity")
    landing = root / "landing"
    env = _env(root, landing)
    duckdb_dir = root / "duckdb"
    duckdb_dir.mkdir()
    warehouse = duckdb_dir / "warehouse.duckdb"

    step = time.monotonic()
    generate(years=[2024], scale=0.02, out_dir=landing, seed=20240101, clean=False)
    load_landing(landing, warehouse)
    TIMINGS["generate + load"] = round(time.monotonic() - step, 1)

    dbt = Path(sys.executable).with_name("dbt")
    _run("dbt build (DuckDB)", [str(dbt), "build", "--target", "dev",
                                "--target-path", str(duckdb_dir / "target"), "--log-path", str(duckdb_dir / "logs")],
         env, root / "duckdb_build.log")
    probes = (HERE / "macro_probes.jinja").read_text(encoding="utf-8")
    compiled = _run("compile probes (DuckDB)", [str(dbt), "--quiet", "compile", "--target", "lint", "--inline", probes,
                                                "--output", "json", "--target-path", str(duckdb_dir / "target-probes"),
                                                "--log-path", str(duckdb_dir / "logs")],
                    env, root / "duckdb_probes.log")
    probe_sql = json.loads(compiled.stdout[compiled.stdout.index("{"):])["compiled"]

    step = time.monotonic()
    export_raw(warehouse, root / "spark" / "raw")
    TIMINGS["export raw to Parquet"] = round(time.monotonic() - step, 1)

    spark_out = root / "spark_out"
    result = _run("Spark: register + dbt build + dump", [
        str(SPARK_PYTHON), str(HERE / "run_on_spark.py"), "--raw", str(root / "spark" / "raw"),
        "--out", str(spark_out), "--target-path", str(root / "spark" / "target"),
        "--log-path", str(root / "spark" / "logs"), "--probes", str(HERE / "macro_probes.jinja"),
    ], env, root / "spark_build.log")
    spark_steps = json.loads(result.stdout.strip().splitlines()[-1])["seconds"]
    TIMINGS.update({f"  Spark {name}": seconds for name, seconds in spark_steps.items()})
    TIMINGS["total"] = round(time.monotonic() - started, 1)
    print("\ntest-spark timings (s): " + json.dumps(TIMINGS, indent=1))
    return {"warehouse": warehouse, "spark_out": spark_out, "probe_sql": probe_sql, "root": root}


def _same(left, right) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if isinstance(left, float) or isinstance(right, float):
        return math.isclose(float(left), float(right), rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return left == right


def _compare(duck_rows, spark_rows, columns, keys) -> list[str]:
    problems = []
    if len(duck_rows) != len(spark_rows):
        problems.append(f"{len(duck_rows)} rows on DuckDB, {len(spark_rows)} on Spark")
    key_positions = [columns.index(key) for key in keys]
    duck_by_key = {tuple(row[i] for i in key_positions): row for row in duck_rows}
    spark_by_key = {tuple(row[i] for i in key_positions): row for row in spark_rows}
    assert len(duck_by_key) == len(duck_rows) and len(spark_by_key) == len(spark_rows), "keys are not unique"
    for key in sorted(set(duck_by_key) | set(spark_by_key), key=repr):
        if key not in spark_by_key:
            problems.append(f"only on DuckDB: {key}")
        elif key not in duck_by_key:
            problems.append(f"only on Spark: {key}")
        else:
            for column, left, right in zip(columns, duck_by_key[key], spark_by_key[key]):
                if not _same(left, right):
                    problems.append(f"{key} {column}: DuckDB {left!r}, Spark {right!r}")
    return problems


@pytest.mark.parametrize("mart", list(MART_KEYS))
def test_mart_is_identical_on_spark_and_duckdb(builds, mart):
    con = duckdb.connect()
    con.execute(f"attach '{builds['warehouse']}' as duck (read_only)")
    duck = con.execute(f"select * from duck.{mart if '.' in mart else 'marts.' + mart}")
    columns = [column[0] for column in duck.description]
    duck_rows = duck.fetchall()
    spark_rows = con.execute(
        f"select {', '.join(columns)} from read_parquet('{builds['spark_out'] / mart}/*.parquet')").fetchall()
    con.close()
    assert duck_rows, f"{mart} is empty"
    problems = _compare(duck_rows, spark_rows, columns, MART_KEYS[mart])
    assert not problems, f"{mart} differs ({len(problems)}):\n" + "\n".join(problems[:40])


def test_kpi_results_cover_every_kpi_and_level(builds):
    """A guard against comparing two empty or trivial tables."""
    rows = duckdb.connect().execute(
        f"select count(distinct kpi_number), count(distinct geography_level), count(*) "
        f"from read_parquet('{builds['spark_out'] / 'kpi_results'}/*.parquet')").fetchone()
    assert rows[0] == 11 and rows[1] == 4 and rows[2] > 1000


def test_macros_agree_on_edge_cases(builds):
    con = duckdb.connect()
    duck = con.execute(builds["probe_sql"])
    columns = [column[0] for column in duck.description]
    duck_rows = [tuple(str(value) if value is not None else None for value in row) for row in duck.fetchall()]
    spark_rows = [tuple(str(value) if value is not None else None for value in row) for row in con.execute(
        f"select {', '.join(columns)} from read_parquet('{builds['spark_out'] / 'macro_probes'}/*.parquet')"
    ).fetchall()]
    con.close()
    assert len(duck_rows) > 30
    problems = _compare(duck_rows, spark_rows, columns, ["probe_id"])
    assert not problems, "the per-engine macros disagree:\n" + "\n".join(problems)
