"""Build the dbt project on Spark and dump what tests/spark/test_spark_parity.py compares.

Run with the Spark environment's Python (.venv-spark/bin/python), by the test, never by pytest:

    run_on_spark.py --raw RAW_PARQUET_DIR --out OUT_DIR --target-path DIR --log-path DIR [--probes FILE]

In one process, so Spark starts once: `dbt run-operation register_external_sources` (the raw
Parquet as raw.* tables), `dbt build` (seeds, models, unit tests and data tests), then, in the
SparkSession dbt used, every mart and the macro probe query written as Parquet under OUT_DIR for
DuckDB to read. Prints the seconds each step took. Exits non-zero on any failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

MARTS = ["kpi_results", "kpi_data_completeness", "fct_episodes", "dim_fls", "dim_geography"]
# Monthly series and SPC charts (docs/specification/monitoring.md sections 1-2).
MARTS += ["kpi_monthly", "kpi_spc_summary", "kpi_seasonal_profile"]
# What is published, suppression applied (schema-qualified: not marts).
MARTS += ["publication.published_kpi_results", "publication.published_kpi_monthly"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--target-path", required=True)
    parser.add_argument("--log-path", required=True)
    parser.add_argument("--probes", type=Path)
    args = parser.parse_args()

    from dbt.cli.main import dbtRunner

    common = ["--target", "spark", "--target-path", args.target_path, "--log-path", args.log_path]
    runner = dbtRunner()
    timings: dict[str, float] = {}

    def invoke(step: str, dbt_args: list[str]):
        started = time.monotonic()
        result = runner.invoke(dbt_args + common)
        timings[step] = round(time.monotonic() - started, 1)
        if not result.success:
            print(f"dbt {step} failed: {result.exception or ''}", file=sys.stderr)
            sys.exit(1)
        return result

    invoke("register_external_sources",
           ["run-operation", "register_external_sources", "--args", json.dumps({"raw_path": args.raw})])
    invoke("build", ["build"])
    probe_sql = None
    if args.probes:
        compiled = invoke("compile probes", ["compile", "--inline", args.probes.read_text(encoding="utf-8")])
        probe_sql = compiled.result.results[0].node.compiled_code

    from pyspark.sql import SparkSession

    started = time.monotonic()
    spark = SparkSession.builder.getOrCreate()  # the session dbt-spark started
    args.out.mkdir(parents=True, exist_ok=True)
    for mart in MARTS:
        table = mart if "." in mart else f"marts.{mart}"
        spark.table(table).coalesce(1).write.mode("overwrite").parquet(str(args.out / mart))
    if probe_sql:
        spark.sql(probe_sql).coalesce(1).write.mode("overwrite").parquet(str(args.out / "macro_probes"))
    timings["dump"] = round(time.monotonic() - started, 1)
    print(json.dumps({"seconds": timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
