"""Build the SYNTHETIC FLS registry seeds: seeds/fls_registry.csv and seeds/fls_catchments.csv.

Run with `python -m flsdb.synthetic.registry_build`. The output is deterministic (fixed seed, sorted inputs).

What it makes (see docs/README.md, "What is not public, and what the project does instead"):

- 80 fracture liaison services with invented codes (`SYN001`...) and invented names
  (compound plant/bird words such as "Tansymere Vale FLS"; never a real NHS organisation), in the
  7 NHS England regions (ONS codes E40000003...E40000010, mapped from the ONS 2021 regions) and
  Wales (one region, W92000004);
- a catchment for each, made of real 2021 local authorities (codes as in the ONS mid-2020
  population file), some LAs split between two services, with population shares in (0, 1] that
  sum to at most 1 for any LA;
- first and last audit years such that the number of services active each year is the one in
  audit_years.csv (50 in 2016, 55 in 2017 ... 69 in 2022, 70 in 2023, 77 in 2024-2026): one
  service closes after 2020 and two after 2023 (CLOSED_AFTER).

Calibration. The generator fills each year with the national volume of audit_years.csv (77,268
records for 2023, 83,500 for 2024) and aims at the published identification KPIs (KPI 2 = 55% /
50%, KPI 3 = 34% / 38%). KPI 2 and 3 divide cohort records by the expected fractures in the
catchments of the services active that year, so the two facts only agree when

    sum over active FLSs of (KPI2 * expected non-spine + KPI3 * expected spine) = cohort volume.

This script therefore (1) sizes the catchments (a common coverage of the 50+ population in every
region) so that the 2024 equation holds with the 77 services active in 2024, (2) marks as new in
2024 the number of services that leaves 70 active in 2023, choosing them so that the 2023
equation holds too, (3) nudges one LA share per year so the residual is a fraction of a percent,
and (4) spreads the first audit years of the others over 2016-2023 to meet the table's counts.
Years other than 2023 and 2024 have no published KPI 2/3 to meet; their KPI 2/3 follow from the
table's volume and the active services' expected caseload. Expected fractures use
seeds/incidence_rates.csv and the ONS mid-2020 population, exactly as docs/specification/kpi-definitions.md defines them
(the same rule as models/intermediate/int_expected_fractures_calculated.sql;
tests/python/synthetic/test_expected_caseload_in_step.py keeps the two in step).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from flsdb import paths
from flsdb.synthetic import audit_years

SEED = 20240517
ENGLAND, WALES = "E92000001", "W92000004"

# Published national figures the synthetic data is calibrated to: the years of the one table
# (audit_years.csv) with published KPIs (2023, 2024).
PUBLISHED = {year: audit_years.national(year) for year in audit_years.published_kpi_years()}
# Services that close (last audit year) and when: one after 2020, two after 2023. With the 77
# active in 2024 (audit_years.csv) that makes 80 services in the registry.
CLOSED_AFTER = (2020, 2023, 2023)
N_FLS = audit_years.national(2024)["active_services"] + len(CLOSED_AFTER)
# Share of generated records the default (messy) run turns into rejects or exclusions, so that
# they never reach the KPI cohort. Kept in step with synthetic.common.DEFECT_RATES.
COHORT_LOSS = 0.0055

NHS_REGIONS = {
    "E40000003": "London",
    "E40000005": "South East",
    "E40000006": "South West",
    "E40000007": "East of England",
    "E40000008": "Midlands",
    "E40000009": "North East and Yorkshire",
    "E40000010": "North West",
    WALES: "Wales",
}
ONS_REGION_TO_NHS = {
    "E12000001": "E40000009",  # North East
    "E12000003": "E40000009",  # Yorkshire and The Humber
    "E12000002": "E40000010",  # North West
    "E12000004": "E40000008",  # East Midlands
    "E12000005": "E40000008",  # West Midlands
    "E12000006": "E40000007",  # East of England
    "E12000007": "E40000003",  # London
    "E12000008": "E40000005",  # South East
    "E12000009": "E40000006",  # South West
}

# Invented name parts: compound words that are not place names, plus a landscape word.
_NAME_HEADS = (
    "Tansy", "Linnet", "Osier", "Teasel", "Yarrow", "Plover", "Marram", "Sorrel", "Campion",
    "Dunlin", "Harebell", "Knapweed", "Lapwing", "Oxlip", "Pipit", "Redshank", "Samphire",
    "Sundew", "Tormentil", "Whimbrel", "Woodruff", "Comfrey", "Burdock", "Celandine", "Godwit",
    "Fieldfare", "Quillwort", "Sedgewren", "Nightjar", "Agrimony", "Bistort", "Cowslip",
    "Dropwort", "Eyebright", "Fleabane", "Gromwell", "Henbit", "Jackdaw", "Kittiwake",
)
_NAME_TAILS = ("mere", "holt", "wick", "combe", "stead", "dene", "garth", "shaw")
_NAME_LANDS = ("Vale", "Reach", "Hollow", "Downs", "Water", "Heath", "Valley", "Shore", "Fields",
               "Moor")


def reference_dir() -> Path:
    return paths.reference_dir()


def band_of_age(age: np.ndarray) -> np.ndarray:
    """Age band label (50-54 ... 85-89, 90+) of single ages >= 50."""
    lo = (np.minimum(age, 90) // 5) * 5
    labels = np.array([f"{a}-{a + 4}" for a in range(0, 90, 5)] + ["90+"], dtype=object)
    return labels[lo // 5]


def load_population50() -> pd.DataFrame:
    """ONS mid-2020 population aged 50+ by LA, sex and single age (90 = 90+)."""
    pop = pd.read_csv(reference_dir() / "ons_mye2020_la_age_sex.csv.gz")
    pop = pop[pop["age"] >= 50].copy()
    pop["age_band"] = band_of_age(pop["age"].to_numpy())
    return pop.rename(columns={"area_code": "ltla21_code", "area_name": "ltla21_name"})


def load_rates(seeds_dir: Path | None = None) -> pd.DataFrame:
    path = (seeds_dir or paths.seeds_dir()) / "incidence_rates.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is needed to compute expected fractures")
    return pd.read_csv(path)


def expected_cells(seeds_dir: Path | None = None) -> pd.DataFrame:
    """Expected fractures per year by LA, sex, single age and site (before catchment shares)."""
    pop = load_population50()
    rates = load_rates(seeds_dir)
    cells = pop.merge(rates, on=["sex", "age_band"], how="inner", validate="many_to_many")
    cells["expected"] = cells["population"] * cells["rate_per_10000_person_years"] / 10000.0
    return cells[["ltla21_code", "ltla21_name", "sex", "age", "age_band", "fracture_site",
                  "population", "expected"]]


def la_table(seeds_dir: Path | None = None) -> pd.DataFrame:
    """One row per LA: name, country, NHS region, population 50+, expected spine / non-spine."""
    cells = expected_cells(seeds_dir)
    spine = cells["fracture_site"] == "Spine"
    exp = (cells.assign(spine=np.where(spine, cells["expected"], 0.0),
                        non_spine=np.where(spine, 0.0, cells["expected"]))
           .groupby(["ltla21_code", "ltla21_name"], as_index=False)[["spine", "non_spine"]].sum())
    pop50 = (load_population50().groupby("ltla21_code", as_index=False)["population"].sum()
             .rename(columns={"population": "pop50"}))
    la = exp.merge(pop50, on="ltla21_code")
    regions = pd.read_csv(reference_dir() / "lookup_ltla21_region21.csv")
    region_of = dict(zip(regions["ltla21_code"], regions["region21_code"].map(ONS_REGION_TO_NHS)))
    welsh = set(pd.read_csv(reference_dir() / "lookup_ltla21_lhb22.csv")["ltla21_code"])
    la["country_code"] = np.where(la["ltla21_code"].isin(welsh), WALES, ENGLAND)
    la["region_code"] = [WALES if c in welsh else region_of[c] for c in la["ltla21_code"]]
    return la.sort_values("ltla21_code").reset_index(drop=True)


def _fls_per_region(la: pd.DataFrame) -> dict[str, int]:
    pop = la.groupby("region_code")["pop50"].sum().sort_index()
    raw = pop / pop.sum() * N_FLS
    n = np.maximum(np.floor(raw).astype(int), 3)
    order = (raw - np.floor(raw)).sort_values(ascending=False).index
    i = 0
    while n.sum() < N_FLS:
        n[order[i % len(order)]] += 1
        i += 1
    return {k: int(v) for k, v in n.items()}


def _allocate(la: pd.DataFrame, coverage: float, counts: dict[str, int]) -> pd.DataFrame:
    """Assign LAs (or parts of them) to services so each region is covered at `coverage`."""
    rng = np.random.default_rng(SEED)
    rows: list[tuple[int, str, float]] = []
    fls_region: list[str] = []
    for region in sorted(counts):
        sub = la[la["region_code"] == region]
        order = rng.permutation(len(sub))
        pops = sub["pop50"].to_numpy()[order]
        codes = sub["ltla21_code"].to_numpy()[order]
        n = counts[region]
        target = coverage * pops.sum() / n
        # Service sizes vary (0.6x to 1.4x of the mean), keeping the regional total.
        sizes = rng.uniform(0.6, 1.4, n)
        sizes = target * sizes / sizes.mean()
        k, need = 0, sizes[0]
        fls_region.append(region)
        base = len(fls_region) - 1
        for code, p in zip(codes, pops):
            avail = 1.0
            while avail > 0.005 and k < n:
                take_pop = p * avail
                if take_pop <= need * 1.3:
                    share = avail
                else:
                    share = max(round(need / p, 2), 0.05)
                    share = min(share, avail)
                rows.append((base + k, code, round(share, 2)))
                avail = round(avail - share, 2)
                need -= p * share
                if need <= 0.15 * sizes[k]:
                    k += 1
                    if k < n:
                        fls_region.append(region)
                        need = sizes[k]
            if k >= n:
                break
    cat = pd.DataFrame(rows, columns=["fls_index", "ltla21_code", "population_share"])
    cat = cat[cat["population_share"] > 0]
    cat = cat.groupby(["fls_index", "ltla21_code"], as_index=False)["population_share"].sum()
    cat.attrs["fls_region"] = fls_region
    return cat


def _weights(cat: pd.DataFrame, la: pd.DataFrame, year: int) -> pd.Series:
    """Per-service records implied by the published KPI 2/3 of `year` (at full cohort)."""
    p = PUBLISHED[year]
    m = cat.merge(la[["ltla21_code", "spine", "non_spine"]], on="ltla21_code")
    w = m["population_share"] * (p["kpi2"] / 100 * m["non_spine"] + p["kpi3"] / 100 * m["spine"])
    return w.groupby(m["fls_index"]).sum()


def _target(year: int) -> float:
    return PUBLISHED[year]["records"] * (1 - COHORT_LOSS)


def _nudge(cat: pd.DataFrame, la: pd.DataFrame, fls_set: list[int], gap: float,
           year: int) -> pd.DataFrame:
    """Change LA shares of services in `fls_set` so that the year's weight moves by about `gap`.

    A service may also take on part of an LA of its region that is not fully served yet.
    Returns the (possibly extended) catchment table.
    """
    p = PUBLISHED[year]
    fls_region = cat.attrs["fls_region"]
    unit_of = dict(zip(la["ltla21_code"],
                       p["kpi2"] / 100 * la["non_spine"] + p["kpi3"] / 100 * la["spine"]))
    region_las = la.groupby("region_code")["ltla21_code"].apply(list).to_dict()
    for _ in range(30):
        if abs(gap) < 5:
            break
        total = cat.groupby("ltla21_code")["population_share"].sum().to_dict()
        have = set(zip(cat["fls_index"], cat["ltla21_code"]))
        cands = [(int(cat.at[i, "fls_index"]), cat.at[i, "ltla21_code"],
                  cat.at[i, "population_share"]) for i in cat.index
                 if cat.at[i, "fls_index"] in fls_set]
        cands += [(f, code, 0.0) for f in fls_set for code in region_las[fls_region[f]]
                  if (f, code) not in have and total.get(code, 0.0) <= 0.95]
        best = None
        for f, code, s in cands:
            unit = unit_of[code]
            room = round(1.0 - (total.get(code, 0.0) - s), 2)
            new = round(min(max(s + gap / unit, 0.05), room), 2)
            err = abs(gap - (new - s) * unit)
            if best is None or err < best[0]:
                best = (err, f, code, new, (new - s) * unit)
        if best is None or best[0] >= abs(gap) - 1e-9:
            break
        _, f, code, new, moved = best
        hit = (cat["fls_index"] == f) & (cat["ltla21_code"] == code)
        if hit.any():
            cat.loc[hit, "population_share"] = new
        else:
            attrs = cat.attrs
            cat = pd.concat([cat, pd.DataFrame([{"fls_index": f, "ltla21_code": code,
                                                 "population_share": new}])],
                            ignore_index=True)
            cat.attrs = attrs
        gap -= moved
    return cat


def _names(n: int) -> list[str]:
    rng = np.random.default_rng(SEED + 1)
    heads = rng.permutation(np.array(_NAME_HEADS, dtype=object))
    names, used = [], set()
    for i in range(n):
        while True:
            head = heads[i % len(heads)]
            tail = _NAME_TAILS[rng.integers(len(_NAME_TAILS))]
            land = _NAME_LANDS[rng.integers(len(_NAME_LANDS))]
            name = f"{head}{tail} {land} FLS"
            if name not in used and head + tail not in used:
                used.update({name, head + tail})
                names.append(name)
                break
    return names


def _pick_new_in_2024(w23: pd.Series, pool: list[int], k: int, gap: float,
                      rng: np.random.Generator) -> list[int]:
    """k services from `pool` whose 2023 weights sum closest to `gap`: a random start, then
    swaps while one improves the sum (deterministic through `rng`)."""
    order = [int(i) for i in rng.permutation(pool)]
    chosen, rest = order[:k], order[k:]
    total = float(w23[chosen].sum())
    improved = True
    while improved:
        improved = False
        for a in list(chosen):
            for b in list(rest):
                new_total = total - w23[a] + w23[b]
                if abs(new_total - gap) < abs(total - gap) - 1e-9:
                    chosen[chosen.index(a)], rest[rest.index(b)] = b, a
                    total = new_total
                    improved = True
                    break
            if improved:
                break
    return sorted(chosen)


def _first_years(services: list[int], closed_after: dict[int, int],
                 rng: np.random.Generator) -> dict[int, int]:
    """First audit year of each service active in 2023 or earlier, so that the number active in
    each year 2016-2023 is the one in audit_years.csv. Services that close open first."""
    targets = {y: audit_years.national(y)["active_services"]
               for y in range(audit_years.FIRST_YEAR, 2024)}
    queue = ([i for i in services if i in closed_after]
             + [int(i) for i in rng.permutation([i for i in services if i not in closed_after])])
    first: dict[int, int] = {}
    for year in sorted(targets):
        active = sum(1 for i, f in first.items()
                     if f <= year and closed_after.get(i, 9999) >= year)
        for _ in range(targets[year] - active):
            first[queue.pop(0)] = year
    if queue:
        raise RuntimeError(f"{len(queue)} services left without a first audit year: "
                           "audit_years.csv and the 2023 calibration disagree")
    return first


def build(seeds_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    la = la_table(seeds_dir)
    counts = _fls_per_region(la)
    all_2024 = float((PUBLISHED[2024]["kpi2"] / 100 * la["non_spine"]
                      + PUBLISHED[2024]["kpi3"] / 100 * la["spine"]).sum())
    coverage = _target(2024) / all_2024
    rng = np.random.default_rng(SEED + 2)
    n = sum(counts.values())
    # Small services close (CLOSED_AFTER): the smallest-but-three, -seven, -eleven by 2024 weight.
    closed: list[int] = []
    for _ in range(6):
        cat = _allocate(la, coverage, counts)
        w24 = _weights(cat, la, 2024)
        closed = [int(i) for i in w24.sort_values().index[[3, 7, 11][:len(CLOSED_AFTER)]]]
        active24 = [i for i in range(n) if i not in closed]
        coverage *= _target(2024) / w24[active24].sum()
    cat = _allocate(la, coverage, counts)
    fls_region = cat.attrs["fls_region"]
    closed_after = dict(zip(closed, sorted(CLOSED_AFTER)))
    gone_by_2023 = [i for i, last in closed_after.items() if last < 2023]
    w23 = _weights(cat, la, 2023)
    # New services in 2024: as many as make 2023's count the table's, chosen so that the 2023
    # weight of the others meets 2023's published volume.
    n_new = n - len(gone_by_2023) - audit_years.national(2023)["active_services"]
    active23_all = [i for i in range(n) if i not in gone_by_2023]
    gap23 = w23[active23_all].sum() - _target(2023)
    new = _pick_new_in_2024(w23, [i for i in active23_all if i not in closed], n_new, gap23, rng)
    active23 = [i for i in active23_all if i not in new]
    # Fine tune: 2023 through a service active in both years, then 2024 through a new one.
    for _ in range(4):
        gap = _target(2023) - _weights(cat, la, 2023)[active23].sum()
        cat = _nudge(cat, la, [i for i in active23 if i not in closed], gap, 2023)
        active24 = [i for i in range(n) if i not in closed]
        gap = _target(2024) - _weights(cat, la, 2024)[active24].sum()
        cat = _nudge(cat, la, new, gap, 2024)
    first_year = _first_years([i for i in range(n) if i not in new],
                              closed_after, rng)
    first_year.update({i: 2024 for i in new})

    names = _names(n)
    # Order services by region then index, and number them SYN001...
    order = sorted(range(n), key=lambda i: (fls_region[i], i))
    code_of = {i: f"SYN{j + 1:03d}" for j, i in enumerate(order)}
    reg_rows = []
    for i in order:
        region = fls_region[i]
        reg_rows.append({
            "fls_code": code_of[i],
            "fls_name": names[int(code_of[i][3:]) - 1],
            "country_code": WALES if region == WALES else ENGLAND,
            "country_name": "Wales" if region == WALES else "England",
            "region_code": region,
            "region_name": NHS_REGIONS[region],
            "first_audit_year": first_year[i],
            "last_audit_year": closed_after.get(i),
        })
    registry = pd.DataFrame(reg_rows)
    registry["last_audit_year"] = registry["last_audit_year"].astype("Int64")
    cat = cat.assign(fls_code=cat["fls_index"].map(code_of))
    cat = cat.merge(la[["ltla21_code", "ltla21_name"]], on="ltla21_code")
    cat = cat[["fls_code", "ltla21_code", "ltla21_name", "population_share"]]
    cat = cat.sort_values(["fls_code", "ltla21_code"]).reset_index(drop=True)
    return registry, cat


def active_counts(registry: pd.DataFrame) -> dict[int, int]:
    """Services registered for each audit year of audit_years.csv."""
    last = registry["last_audit_year"].fillna(9999).astype(int)
    return {y: int(((registry["first_audit_year"] <= y) & (last >= y)).sum())
            for y in range(audit_years.FIRST_YEAR, audit_years.LAST_YEAR + 1)}


def summarise(registry: pd.DataFrame, cat: pd.DataFrame, seeds_dir: Path | None = None) -> str:
    la = la_table(seeds_dir)
    m = cat.merge(la, on="ltla21_code")
    covered = (m["population_share"] * m["pop50"]).sum()
    lines = [(f"{len(registry)} services, {cat['ltla21_code'].nunique()} LAs in catchments, "
              f"{(cat.groupby('ltla21_code').size() > 1).sum()} LAs split; "
              f"population 50+ covered {covered:,.0f} of {la['pop50'].sum():,.0f} "
              f"({100 * covered / la['pop50'].sum():.1f}%)")]
    for year in sorted(PUBLISHED):
        p = PUBLISHED[year]
        active = registry[(registry["first_audit_year"] <= year)
                          & (registry["last_audit_year"].isna()
                             | (registry["last_audit_year"] >= year))]["fls_code"]
        a = m[m["fls_code"].isin(active)]
        ns = (a["population_share"] * a["non_spine"]).sum()
        sp = (a["population_share"] * a["spine"]).sum()
        implied = p["kpi2"] / 100 * ns + p["kpi3"] / 100 * sp
        lines.append(f"{year}: {len(active)} active, expected non-spine {ns:,.0f}, spine {sp:,.0f}; "
                     f"records at published KPI 2/3 = {implied:,.0f} "
                     f"(target cohort {_target(year):,.0f}, scale {(_target(year) / implied):.4f})")
    lines.append("active per year: " + ", ".join(f"{y} {n}" for y, n in
                                                 active_counts(registry).items()))
    return "\n".join(lines)


def write(registry: pd.DataFrame, cat: pd.DataFrame, seeds_dir: Path | None = None) -> None:
    out = seeds_dir or paths.seeds_dir()
    registry.to_csv(out / "fls_registry.csv", index=False, lineterminator="\n",
                    quoting=csv.QUOTE_MINIMAL)
    cat.to_csv(out / "fls_catchments.csv", index=False, lineterminator="\n", float_format="%.2f")


def main() -> None:
    registry, cat = build()
    write(registry, cat)
    print(summarise(registry, cat))


if __name__ == "__main__":
    sys.exit(main())
