"""`flsdb refresh`: the monthly cycle in one process (issue 14 part 6).

When only data arrived (new submission files, no change of code, seeds or reference data), a
refresh loads the new files, builds and tests what the submissions feed, validates, publishes and
writes the report. It runs dbt in this process through `dbtRunner` (dbt's programmatic entry
point), so that the interpreter, dbt, DuckDB, pandas and Great Expectations are started and
imported once for the whole cycle instead of once per step.

What a data-only refresh builds (`DATA_ONLY`): the models and data tests downstream of the
submissions source. Seeds, reference staging and everything fed only by them cannot change when
only data arrives, and unit tests run on fixed fixture rows, not on the data. After a change of
code, seeds, reference files, the pseudonym key or the postcode lookup, build everything
(`flsdb build`, or `flsdb refresh --all`).
"""

from __future__ import annotations

import os

from flsdb import paths

#: the dbt arguments of a data-only refresh (README, "New submissions: what a rebuild redoes")
DATA_ONLY = ["--select", "source:fls_db+", "--exclude-resource-type", "unit_test"]


def dbt_build_in_process(args: list[str], env: dict[str, str]) -> int:
    """`dbt build <args>` through dbtRunner in this process; dbt's exit code (0 ok, 1 a node
    failed, 2 dbt itself failed)."""
    from dbt.cli.main import dbtRunner

    os.environ.update(env)
    cwd = os.getcwd()
    os.chdir(paths.PROJECT_DIR)
    try:
        result = dbtRunner().invoke(["build", *args, "--project-dir", str(paths.PROJECT_DIR)])
    finally:
        os.chdir(cwd)
        _release_warehouse()
    if result.exception is not None:
        return 2
    return 0 if result.success else 1


def _release_warehouse() -> None:
    """dbt-duckdb keeps its DuckDB database open in a process-wide environment after the run
    (`DuckDBConnectionManager._ENV`); close it, so that the steps after the build can open the
    warehouse read-only in this process and another process can open it at all."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter (Spark): nothing held open here
        return
    with DuckDBConnectionManager._LOCK:
        if DuckDBConnectionManager._ENV is not None:
            DuckDBConnectionManager._ENV.close()
            DuckDBConnectionManager._ENV = None
