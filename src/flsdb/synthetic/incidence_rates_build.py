"""Build ``seeds/incidence_rates.csv``: fragility fracture incidence by sex, age band and site.

Run ``python -m flsdb.synthetic.incidence_rates_build`` (deterministic: same inputs, same bytes out).

What the table is
-----------------
Fractures per 10,000 person-years for people aged 50+, by ``sex`` (male/female), ``age_band``
(50-54, 55-59, ..., 85-89, 90+) and ``fracture_site`` (Hip, Spine, Wrist, Humerus, Pelvis,
Other). It is the ``rate`` of the expected-caseload formula in ``docs/specification/kpi-definitions.md``. No official
table is public, so the project builds this ESTIMATE from published figures
(``docs/README.md``, "Published figures the synthetic data is calibrated to") and calibrates it to the national totals.

Derivation
----------
Population ``P(sex, band)``: ONS mid-2020 estimates for England and Wales
(``data/reference/ons_mye2020_la_age_sex.csv.gz``, single year of age, 90 = 90 and over),
summed to the nine bands. Each band has a representative age (its midpoint; 92.5 for 90+).

1. Totals by sex. Curtis et al. 2016 (UK CPRD) give all fractures at 50+ as 71.8 (men) and
   155.4 (women) per 10,000 person-years. Their sex ratio is kept, and both are multiplied by
   one factor ``k_all`` so that the table summed over England and Wales gives the national
   figure of 347,770 fragility fractures a year (docs/README.md). ``k_all`` is about 1.3: CPRD
   under-records fractures that never reach primary-care coding.
2. Hip. van der Velde et al. 2016 (UK, 50+): 33.5 (women) and 13.4 (men). Sex ratio kept and
   both multiplied by one factor ``k_hip`` so that hips total 71,000 a year (NHFD: 70,000 to
   76,000 a year for England, Wales and Northern Ireland; Northern Ireland is about 3% of that).
   Age shape: exponential, doubling every 5.5 years of age (docs/README.md: every 5 to 6 years).
3. Spine = clinical vertebral fractures, van der Velde 2016: 11.8 per 10,000 in women, used
   as is. No figure for men is given in docs/README.md; men are taken as half the women's crude
   rate (5.9), in line with the usual male:female ratio of clinical vertebral fractures
   (ASSUMPTION). Age shape: exponential, doubling every 7 years.
4. Wrist (distal radius/ulna and carpal). Shares of each sex's all-fracture total: 22% in
   women, 14% in men (van Staa 2001: radius/ulna 30.2 in women and carpal 26.2 in men per
   10,000 at all ages are the most common non-hip sites). Age shape in women rises from 50 to
   about 65 and then plateaus (docs/README.md); in men it is flat to 70 and then rises slowly.
5. Humerus: 10% (women) and 8% (men) of the total, doubling every 9 (women) / 10 (men) years.
   Pelvis: 5% (women) and 4% (men), doubling every 6 years. (ASSUMPTIONS, from the usual site
   mix of fragility fractures in UK cohorts.)
6. Other (ribs, ankle, clavicle, femur other than hip, ...; skull, face and digits excluded):
   the remainder of each sex's total after steps 2-5, with age shape doubling every 10 years.

For each (sex, site) with crude rate ``C`` and age weights ``w(band)``, the band rate is
``C * w(band) * sum(P) / sum(P * w)``, so the population-weighted mean of the band rates equals
``C`` exactly. Rates are rounded to 2 decimals (the totals below are from the rounded rates).

Result (printed when the script runs): about 347,770 fractures a year in England and Wales at
50+ (within 0.01%), of which about 71,000 are hips. Shapes and the step 3-5 splits are
plausible estimates, not measurements: treat the per-site and per-band figures as such.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections import defaultdict
from pathlib import Path

from flsdb import paths

NATIONAL_FRACTURES = 347_770
NATIONAL_HIP_FRACTURES = 71_000

AGE_BANDS = ["50-54", "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90+"]
BAND_MIDPOINTS = [52.0, 57.0, 62.0, 67.0, 72.0, 77.0, 82.0, 87.0, 92.5]
SEXES = ["female", "male"]
SITES = ["Hip", "Spine", "Wrist", "Humerus", "Pelvis", "Other"]

# Curtis 2016, all fractures at 50+, per 10,000 person-years.
CURTIS_ALL = {"male": 71.8, "female": 155.4}
# van der Velde 2016, hip at 50+.
VAN_DER_VELDE_HIP = {"male": 13.4, "female": 33.5}
# van der Velde 2016, clinical vertebral in women; men assumed half.
SPINE_CRUDE = {"female": 11.8, "male": 5.9}
# Shares of each sex's calibrated all-fracture total (assumptions, see docstring).
SITE_SHARES = {
    "Wrist": {"female": 0.22, "male": 0.14},
    "Humerus": {"female": 0.10, "male": 0.08},
    "Pelvis": {"female": 0.05, "male": 0.04},
}


def _doubling(years: float) -> list[float]:
    return [2 ** ((m - BAND_MIDPOINTS[0]) / years) for m in BAND_MIDPOINTS]


AGE_WEIGHTS = {
    ("Hip", "female"): _doubling(5.5),
    ("Hip", "male"): _doubling(5.5),
    ("Spine", "female"): _doubling(7.0),
    ("Spine", "male"): _doubling(7.0),
    # Women: early rise to about 65, then a plateau.
    ("Wrist", "female"): [1.00, 1.25, 1.45, 1.55, 1.60, 1.60, 1.60, 1.60, 1.60],
    # Men: flat, then a slow rise in old age.
    ("Wrist", "male"): [1.00, 1.00, 1.00, 1.05, 1.10, 1.20, 1.35, 1.50, 1.60],
    ("Humerus", "female"): _doubling(9.0),
    ("Humerus", "male"): _doubling(10.0),
    ("Pelvis", "female"): _doubling(6.0),
    ("Pelvis", "male"): _doubling(6.0),
    ("Other", "female"): _doubling(10.0),
    ("Other", "male"): _doubling(10.0),
}


def band_of(age: int) -> str | None:
    if age < 50:
        return None
    if age >= 90:
        return "90+"
    low = 50 + 5 * ((age - 50) // 5)
    return f"{low}-{low + 4}"


def population_by_band(path: Path) -> dict[tuple[str, str], int]:
    """England and Wales mid-2020 population aged 50+ by (sex, age band)."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            band = band_of(int(row["age"]))
            if band is not None:
                totals[(row["sex"], band)] += int(row["population"])
    return dict(totals)


