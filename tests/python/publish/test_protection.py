"""Publication that protects and still informs (issue 22): the protection audit, the information
loss, and the rules for choosing complements.

- The protection audit (flsdb.publish.protection) reads only the published file and the true
  numbers, writes every relation a reader knows as a linear programme and bounds each small count:
  it passes on the default build and on a landing set with many small cells (`flsdb generate
  --years 2023,2024 --scale 0.02`: most cells small), and fails when complements are chosen over
  one kind of relation only (the weak rule).
- Complements are chosen for the least information loss: on the default build no year and KPI
  has more FLS headline cells withheld as complements than for small numbers, no national or
  country headline is a complement (a country's only when the other country is itself small), and
  a large FLS headline is a complement only as the smallest FLS of its region that can protect.
- `flsdb publish` says what it withheld (publication_info, and the printed summary).
- The passes stop with a clear error after var secondary_suppression_max_passes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import tiny_build
from conftest import run_dbt
from flsdb.publish.marts import PUBLISHED_DB_NAME, information_loss, publish_marts
from flsdb.publish.protection import audit_protection, suppression_vars

WEAK_RULE = {"secondary_suppression_relation_types": ["breakdown"]}
SUPPRESSION_MODELS = ["publication_suppression_patterns+"]


def _publish(warehouse: Path, out: Path) -> Path:
    return publish_marts(warehouse, out)


def _results(published_db: Path, warehouse: Path) -> pd.DataFrame:
    """Published yearly results with their true numerator and denominator."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{published_db}' as pub (read_only)")
        con.execute(f"attach '{warehouse}' as wh (read_only)")
        return con.execute("""
            select p.audit_year, p.geography_level, p.geography_code, p.kpi_number, p.breakdown,
                   p.breakdown_value, p.suppression_reason, k.numerator as true_numerator,
                   k.denominator as true_denominator, d.value_type, f.region_code
            from pub.publication.published_kpi_results as p
            inner join wh.marts.kpi_results as k
                using (audit_year, geography_level, geography_code, kpi_number, breakdown, breakdown_value)
            inner join pub.publication.published_kpi_definitions as d using (kpi_number)
            left join pub.publication.published_fls as f on p.geography_code = f.fls_code""").df()
    finally:
        con.close()


@pytest.fixture(scope="module")
def default_published(built_warehouse, tmp_path_factory) -> Path:
    return _publish(built_warehouse["warehouse"], tmp_path_factory.mktemp("protection") / "output")


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict:
    """The issue's 2% landing set (2023 and 2024 at 2% of the national volume), built."""
    from flsdb.synthetic import generate

    root = tmp_path_factory.mktemp("small-cells")
    build = {"root": root, "landing": root / "landing", "warehouse": root / "small.duckdb",
             "target": root / "target", "logs": root / "logs"}
    generate(years=[2023, 2024], scale=0.02, out_dir=build["landing"], seed=20240101, clean=False)
    flsdb = Path(sys.executable).with_name("flsdb")
    load = subprocess.run([str(flsdb), "load", "--landing", str(build["landing"]), "--warehouse",
                           str(build["warehouse"])], env=tiny_build.dbt_env(build["warehouse"], build["landing"]),
                          capture_output=True, text=True, timeout=900)
    assert load.returncode == 0, load.stdout[-3000:] + load.stderr[-3000:]
    result = tiny_build.run_dbt(build, ["build", "--exclude-resource-type", "unit_test"])
    tiny_build.assert_built(build, result)
    return build


@pytest.fixture(scope="module")
def small_published(small, tmp_path_factory) -> Path:
    return _publish(small["warehouse"], tmp_path_factory.mktemp("protection-small") / "output")


# --- the protection audit --------------------------------------------------------------------

def test_the_protection_audit_passes_on_the_default_build(default_published, built_warehouse):
    result = audit_protection(default_published, built_warehouse["warehouse"])
    print(result.summary())
    assert result.protection_level == suppression_vars()["max_small_count"] + 1 == 5
    assert result.audited > 5_000 and result.relations > 20_000, result.summary()
    assert result.passed, [str(i) for i in result.too_narrow[:10]]


def test_the_protection_audit_passes_on_a_build_with_many_small_cells(small_published, small):
    result = audit_protection(small_published, small["warehouse"])
    print(result.summary())
    con = duckdb.connect(str(small_published), read_only=True)
    withheld, cells = con.execute("select count(*) filter (where is_suppressed), count(*) "
                                  "from publication.published_kpi_results").fetchone()
    con.close()
    assert withheld > cells / 2, "the 2% build should withhold most of its cells"
    assert result.audited > 10_000, result.summary()
    assert result.passed, [str(i) for i in result.too_narrow[:10]]


def test_the_protection_audit_fails_on_a_weak_rule(small, tmp_path):
    """Complements chosen over the breakdown relations only: a reader who also subtracts along the
    geography and the months pins small counts down, and the audit must say so."""
    warehouse = tmp_path / "weak.duckdb"
    shutil.copy(small["warehouse"], warehouse)
    result = run_dbt(["run", "--select", *SUPPRESSION_MODELS, "--vars", json.dumps(WEAK_RULE)],
                     warehouse, small["landing"], tmp_path / "target")
    assert result.returncode == 0, result.stdout[-5000:]
    audit = audit_protection(_publish(warehouse, tmp_path / "output"), warehouse)
    print(audit.summary())
    assert not audit.passed
    exact = [i for i in audit.too_narrow if i.width < 1e-6]
    assert len(audit.too_narrow) > 100 and exact, audit.summary()


# --- least information loss ------------------------------------------------------------------

