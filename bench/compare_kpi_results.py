"""Compare the marts of two warehouses built from the same data, row for row.

Usage: .venv/bin/python bench/compare_kpi_results.py BEFORE.duckdb AFTER.duckdb

Used to check that a performance change does not change any result: marts.kpi_results,
marts.kpi_data_completeness and marts.fct_episodes must hold the same rows. Text, integer and
boolean columns must be equal; double columns equal to 1e-12 relative (sums of doubles, such as
the KPI 2/3 expected counts, can differ in the last bit when DuckDB adds them in another order,
which happens between two runs of the same build). Exit status 1 when anything differs.
"""

from __future__ import annotations

import math
import sys

import duckdb

TABLES = ("marts.kpi_results", "marts.kpi_data_completeness", "marts.fct_episodes")


def rows(path: str, table: str) -> tuple[list[str], list[tuple]]:
    con = duckdb.connect(path, read_only=True)
    try:
        result = con.execute(f"select * from {table} order by all")
        return [d[0] for d in result.description], result.fetchall()
    finally:
        con.close()


def same(x, y) -> bool:
    if x == y:
        return True
    if isinstance(x, float) and isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)
    return False


def main() -> int:
    before, after = sys.argv[1], sys.argv[2]
    failed = False
    for table in TABLES:
        cols_b, b = rows(before, table)
        cols_a, a = rows(after, table)
        if cols_b != cols_a or len(a) != len(b):
            print(f"{table}: DIFFERENT shape ({len(b)} vs {len(a)} rows; columns equal: {cols_b == cols_a})")
            failed = True
            continue
        exact = sum(x == y for x, y in zip(b, a))
        bad = [(c, x, y) for rb, ra in zip(b, a) if rb != ra
               for c, x, y in zip(cols_b, rb, ra) if not same(x, y)]
        print(f"{table}: {len(a):,} rows; {exact:,} bit-identical, {len(a) - exact:,} equal to 1e-12, "
              f"{len(bad)} different values {bad[:3] if bad else ''}")
        failed |= bool(bad)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
