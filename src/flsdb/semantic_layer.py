"""Generate the dbt semantic layer (MetricFlow) of the KPIs from the KPI seed.

`models/marts/_marts__semantic_models.yml` is written by this module, never by hand: its KPI
measures and metrics come from `seeds/kpi_definitions.csv`, one set per KPI row, by the row's
`grain`:

- `episode` (KPIs 4-11): numerator and denominator measures on `fct_episodes`
  (`kpi_<n>_in_numerator` / `kpi_<n>_in_denominator`), a simple metric for each and a ratio metric
  named after the KPI's short name;
- `expected_caseload` (KPI 2 and 3): an `identified` measure on `fct_episodes`, and identified /
  expected measures on the FLS rows of `kpi_results` with a ratio metric (the expected count is no
  episode count, so the ratio is read from the results table);
- `completeness` (KPI 1): none; it is not additive over episodes (kpi_results / kpi_data_completeness).

    python -m flsdb.semantic_layer           # rewrite the file
    python -m flsdb.semantic_layer --check   # exit 1 if the committed file differs

`tests/python/warehouse/test_kpi_seed.py` (`test_semantic_layer_is_generated_from_the_seed`) fails when the
committed file drifts from what the seed generates.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import yaml

from flsdb import paths

HEADER = """\
# GENERATED from seeds/kpi_definitions.csv by `python -m flsdb.semantic_layer`: do not edit by hand
# (tests/python/warehouse/test_kpi_seed.py fails when this file and the seed disagree). To change a KPI
# metric, change the seed row (or the generator, src/flsdb/semantic_layer.py) and run it again.
#
# dbt semantic layer (MetricFlow) over the marts: semantic models and ratio metrics for the KPIs.
# Example, with dbt-metricflow installed:
#   mf query --metrics {example_metric} --group-by metric_time__year,episode__deprivation_quintile
# Ratio metrics are fractions (0-1); kpi_results holds the same numbers as percentages. The completeness
# KPI (KPI 1, per FLS over its key fields) is not additive and is read from kpi_results /
# kpi_data_completeness directly.
"""


def semantic_models_path() -> Path:
    return paths.PROJECT_DIR / "models" / "marts" / "_marts__semantic_models.yml"


def read_kpi_definitions(seed: Path | None = None) -> list[dict[str, str]]:
    """The seed's rows, in KPI number order."""
    seed = seed or paths.seeds_dir() / "kpi_definitions.csv"
    with seed.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return sorted(rows, key=lambda row: int(row["kpi_number"]))


def metric_slug(kpi: dict[str, str]) -> str:
    """`kpi_<n>_<short name in snake case>`, e.g. kpi_4_assessment_within_90_days."""
    words = re.sub(r"[^a-z0-9]+", "_", kpi["kpi_short_name"].lower()).strip("_")
    return f"kpi_{kpi['kpi_number']}_{words}"


def _numbers_text(kpis: list[dict[str, str]]) -> str:
    return ", ".join(kpi["kpi_number"] for kpi in kpis)


def _simple_metric(name: str, label: str, description: str) -> dict:
    return {"name": name, "label": label, "type": "simple", "description": description,
            "type_params": {"measure": name}}


def _ratio_metric(kpi: dict[str, str], numerator: str, denominator: str, description: str) -> dict:
    return {"name": metric_slug(kpi), "label": f"KPI {kpi['kpi_number']} {kpi['kpi_name']}", "type": "ratio",
            "description": description, "type_params": {"numerator": numerator, "denominator": denominator}}


