"""Credible outliers (docs/specification/monitoring.md sections 3 and 4): the overdispersion-adjusted funnel limits
of kpi_results against an independent numpy implementation of section 3, and the outlier register's
decisions surviving a rebuild and a new extract.

The numpy code below is a second, separate reading of the spec, written for the test: it never
calls the SQL macros, and it reads only counts (numerator, denominator) and the KPI seed's value
type from the warehouse.
"""

from __future__ import annotations

import csv
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

from flsdb import paths

Z = {"95": 1.959964, "998": 3.090232}
MIN_RESULTS = 10  # k < 10: tau2 = 0


# ---------------------------------------------------------------- section 3, independently

def spiegelhalter(numerators: np.ndarray, denominators: np.ndarray, national: float,
                  value_type: str) -> dict:
    """phi, tau2 and the standard errors for one (year, KPI, breakdown value) group of FLS results
    with denominator > 0, on the 0-1 scale."""
    y = numerators / denominators
    if value_type == "proportion":
        s = np.sqrt(national * (1 - national) / denominators)
    else:  # ratio_to_expected: Poisson count around r0 x expected
        s = np.sqrt(national / denominators)
    k = len(y)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (y - national) / s
    # A degenerate national value (0 or 1, a ratio of 0) has s = 0 and every result equal to it:
    # the result sits on the centre line, z = 0 (issue 19).
    z = np.where((s == 0) & (y == national), 0.0, z)
    defined = np.isfinite(z)
    if not defined.any():
        return {"k": k, "phi": None, "tau2": 0.0, "s": s}
    low, high = np.percentile(z[defined], [10, 90])  # numpy's default: linear = type 7
    phi = float(np.mean(np.clip(z[defined], low, high) ** 2))
    w = 1 / s[defined & (s > 0)] ** 2
    if k < MIN_RESULTS or not len(w):
        tau2 = 0.0  # too few results, or s = 0 everywhere (no weights: nothing to add)
    else:
        tau2 = max(0.0, (k * phi - (k - 1)) / (w.sum() - (w ** 2).sum() / w.sum()))
    return {"k": k, "phi": phi, "tau2": tau2, "s": s}


def limit_pct(national: float, s: np.ndarray, z: float, tau2: float, value_type: str) -> np.ndarray:
    value = national + z * np.sqrt(s ** 2 + tau2)
    value = np.clip(value, 0.0, 1.0) if value_type == "proportion" else np.maximum(value, 0.0)
    return 100 * value


@pytest.fixture(scope="module")
def funnel_rows(marts):
    return marts.execute(
        """
        select r.*, d.value_type, n.numerator as national_numerator,
               n.denominator as national_denominator
        from marts.kpi_results as r
        join reference.kpi_definitions as d using (kpi_number)
        join marts.kpi_results as n
          on n.geography_level = 'national' and n.audit_year = r.audit_year
         and n.kpi_number = r.kpi_number and n.breakdown = r.breakdown
         and n.breakdown_value = r.breakdown_value
        where r.geography_level = 'fls' and r.denominator > 0
          and d.value_type in ('proportion', 'ratio_to_expected')
          and n.denominator > 0
        """).df()


def test_phi_tau2_and_limits_match_an_independent_implementation(funnel_rows):
    checked = set()
    for (year, kpi, breakdown, value), group in funnel_rows.groupby(
            ["audit_year", "kpi_number", "breakdown", "breakdown_value"]):
        value_type = group["value_type"].iloc[0]
        national = group["national_numerator"].iloc[0] / group["national_denominator"].iloc[0]
        expected = spiegelhalter(group["numerator"].to_numpy(float), group["denominator"].to_numpy(float),
                                 national, value_type)
        where = (year, kpi, breakdown, value)
        if expected["phi"] is None:
            assert group["overdispersion_phi"].isna().all(), where
        else:
            assert group["overdispersion_phi"].to_numpy() == pytest.approx(expected["phi"], rel=1e-9), where
        assert group["overdispersion_tau2"].to_numpy() == pytest.approx(expected["tau2"], rel=1e-9, abs=1e-15), where
        for label, z in Z.items():
            for bound, sign in (("lower", -1), ("upper", 1)):
                adjusted = limit_pct(national, expected["s"], sign * z, expected["tau2"], value_type)
                unadjusted = limit_pct(national, expected["s"], sign * z, 0.0, value_type)
                assert group[f"funnel_{bound}_{label}_pct"].to_numpy(float) == pytest.approx(
                    adjusted, abs=1e-9), (where, bound, label)
                assert group[f"funnel_{bound}_{label}_unadjusted_pct"].to_numpy(float) == pytest.approx(
                    unadjusted, abs=1e-9), (where, bound, label)
        # the flags use the adjusted limits
        values = group["value_pct"].to_numpy(float)
        low95 = limit_pct(national, expected["s"], -Z["95"], expected["tau2"], value_type)
        high95 = limit_pct(national, expected["s"], Z["95"], expected["tau2"], value_type)
        low998 = limit_pct(national, expected["s"], -Z["998"], expected["tau2"], value_type)
        high998 = limit_pct(national, expected["s"], Z["998"], expected["tau2"], value_type)
        clear = (np.abs(values - low95) > 1e-9) & (np.abs(values - high95) > 1e-9)
        assert (group["is_outlier_alert"].to_numpy() == ((values < low95) | (values > high95)))[clear].all(), where
        clear = (np.abs(values - low998) > 1e-9) & (np.abs(values - high998) > 1e-9)
        assert (group["is_outlier_alarm"].to_numpy() == ((values < low998) | (values > high998)))[clear].all(), where
        checked.add((year, kpi, breakdown))
    # every audit year and KPI with a funnel, breakdown all, was checked (and the other breakdowns)
    assert {(y, k) for y, k, b in checked if b == "all"} == {(y, k) for y in (2023, 2024) for k in range(2, 12)}
    assert {b for _, _, b in checked} >= {"all", "sex", "age_band", "deprivation_quintile"}



