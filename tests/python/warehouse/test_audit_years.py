"""Every audit year works (issue 14, part 1): a landing set of years other than the default, one
of them older than the earliest population estimate, builds with KPI 2/3 valued for every year
and level, and says which population estimate a year's expected counts rest on.

The pipeline is run as a user would: `flsdb generate --years`, `flsdb load`, `dbt build` (every
unit and data test, among them the one that fails the build on a missing expected count).
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

import tiny_build
from flsdb import paths
from shared_builds import SharedBuild

pytestmark = pytest.mark.warehouse       # builds a warehouse of its own

YEARS = (2019, 2025)
# The ONS population estimate the project ships (data/reference/ons_mye2020_la_age_sex.csv.gz).
EARLIEST_ESTIMATE = 2020


def _make(shared: SharedBuild, root: Path) -> dict:
    build = {"root": root, "landing": root / "landing", "warehouse": root / "years.duckdb",
             "target": root / "target", "logs": root / "logs"}
    flsdb = Path(sys.executable).with_name("flsdb")
    env = tiny_build.dbt_env(build["warehouse"], build["landing"])
    generate = shared.run("generate", [str(flsdb), "generate", "--years", ",".join(map(str, YEARS)),
                                       "--scale", "0.05", "--seed", "14", "--out", str(build["landing"])],
                          env, paths.PROJECT_DIR, root / "steps" / "generate.log")
    assert generate.returncode == 0, generate.stdout[-5000:]
    load = shared.run("load", [str(flsdb), "load", "--landing", str(build["landing"]),
                               "--warehouse", str(build["warehouse"])],
                      env, paths.PROJECT_DIR, root / "steps" / "load.log")
    assert load.returncode == 0, load.stdout[-5000:]
    result = shared.run("dbt build", tiny_build.dbt_command(["build"], build["target"], build["logs"]),
                        env, paths.PROJECT_DIR, root / "steps" / "dbt_build.log")
    build["build"] = result
    return build


BUILD = SharedBuild("audit years 2019 and 2025 at 5%", _make, fixture="audit_years_build", module=__file__)


@pytest.fixture(scope="module")
def audit_years_build(tmp_path_factory) -> dict:
    """Made once, in the background when the session starts (shared_builds.py)."""
    return BUILD.get(lambda: tmp_path_factory.mktemp("audit_years"))


@pytest.fixture(scope="module")
def warehouse(audit_years_build):
    connection = duckdb.connect(str(audit_years_build["warehouse"]), read_only=True)
    yield connection
    connection.close()


def test_build_passes_every_test(audit_years_build):
    """Every model, unit test and data test passes, the expected-count test included."""
    result = audit_years_build["build"]
    assert result.returncode == 0, result.stdout[-10000:]


def test_kpi_2_and_3_valued_for_every_year_and_level(warehouse):
    years = [y for (y,) in warehouse.execute(
        "select distinct audit_year from marts.fct_episodes where is_in_cohort order by 1").fetchall()]
    assert years == list(YEARS)
    # The geographies where an FLS was registered, year by year, from the registry (dim_fls).
    active = warehouse.execute("""
        select years.audit_year, fls.fls_code, fls.country_code, fls.region_code
        from (select distinct audit_year from marts.fct_episodes where is_in_cohort) as years
        inner join marts.dim_fls as fls
            on coalesce(fls.first_audit_year <= years.audit_year, true)
            and coalesce(fls.last_audit_year >= years.audit_year, true)
    """).fetchall()
    required = set()
    for year, fls, country, region in active:
        required |= {(year, "national", "K04000001"), (year, "country", country),
                     (year, "region", region), (year, "fls", fls)}
    assert {year for year, *_ in required} == set(YEARS)
    results = warehouse.execute("""
        select audit_year, geography_level, geography_code, kpi_number, numerator, denominator,
               value_pct
        from marts.kpi_results
        where kpi_number in (2, 3) and breakdown = 'all'
    """).fetchall()
    valued = {(year, level, code, kpi): (numerator, denominator, value)
              for year, level, code, kpi, numerator, denominator, value in results}
    for key in required:
        for kpi in (2, 3):
            _numerator, denominator, value = valued[(*key, kpi)]
            assert denominator > 0 and value is not None, (key, kpi, denominator, value)
    # Each level is there for each year, and the national numerator is every record identified.
    for year in YEARS:
        levels = {level for (y, level, _code, _kpi) in valued if y == year}
        assert levels == {"national", "country", "region", "fls"}, (year, levels)
        national_identified = valued[(year, "national", "K04000001", 2)][0] + \
            valued[(year, "national", "K04000001", 3)][0]
        cohort = warehouse.execute(
            "select count(*) from marts.fct_episodes where is_in_cohort and audit_year = ?",
            [year]).fetchone()[0]
        assert national_identified == cohort


def test_denominator_note_names_the_estimate_for_a_year_before_the_earliest(warehouse):
    notes = dict(warehouse.execute("""
        select audit_year, string_agg(distinct coalesce(denominator_note, '<none>'), ' | ')
        from marts.kpi_results
        where kpi_number in (2, 3)
        group by audit_year
    """).fetchall())
    assert notes[2019] == (f"expected count uses the mid-{EARLIEST_ESTIMATE} population estimate, "
                           "the earliest available, for a 2019 audit year")
    assert notes[2025] == "<none>"
    other = warehouse.execute(
        "select count(*) from marts.kpi_results where kpi_number not in (2, 3) "
        "and denominator_note is not null").fetchone()[0]
    assert other == 0