def _shape(crude: float, weights: list[float], pops: list[int]) -> list[float]:
    """Band rates with the given age weights whose population-weighted mean is `crude`."""
    scale = crude * sum(pops) / sum(p * w for p, w in zip(pops, weights))
    return [scale * w for w in weights]


def build(population: dict[tuple[str, str], int]) -> dict[tuple[str, str, str], float]:
    pops = {s: [population[(s, b)] for b in AGE_BANDS] for s in SEXES}
    persons = {s: sum(pops[s]) for s in SEXES}

    k_all = NATIONAL_FRACTURES * 10_000 / sum(CURTIS_ALL[s] * persons[s] for s in SEXES)
    k_hip = NATIONAL_HIP_FRACTURES * 10_000 / sum(VAN_DER_VELDE_HIP[s] * persons[s] for s in SEXES)

    rates: dict[tuple[str, str, str], float] = {}
    for sex in SEXES:
        total_crude = CURTIS_ALL[sex] * k_all
        crude = {
            "Hip": VAN_DER_VELDE_HIP[sex] * k_hip,
            "Spine": SPINE_CRUDE[sex],
            **{site: share[sex] * total_crude for site, share in SITE_SHARES.items()},
        }
        crude["Other"] = total_crude - sum(crude.values())
        if crude["Other"] <= 0:
            raise ValueError(f"no room left for Other fractures in {sex}")
        for site in SITES:
            for band, rate in zip(AGE_BANDS, _shape(crude[site], AGE_WEIGHTS[(site, sex)], pops[sex])):
                rates[(sex, band, site)] = round(rate, 2)
    return rates


def national_totals(rates, population) -> tuple[float, float]:
    total = sum(r * population[(s, b)] / 10_000 for (s, b, _), r in rates.items())
    hip = sum(r * population[(s, b)] / 10_000 for (s, b, site), r in rates.items() if site == "Hip")
    return total, hip


def to_csv(rates) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["sex", "age_band", "fracture_site", "rate_per_10000_person_years"])
    for sex in SEXES:
        for band in AGE_BANDS:
            for site in SITES:
                writer.writerow([sex, band, site, f"{rates[(sex, band, site)]:.2f}"])
    return out.getvalue()


def main() -> None:
    population = population_by_band(paths.reference_dir() / "ons_mye2020_la_age_sex.csv.gz")
    rates = build(population)
    target = paths.seeds_dir() / "incidence_rates.csv"
    target.write_text(to_csv(rates), encoding="utf-8")
    total, hip = national_totals(rates, population)
    print(f"wrote {target}: {len(rates)} rows")
    print(f"England and Wales 50+: {total:,.0f} fractures a year "
          f"({100 * (total / NATIONAL_FRACTURES - 1):+.2f}% vs {NATIONAL_FRACTURES:,}); "
          f"hip {hip:,.0f}")


if __name__ == "__main__":
    main()