def test_funnel_curves_span_the_services_and_follow_section_3(marts, funnel_rows):
    curves = marts.execute(
        """select c.*, d.value_type from marts.kpi_funnel_limits as c
           join reference.kpi_definitions as d using (kpi_number)""").df()
    results = funnel_rows.groupby(["audit_year", "kpi_number", "breakdown", "breakdown_value"])
    groups = curves.groupby(["audit_year", "kpi_number", "breakdown", "breakdown_value"])
    assert set(groups.groups) == {k for k, g in results if g["funnel_lower_95_pct"].notna().any()}
    steps = 120  # var funnel_curve_steps: the one grid of kpi_funnel_limits and published_funnel_limits
    for key, curve in groups:
        fls = results.get_group(key)
        curve = curve.sort_values("step_number")
        assert curve["step_number"].tolist() == list(range(steps + 1))
        with_limits = fls.loc[fls["funnel_lower_95_pct"].notna() & (fls["denominator"] > 0), "denominator"]
        assert curve["denominator"].min() == pytest.approx(0.9 * with_limits.min())
        assert curve["denominator"].max() == pytest.approx(1.1 * with_limits.max())
        assert np.allclose(np.diff(np.log(curve["denominator"].to_numpy(float))),
                           np.log(1.1 * with_limits.max() / (0.9 * with_limits.min())) / steps)
        assert curve["overdispersion_tau2"].iloc[0] == fls["overdispersion_tau2"].iloc[0]
        national = fls["national_numerator"].iloc[0] / fls["national_denominator"].iloc[0]
        value_type = curve["value_type"].iloc[0]
        n = curve["denominator"].to_numpy(float)
        s = np.sqrt(national * (1 - national) / n) if value_type == "proportion" else np.sqrt(national / n)
        tau2 = float(curve["overdispersion_tau2"].iloc[0])
        for label, z in Z.items():
            for bound, sign in (("lower", -1), ("upper", 1)):
                assert curve[f"funnel_{bound}_{label}_pct"].to_numpy(float) == pytest.approx(
                    limit_pct(national, s, sign * z, tau2, value_type), abs=1e-9), key
                assert curve[f"funnel_{bound}_{label}_unadjusted_pct"].to_numpy(float) == pytest.approx(
                    limit_pct(national, s, sign * z, 0.0, value_type), abs=1e-9), key

def test_overdispersion_is_found_and_leaves_a_handful_of_alarms(marts):
    rows = marts.execute(
        """
        select kpi_number, count(*) as results,
               count(*) filter (where value_pct < funnel_lower_998_unadjusted_pct
                                   or value_pct > funnel_upper_998_unadjusted_pct) as alarms_unadjusted,
               count(*) filter (where is_outlier_alarm) as alarms,
               min(overdispersion_phi) as phi, min(overdispersion_tau2) as tau2
        from marts.kpi_results
        where audit_year = 2024 and geography_level = 'fls' and breakdown = 'all' and kpi_number >= 2
          and denominator > 0
        group by kpi_number order by kpi_number
        """).fetchall()
    assert [r[0] for r in rows] == list(range(2, 12))
    for kpi, results, before, after, phi, tau2 in rows:
        # the synthetic services differ by more than chance, as real ones do
        assert phi > 1 and tau2 > 0, kpi
        # adjusted: a handful of alarms (at most 10% of services), never more than unadjusted
        assert after <= before and after <= 0.1 * results, (kpi, results, before, after)
    # before the adjustment most services were alarms on the big KPIs (issue 15's table)
    assert max(r[2] for r in rows) > 0.5 * rows[0][1]