def _episodes_semantic_model(kpis: list[dict[str, str]]) -> dict:
    episode_kpis = [kpi for kpi in kpis if kpi["grain"] == "episode"]
    measures: list[dict] = [
        {"name": "records_submitted", "description": "Records submitted (current versions), in or out of the cohort.",
         "agg": "count", "expr": "record_id"},
        {"name": "cohort_records", "description": "Records in the audit cohort.",
         "agg": "sum", "expr": "case when is_in_cohort then 1 else 0 end"},
    ]
    for kpi in kpis:
        n = kpi["kpi_number"]
        if kpi["grain"] == "expected_caseload":
            measures.append({"name": f"kpi_{n}_identified",
                             "description": f"KPI {n} numerator: {kpi['numerator_definition']}.",
                             "agg": "sum", "expr": f"case when kpi_{n}_in_numerator then 1 else 0 end"})
        elif kpi["grain"] == "episode":
            for part in ("numerator", "denominator"):
                measures.append({"name": f"kpi_{n}_{part}",
                                 "description": f"KPI {n} ({kpi['kpi_name']}) {part}.",
                                 "agg": "sum", "expr": f"case when kpi_{n}_in_{part} then 1 else 0 end"})
    return {
        "name": "episodes",
        "description": (f"One row per submitted record (fct_episodes). KPIs {_numbers_text(episode_kpis)} as ratios "
                        "of episode counts, by any patient group; metric_time is the fracture date, so "
                        "metric_time__year is the audit year."),
        "model": "ref('fct_episodes')",
        "defaults": {"agg_time_dimension": "fracture_date"},
        "entities": [
            {"name": "episode", "type": "primary", "expr": "fls_code || '|' || record_id"},
            {"name": "fls", "type": "foreign", "expr": "fls_code"},
        ],
        "dimensions": [
            {"name": "fracture_date", "type": "time", "type_params": {"time_granularity": "day"},
             "description": "Date the index fracture was diagnosed (1.09)."},
            {"name": "audit_year", "type": "categorical", "description": "Calendar year of the index fracture."},
            {"name": "deprivation_quintile", "type": "categorical",
             "description": "1 (most deprived) to 5, or unknown; each country's own index (IMD 2019 / WIMD 2019)."},
            {"name": "sex", "type": "categorical", "description": "1.03 Gender."},
            {"name": "age_band", "type": "categorical", "description": "50-59 ... 90+."},
            {"name": "fracture_site", "type": "categorical", "description": "1.11 SiteFirstFrac."},
            {"name": "care_home", "type": "categorical", "expr": "lived_in_care_home", "description": "1.05 CareRes."},
            {"name": "country_code", "type": "categorical", "description": "The FLS's country."},
            {"name": "region_code", "type": "categorical", "description": "The FLS's region."},
            {"name": "is_in_cohort", "type": "categorical", "description": "In the audit cohort."},
        ],
        "measures": measures,
    }


def _fls_semantic_model() -> dict:
    return {
        "name": "fls",
        "description": "The FLS registry (dim_fls): names, countries and regions to group episodes by.",
        "model": "ref('dim_fls')",
        "entities": [{"name": "fls", "type": "primary", "expr": "fls_code"}],
        "dimensions": [
            {"name": "fls_name", "type": "categorical", "description": "The FLS's name (SYNTHETIC registry)."},
            {"name": "country_name", "type": "categorical", "description": "England or Wales."},
            {"name": "region_name", "type": "categorical", "description": "NHS England region, or Wales."},
        ],
    }


