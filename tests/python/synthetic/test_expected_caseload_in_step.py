"""The generator's copy of the expected-caseload rule stays in step with the warehouse's.

flsdb.synthetic.registry_build.expected_cells computes expected fractures (population 50+ x
seeds/incidence_rates.csv / 10,000) to size the synthetic catchments and to spread the records;
models/intermediate/int_expected_fractures_calculated.sql is the rule KPI 2/3 use. The generator
cannot read the model: it runs before any warehouse exists, and the model reads the catchments
the builder makes from these numbers. So the copy stays, and this test fails when they differ.
"""

from __future__ import annotations

import pandas as pd
import pytest

from flsdb import paths
from flsdb.synthetic.registry_build import la_table


def test_python_expected_caseload_equals_the_model(marts):
    schema = marts.execute(
        "select table_schema from information_schema.tables "
        "where table_name = 'int_expected_fractures_calculated'").fetchone()[0]
    sql = marts.execute(f"""
        select fls_code, audit_year, is_spine, sum(expected_fractures) as expected
        from {schema}.int_expected_fractures_calculated
        where audit_year in (2023, 2024)
        group by all
    """).df()
    reg = pd.read_csv(paths.seeds_dir() / "fls_registry.csv", dtype={"last_audit_year": "Int64"})
    cat = pd.read_csv(paths.seeds_dir() / "fls_catchments.csv")
    las = la_table()
    per_fls = cat.merge(las, on="ltla21_code").assign(
        spine=lambda d: d["population_share"] * d["spine"],
        non_spine=lambda d: d["population_share"] * d["non_spine"],
    ).groupby("fls_code")[["spine", "non_spine"]].sum()
    checked = 0
    for year in (2023, 2024):
        last = reg["last_audit_year"].fillna(9999)
        active = reg.loc[(reg["first_audit_year"] <= year) & (last >= year), "fls_code"]
        for code in active:
            got = sql[(sql["fls_code"] == code) & (sql["audit_year"] == year)]
            assert len(got) == 2, (code, year)
            for is_spine, column in ((True, "spine"), (False, "non_spine")):
                value = got.loc[got["is_spine"] == is_spine, "expected"].iloc[0]
                assert value == pytest.approx(per_fls.at[code, column], rel=1e-9), (code, year)
                checked += 1
    assert checked == 2 * (70 + 77)