def test_fls_headline_complements_are_no_more_than_fls_headline_small_cells(default_published, built_warehouse):
    results = _results(default_published, built_warehouse["warehouse"])
    headline = results.loc[(results["geography_level"] == "fls") & (results["breakdown"] == "all")]
    counts = headline.groupby(["audit_year", "kpi_number"])["suppression_reason"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=["small numbers", "complementary"], fill_value=0)
    too_many = counts.loc[counts["complementary"] > counts["small numbers"]]
    assert too_many.empty, too_many
    assert counts["small numbers"].sum() > 0, "the default build has small FLS headline cells to protect"


@pytest.mark.parametrize("build", ["default", "small"])
def test_no_national_or_country_headline_is_a_complement(build, default_published, built_warehouse,
                                                        small_published, small):
    published, warehouse = ((default_published, built_warehouse["warehouse"]) if build == "default"
                            else (small_published, small["warehouse"]))
    results = _results(published, warehouse)
    headline = results.loc[results["breakdown"] == "all"]
    national = headline.loc[(headline["geography_level"] == "national")
                            & (headline["suppression_reason"] == "complementary")]
    assert national.empty, national
    # England and Wales = England + Wales: when one country's headline is small, the only cells
    # that can protect it are the other country's and the national one; the rule takes the part.
    country = headline.loc[headline["geography_level"] == "country"]
    small = set(country.loc[country["suppression_reason"] == "small numbers", ["audit_year", "kpi_number"]]
                .itertuples(index=False, name=None))
    complements = country.loc[country["suppression_reason"] == "complementary"]
    unforced = [r for r in complements.itertuples() if (r.audit_year, r.kpi_number) not in small]
    assert unforced == [], unforced


def test_a_large_fls_headline_complement_is_the_smallest_fls_of_its_region_that_can_protect(
        default_published, built_warehouse):
    level = suppression_vars()["protection_level"]
    results = _results(default_published, built_warehouse["warehouse"])
    fls = results.loc[(results["geography_level"] == "fls") & (results["breakdown"] == "all")].copy()
    fls["not_met"] = fls["true_denominator"] - fls["true_numerator"]
    large = fls.loc[(fls["suppression_reason"] == "complementary") & (fls["true_denominator"] >= 100)]
    for c in large.itertuples():
        region = fls.loc[(fls["audit_year"] == c.audit_year) & (fls["kpi_number"] == c.kpi_number)
                         & (fls["region_code"] == c.region_code)]
        assert (region["suppression_reason"] == "small numbers").any(), (
            f"{c.geography_code} KPI {c.kpi_number} {c.audit_year} withheld with no small FLS in its region")
        proportion = c.value_type == "proportion"
        able = region.loc[(region["suppression_reason"] != "small numbers") & (region["true_numerator"] >= level)
                          & (~proportion | (region["not_met"] >= level))]
        smallest = able.sort_values(["true_denominator", "geography_code"]).iloc[0]
        assert smallest["geography_code"] == c.geography_code, (c, smallest.to_dict())


# --- what was withheld, said -----------------------------------------------------------------

def test_publish_reports_the_information_loss(built_warehouse, tmp_path):
    # `flsdb publish` prints this summary (flsdb.publish.release.Released)
    summary = information_loss(publish_marts(built_warehouse["warehouse"], tmp_path / "output"))
    con = duckdb.connect(str(tmp_path / "output" / "published" / PUBLISHED_DB_NAME), read_only=True)
    try:
        cursor = con.execute("select * from publication.publication_info")
        info = dict(zip([column[0] for column in cursor.description], cursor.fetchone()))
        yearly = con.execute("""
            select count(*) filter (where suppression_reason = 'small numbers'),
                   count(*) filter (where suppression_reason = 'complementary'),
                   count(*) filter (where geography_level = 'fls' and breakdown = 'all'
                                    and suppression_reason = 'small numbers'),
                   count(*) filter (where geography_level = 'fls' and breakdown = 'all'
                                    and suppression_reason = 'complementary'),
                   count(*)
            from publication.published_kpi_results""").fetchone()
        monthly = con.execute("""
            select count(*) filter (where suppression_reason = 'small numbers'),
                   count(*) filter (where suppression_reason = 'complementary')
            from publication.published_kpi_monthly""").fetchone()
    finally:
        con.close()
    assert (info["results_withheld_small_numbers"], info["results_withheld_complementary"],
            info["fls_headline_withheld_small_numbers"], info["fls_headline_withheld_complementary"],
            info["results"]) == yearly
    assert (info["months_withheld_small_numbers"], info["months_withheld_complementary"]) == monthly
    assert "Information loss" in summary
    assert f"{yearly[0]:,} for small numbers, {yearly[1]:,} as complements" in summary
    assert f"{yearly[2]:,} for small numbers, {yearly[3]:,} as complements" in summary


# --- the passes ------------------------------------------------------------------------------

def test_the_passes_stop_with_a_clear_error_after_the_maximum(small, tmp_path):
    warehouse = tmp_path / "stopped.duckdb"
    shutil.copy(small["warehouse"], warehouse)
    result = run_dbt(["run", "--select", "publication_suppression", "--vars",
                      json.dumps({"secondary_suppression_max_passes": 1})],
                     warehouse, small["landing"], tmp_path / "target")
    assert result.returncode != 0
    assert "did not converge: pass 1 (max_passes) still changed" in result.stdout, result.stdout[-3000:]
    converged = run_dbt(["run", "--select", "publication_suppression"], warehouse, small["landing"],
                        tmp_path / "target")
    assert converged.returncode == 0, converged.stdout[-3000:]