def test_register_lists_every_adjusted_outlier_once(marts):
    register = marts.execute(
        "select audit_year, fls_code, kpi_number, outlier_level, outlier_direction, status "
        "from marts.outlier_register").fetchall()
    flagged = marts.execute(
        """select audit_year, geography_code, kpi_number,
                  case when is_outlier_alarm then 'alarm' else 'alert' end, outlier_direction
           from marts.kpi_results
           where geography_level = 'fls' and breakdown = 'all' and is_outlier_alert""").fetchall()
    assert flagged and sorted(r[:5] for r in register) == sorted(flagged)
    decided = {(r[0], r[1], r[2]) for r in csv.reader(
        (paths.PROJECT_DIR / "seeds" / "outlier_decisions.csv").read_text().splitlines()[1:])}
    assert all(r[5] == "detected" for r in register if (str(r[0]), r[1], str(r[2])) not in decided)


# ---------------------------------------------------------------- section 4: decisions persist

def _bench():
    spec = importlib.util.spec_from_file_location("run_benchmarks",
                                                  paths.PROJECT_DIR / "bench" / "run_benchmarks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _copy_project(to: Path) -> Path:
    """The dbt project without the Python package, so this test can record decisions in its own
    copy of seeds/outlier_decisions.csv and never in the repository's."""
    for folder in ("models", "macros", "seeds", "analyses", "data"):
        shutil.copytree(paths.PROJECT_DIR / folder, to / folder)
    shutil.copytree(paths.PROJECT_DIR / "tests", to / "tests",
                    ignore=shutil.ignore_patterns("python", "spark", "__pycache__"))
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(paths.PROJECT_DIR / name, to / name)
    return to


def _dbt(project: Path, warehouse: Path, landing: Path, *args: str) -> None:
    import os
    env = dict(os.environ)
    env.update({"DBT_PROFILES_DIR": str(project), "FLSDB_PROJECT_DIR": str(project),
                "FLSDB_WAREHOUSE": str(warehouse), "DO_NOT_TRACK": "1",
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "FLSDB_POSTCODE_LOOKUP": str(landing / "_reference" / "synthetic_nspl_postcode_lookup.csv")})
    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run([str(dbt), *args, "--project-dir", str(project),
                             "--target-path", str(project / "target"), "--log-path", str(project / "logs")],
                            env=env, cwd=project, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-5000:]


def _build(project: Path, warehouse: Path, landing: Path) -> None:
    # every seed and model, then the data tests of the decisions seed and the register (other data
    # tests are the national build's business: a small data set may fail one by design)
    _dbt(project, warehouse, landing, "build", "--exclude-resource-type", "test", "unit_test")
    _dbt(project, warehouse, landing, "test", "--select", "outlier_decisions", "outlier_register",
         "--exclude-resource-type", "unit_test")


def _register(warehouse: Path) -> dict[tuple, tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select audit_year, fls_code, kpi_number, extract_date, status, "
                           "status_decided_on, status_note from marts.outlier_register").fetchall()
    return {r[:3]: r[3:] for r in rows}


def _load(landing: Path, warehouse: Path) -> int:
    from flsdb.ingest import load_landing
    load_landing(landing, warehouse, progress=False)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select count(*) from raw.submission_records").fetchone()[0]


@pytest.mark.warehouse
def test_a_decision_stays_attached_across_a_rebuild_and_a_new_extract(tmp_path):
    from flsdb.synthetic import generate

    project = _copy_project(tmp_path / "project")
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    generate(years=[2024], scale=0.05, out_dir=landing, seed=15, clean=False)
    base, month = tmp_path / "base", tmp_path / "month"
    assert _bench().split_month(landing, base, month, "2024-12") > 0

    rows_before = _load(base, warehouse)
    _build(project, warehouse, base)
    first = _register(warehouse)
    assert first and all(status == "detected" for _, status, _, _ in first.values())

    # record a decision for every outlier of the first extract, as a reviewer would
    decisions = project / "seeds" / "outlier_decisions.csv"
    with decisions.open("a", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        for year, fls, kpi in sorted(first):
            writer.writerow([year, fls, kpi, "fls_notified", "2025-01-15", "FLS-DB audit team",
                             f"test decision {fls} {kpi}"])

    # a rebuild of the same data: every outlier carries its decision
    _build(project, warehouse, base)
    rebuilt = _register(warehouse)
    assert rebuilt.keys() == first.keys()
    for key, (_, status, decided_on, note) in rebuilt.items():
        assert (status, str(decided_on), note) == ("fls_notified", "2025-01-15",
                                                   f"test decision {key[1]} {key[2]}"), key

    # a new extract: the December records arrive, are loaded, and the warehouse is rebuilt
    assert _load(month, warehouse) > rows_before
    _build(project, warehouse, base)
    later = _register(warehouse)
    still = later.keys() & first.keys()
    assert still, "no outlier of the first extract is still an outlier: the test proves nothing"
    for key in still:
        extract_date, status, _, note = later[key]
        assert extract_date >= first[key][0]
        assert (status, note) == ("fls_notified", f"test decision {key[1]} {key[2]}"), key
    # an outlier that is new in this extract has no decision yet
    assert all(later[key][1] == "detected" for key in later.keys() - first.keys())
