"""Issue 19, "A degenerate year fails the build": one small end-to-end build (one audit year at 2%)
whose submissions are edited so that, nationally,

- KPI 3 identifies nobody (no spine fracture is recorded): an identification ratio of 0;
- KPI 7 is 0% (no named bone therapy is ever recommended), so KPIs 10 and 11, whose denominators
  are KPI 7's numerator, have no denominator at all;
- KPI 6 is 100% (every falls risk is assessed);
- KPI 5 has a denominator in one service only (every other service: DXA not ordered, not required).

`dbt build` must pass, every data test included (with small-number suppression off, so that the
national results and the published funnel curves exist), and every statistic must be defined or
null where it does not apply (DEVELOPERS.md, "Degenerate years"). The edge cases themselves are
pinned by the unit tests in models/marts/_marts__unit_tests.yml.
"""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import duckdb
import pytest

from tiny_build import dbt_command, dbt_env

ONE_SERVICE = "SYN001"
# Small-number suppression off: at 2% the national results would be suppressed, and with them
# the funnel curves this test is about.
NO_SUPPRESSION = {"suppression_min_denominator": 0, "suppression_max_small_count": 0}


def _make_degenerate(landing: Path) -> None:
    # Some exports are Windows-1252: bytes that are not UTF-8 are carried through unchanged.
    for path in sorted(landing.glob("SYN*.csv")):
        with path.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
            rows = list(csv.reader(handle))
        column = {name.lstrip("\ufeff").split(" ")[0]: index for index, name in enumerate(rows[0])}
        for row in rows[1:]:
            row[column["4.01"]] = "Inappropriate"
            row[column["5.01"]] = "Yes"
            if row[column["1.11"]].strip().lower() == "spine":
                row[column["1.11"]] = "Pelvis"
            if row[column["FLS"]].strip().upper() != ONE_SERVICE:
                row[column["3.01"]], row[column["3.02"]] = "Not ordered", "Not required"
                for name in ("3.03", "3.04", "3.05"):
                    row[column[name]] = ""
        with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
            csv.writer(handle, lineterminator="\r\n").writerows(rows)


@pytest.fixture(scope="module")
def degenerate_build(tmp_path_factory):
    from flsdb.synthetic import generate

    root = tmp_path_factory.mktemp("degenerate")
    build = {"root": root, "landing": root / "landing", "warehouse": root / "degenerate.duckdb",
             "target": root / "target", "logs": root / "logs"}
    generate(years=[2024], scale=0.02, out_dir=build["landing"], seed=19, clean=True)
    _make_degenerate(build["landing"])
    env = dbt_env(build["warehouse"], build["landing"])
    flsdb = Path(dbt_command([], build["target"], build["logs"])[0]).with_name("flsdb")
    load = subprocess.run([str(flsdb), "load", "--landing", str(build["landing"]),
                           "--warehouse", str(build["warehouse"])],
                          env=env, capture_output=True, text=True, timeout=600)
    assert load.returncode == 0, load.stderr
    result = subprocess.run(
        dbt_command(["build", "--vars", json.dumps(NO_SUPPRESSION)], build["target"], build["logs"]),
        env=env, capture_output=True, text=True, timeout=1200)
    build["build"] = result
    return build


@pytest.fixture(scope="module")
def warehouse(degenerate_build):
    connection = duckdb.connect(str(degenerate_build["warehouse"]), read_only=True)
    yield connection
    connection.close()


def test_the_build_passes_every_test(degenerate_build):
    result = degenerate_build["build"]
    statuses = json.loads((degenerate_build["target"] / "run_results.json").read_text())["results"]
    failed = [r["unique_id"] for r in statuses if r["status"] not in ("success", "pass", "no-op")]
    assert result.returncode == 0 and failed == [], (failed, result.stdout[-5000:])


def test_the_data_are_degenerate_as_intended(warehouse):
    national = dict(warehouse.execute(
        """select kpi_number, value_pct from marts.kpi_results
           where geography_level = 'national' and breakdown = 'all'""").fetchall())
    assert national[3] == 0 and national[7] == 0 and national[6] == 100
    assert national[10] is None and national[11] is None
    services = warehouse.execute(
        """select distinct geography_code from marts.kpi_results
           where geography_level = 'fls' and breakdown = 'all' and kpi_number = 5 and denominator > 0"""
    ).fetchall()
    assert services == [(ONE_SERVICE,)]


def test_every_statistic_is_defined_or_not_applicable_on_every_level(warehouse):
    rows = warehouse.execute(
        """
        select geography_level, kpi_number, denominator, value_pct, ci_lower_pct, ci_upper_pct,
               funnel_lower_95_pct, funnel_upper_998_pct, overdispersion_phi, overdispersion_tau2
        from marts.kpi_results
        where breakdown = 'all' and kpi_number in (3, 5, 6, 7, 10, 11)
        """).fetchall()
    assert {r[0] for r in rows} == {"national", "country", "region", "fls"}
    for level, kpi, denominator, value, ci_low, ci_high, low, high, phi, tau2 in rows:
        where = (level, kpi, denominator)
        if denominator > 0:  # a result: a value and its interval, on every level
            assert None not in (value, ci_low, ci_high), where
            assert ci_low <= value <= ci_high, where
        else:  # no denominator: nothing applies
            assert (value, ci_low, ci_high, low, high) == (None,) * 5, where
        if level == "fls" and denominator > 0:  # the funnel: limits, phi and tau2
            assert None not in (low, high, phi, tau2), where
            assert low <= value <= high, where
        if level != "fls":
            assert (low, high, phi, tau2) == (None,) * 4, where
    # 0%, 100% and the ratio of 0: the limits collapse onto the national value, phi = tau2 = 0.
    collapsed = warehouse.execute(
        """
        select kpi_number, min(funnel_lower_998_pct), max(funnel_upper_998_pct),
               max(overdispersion_phi), max(overdispersion_tau2)
        from marts.kpi_results
        where geography_level = 'fls' and breakdown = 'all' and kpi_number in (3, 6, 7) and denominator > 0
        group by kpi_number order by kpi_number
        """).fetchall()
    assert collapsed == [(3, 0.0, 0.0, 0.0, 0.0), (6, 100.0, 100.0, 0.0, 0.0), (7, 0.0, 0.0, 0.0, 0.0)]


def test_the_published_funnel_curves_are_defined(warehouse):
    curves = dict(warehouse.execute(
        """
        select kpi_number, count(*) filter (
            where lower_998_pct is null or lower_95_pct is null or upper_95_pct is null
               or upper_998_pct is null or overdispersion_phi is null or overdispersion_tau2 is null)
        from publication.published_funnel_limits group by kpi_number
        """).fetchall())
    # KPIs 10 and 11 have no national value: no curve (not applicable).
    assert {3, 5, 6, 7} <= set(curves) and not {10, 11} & set(curves)
    assert set(curves.values()) == {0}


def test_the_monthly_charts_of_a_constant_kpi_are_run_charts(warehouse):
    """Every month of KPI 7 is 0%: every moving range is 0, no AMR is left after screening, so no
    limits and no point types (a run chart). KPIs 10 and 11 have no value: no series."""
    national = warehouse.execute(
        """
        select kpi_number, count(*), count(value_pct), count(upper_limit_pct), count(point_type)
        from marts.kpi_monthly where geography_level = 'national' and kpi_number in (7, 10, 11)
        group by kpi_number
        """).fetchall()
    assert [(kpi, limits, types) for kpi, _, _, limits, types in national] == [(7, 0, 0)]
    assert national[0][2] == national[0][1] >= 12