def _identification_semantic_model(kpis: list[dict[str, str]]) -> dict:
    identification_kpis = [kpi for kpi in kpis if kpi["grain"] == "expected_caseload"]
    measures = []
    for kpi in identification_kpis:
        n = kpi["kpi_number"]
        where = f"kpi_number = {n} and geography_level = 'fls' and breakdown = 'all'"
        measures.append({"name": f"kpi_{n}_fls_identified", "agg": "sum",
                         "description": f"KPI {n} numerator (FLS rows, breakdown all).",
                         "expr": f"case when {where} then numerator else 0 end"})
        measures.append({"name": f"kpi_{n}_fls_expected", "agg": "sum",
                         "description": f"KPI {n} denominator: {kpi['denominator_definition']}.",
                         "expr": f"case when {where} then denominator else 0 end"})
    return {
        "name": "kpi_identification",
        "description": (f"FLS-level results of the expected-caseload KPIs ({_numbers_text(identification_kpis)}) "
                        "from kpi_results: patients identified against the expected fragility fractures of the "
                        "catchment. Summed over FLSs they give the national figures."),
        "model": "ref('kpi_results')",
        "defaults": {"agg_time_dimension": "audit_year_start"},
        "primary_entity": "kpi_result",
        "entities": [{"name": "fls", "type": "foreign", "expr": "geography_code"}],
        "dimensions": [
            {"name": "audit_year_start", "type": "time", "type_params": {"time_granularity": "year"},
             "expr": "make_date(audit_year, 1, 1)", "description": "1 January of the audit year."},
            {"name": "geography_level", "type": "categorical", "description": "national, country, region or fls."},
            {"name": "breakdown", "type": "categorical", "description": "all, sex, age_band, ..."},
            {"name": "breakdown_value", "type": "categorical", "description": "The breakdown's value."},
        ],
        "measures": measures,
    }


def _metrics(kpis: list[dict[str, str]]) -> list[dict]:
    metrics = [
        _simple_metric("records_submitted", "Records submitted", "Records submitted (current versions)."),
        _simple_metric("cohort_records", "Cohort records", "Records in the audit cohort."),
    ]
    for kpi in kpis:
        n = kpi["kpi_number"]
        if kpi["grain"] == "expected_caseload":
            identified, expected = f"kpi_{n}_fls_identified", f"kpi_{n}_fls_expected"
            metrics.append(_simple_metric(identified, f"KPI {n} identified", f"KPI {n} numerator."))
            metrics.append(_simple_metric(expected, f"KPI {n} expected", f"KPI {n} denominator (expected)."))
            metrics.append(_ratio_metric(
                kpi, identified, expected,
                f"KPI {n} as a fraction (x100 for the percent in kpi_results): identified / expected."))
        elif kpi["grain"] == "episode":
            numerator, denominator = f"kpi_{n}_numerator", f"kpi_{n}_denominator"
            metrics.append(_simple_metric(numerator, f"KPI {n} numerator", f"KPI {n} numerator."))
            metrics.append(_simple_metric(denominator, f"KPI {n} denominator", f"KPI {n} denominator."))
            metrics.append(_ratio_metric(
                kpi, numerator, denominator,
                f"KPI {n} ({kpi['kpi_name']}) as a fraction of its denominator (x100 for the percent in kpi_results)."))
    return metrics


def render(kpis: list[dict[str, str]] | None = None) -> str:
    """The whole semantic-models file for these KPI rows (default: the seed's)."""
    kpis = read_kpi_definitions() if kpis is None else kpis
    unknown = {kpi["grain"] for kpi in kpis} - {"episode", "expected_caseload", "completeness"}
    if unknown:
        raise ValueError(f"seeds/kpi_definitions.csv: unknown grain {sorted(unknown)}")
    document = {
        "version": 2,
        "semantic_models": [_episodes_semantic_model(kpis), _fls_semantic_model(), _identification_semantic_model(kpis)],
        "metrics": _metrics(kpis),
    }
    example = next((metric_slug(kpi) for kpi in kpis if kpi["grain"] == "episode"), "cohort_records")
    body = yaml.safe_dump(document, sort_keys=False, width=110, allow_unicode=True)
    return HEADER.format(example_metric=example) + body


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flsdb.semantic_layer", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1, writing nothing, if the committed file differs from what the seed generates")
    args = parser.parse_args(argv)
    target = semantic_models_path()
    expected = render()
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != expected:
            print(f"{target} is out of step with seeds/kpi_definitions.csv: run python -m flsdb.semantic_layer",
                  file=sys.stderr)
            return 1
        return 0
    target.write_text(expected, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
