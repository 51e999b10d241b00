"""Who the SYNTHETIC patients are and when they broke a bone: episodes drawn per service and year,
then where the patients live, their identities and repeat episodes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from flsdb.synthetic.common import (AGE_CAPTURE_SLOPE, EPOCH, SITE_CAPTURE, SITES, Records,
                                    day_number, draw_category, largest_remainder)
from flsdb.synthetic.geography import Geography, active_fls
from flsdb.synthetic import audit_years


def _drawing_cells(catchments, cells, fls_index) -> pd.DataFrame:
    """Expected fractures per service, LA, sex, age and site, with the weights episodes are
    drawn with (identification is uneven across sites and ages)."""
    cells_by_fls = catchments.merge(cells, on="ltla21_code")
    cells_by_fls["fls"] = cells_by_fls["fls_code"].map(fls_index)
    cells_by_fls["w"] = cells_by_fls["population_share"] * cells_by_fls["expected"]
    cells_by_fls["site_idx"] = cells_by_fls["fracture_site"].map({s: i for i, s in enumerate(SITES)})
    cells_by_fls["spine"] = cells_by_fls["fracture_site"] == "Spine"
    cells_by_fls["w_draw"] = (cells_by_fls["w"] * cells_by_fls["fracture_site"].map(SITE_CAPTURE)
                   * np.exp(-AGE_CAPTURE_SLOPE * (cells_by_fls["age"] - 50)))
    la_pos = {c: i for i, c in enumerate(sorted(catchments["ltla21_code"].unique()))}
    cells_by_fls["la"] = cells_by_fls["ltla21_code"].map(la_pos)
    cells_by_fls["sexi"] = (cells_by_fls["sex"] == "female").astype(np.int8)
    return cells_by_fls.sort_values(["fls", "spine", "ltla21_code", "sex", "age", "site_idx"]).reset_index(
        drop=True)


def draw_episodes(rng, registry, catchments, cells, years, scale) -> Records:
    """Draw FLS, year, site, sex, age, LA and fracture date of every record.

    Each year's records are the national volume times `scale`, split among the services active
    that year in proportion to identification rate x expected caseload."""
    n_fls = len(registry)
    fls_index = {c: i for i, c in enumerate(registry["fls_code"])}
    # Per-service identification random effects, persistent across years.
    identification_effect = rng.normal(size=(n_fls, 2))
    identification_effect[:, 1] = 0.6 * identification_effect[:, 0] + 0.8 * identification_effect[:, 1]
    cells_by_fls = _drawing_cells(catchments, cells, fls_index)
    groups = {key: group for key, group in cells_by_fls.groupby(["fls", "spine"], sort=True)}
    expected_non_spine = (cells_by_fls[~cells_by_fls["spine"]].groupby("fls")["w"].sum()
                          .reindex(range(n_fls), fill_value=0.0).to_numpy())
    expected_spine = (cells_by_fls[cells_by_fls["spine"]].groupby("fls")["w"].sum()
                      .reindex(range(n_fls), fill_value=0.0).to_numpy())

    parts = []
    for year in years:
        published = audit_years.national(year)
        active = active_fls(registry, year)
        volume = round(published["records"] * scale)
        effect_non_spine = np.exp(0.3 * identification_effect[active, 0]
                                  + 0.05 * rng.normal(size=len(active)))
        effect_spine = np.exp(0.35 * identification_effect[active, 1]
                              + 0.05 * rng.normal(size=len(active)))
        non_spine, spine = expected_non_spine[active], expected_spine[active]
        identified_non_spine = (published["kpi2"] / 100 * effect_non_spine * non_spine.sum()
                                / (effect_non_spine * non_spine).sum())
        identified_spine = (published["kpi3"] / 100 * effect_spine * spine.sum()
                            / (effect_spine * spine).sum())
        want = np.concatenate([identified_non_spine * non_spine, identified_spine * spine])
        counts = largest_remainder(want * volume / want.sum(), volume)
        for j, fls in enumerate(active):
            for is_spine, n_records in ((False, counts[j]), (True, counts[len(active) + j])):
                if n_records <= 0:
                    continue
                group = groups[(int(fls), is_spine)]
                weights = group["w_draw"].to_numpy()
                pick = rng.choice(len(group), size=int(n_records), p=weights / weights.sum())
                parts.append(pd.DataFrame({
                    "fls": np.full(n_records, fls, dtype=np.int16),
                    "year": np.full(n_records, year, np.int16),
                    "site": group["site_idx"].to_numpy()[pick].astype(np.int8),
                    "female": group["sexi"].to_numpy()[pick],
                    "age": group["age"].to_numpy()[pick].astype(np.int16),
                    "la": group["la"].to_numpy()[pick].astype(np.int32),
                }))
    df = pd.concat(parts, ignore_index=True)
    ages = df["age"].to_numpy().copy()
    old = ages >= 90
    ages[old] = 90 + np.minimum(rng.geometric(0.22, size=int(old.sum())) - 1, 15)
    df["age"] = ages
    df["fracture_day"] = draw_fracture_days(rng, df["year"].to_numpy(), years)
    return Records({k: df[k].to_numpy().copy() for k in df.columns})


def draw_fracture_days(rng, record_year: np.ndarray, years) -> np.ndarray:
    """Fracture date: uniform over the year with a mild winter excess."""
    fracture_day = np.empty(len(record_year), dtype=np.int32)
    for year in years:
        sel = np.flatnonzero(record_year == year)
        first = day_number(dt.date(year, 1, 1))
        n_days = day_number(dt.date(year + 1, 1, 1)) - first
        weight = 1 + 0.15 * np.cos(2 * np.pi * np.arange(n_days) / n_days)
        fracture_day[sel] = first + rng.choice(n_days, size=len(sel), p=weight / weight.sum())
    return fracture_day


def dob_for_age(fracture_day: np.ndarray, age: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Date of birth (day number) such that the age at the fracture is `age`; `back` in 0..364."""
    d = pd.to_datetime(fracture_day.astype("datetime64[D]"))
    year, month, day = d.year.to_numpy() - age, d.month.to_numpy(), d.day.to_numpy()
    day = np.where((month == 2) & (day == 29), 28, day)
    anniversary = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": day}))
    return ((anniversary.to_numpy().astype("datetime64[D]") - EPOCH).astype(np.int32) - back)


def age_at(fracture_day: np.ndarray, dob: np.ndarray) -> np.ndarray:
    fracture = pd.to_datetime(fracture_day.astype("datetime64[D]"))
    birth = pd.to_datetime(dob.astype("datetime64[D]"))
    before = (fracture.month.to_numpy() < birth.month.to_numpy()) | (
        (fracture.month.to_numpy() == birth.month.to_numpy())
        & (fracture.day.to_numpy() < birth.day.to_numpy()))
    return fracture.year.to_numpy() - birth.year.to_numpy() - before


def nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct valid NHS numbers starting with 9 (a range not issued to patients), as int64."""
    weights = np.arange(10, 1, -1)
    body = rng.choice(10**8, size=int(n * 1.12) + 64, replace=False)
    digits = np.stack([np.full_like(body, 9)] + [(body // 10**k) % 10 for k in range(7, -1, -1)],
                      axis=1)
    check = 11 - (digits * weights).sum(axis=1) % 11
    check[check == 11] = 0
    ok = check != 10
    nums = (9 * 10**8 + body[ok]) * 10 + check[ok]
    if len(nums) < n:
        raise RuntimeError("not enough NHS numbers drawn")
    return nums[:n]


def place_patients(rng, records: Records, geo: Geography) -> None:
    """Home LSOA in the drawn LA, and a postcode: known, well formed but unknown, or blank."""
    n_records = len(records)
    la = records["la"]
    lsoa = geo.la_start[la] + np.floor(rng.random(n_records) * geo.la_count[la]).astype(np.int64)
    records["lsoa"] = lsoa
    postcode_kind = draw_category(rng, n_records, [0.98, 0.01, 0.01])
    records["pc"] = np.where(
        postcode_kind == 0, 3 * lsoa + rng.integers(0, 3, n_records),
        np.where(postcode_kind == 1, -(10 * la + rng.integers(0, 10, n_records)) - 1, -10**9))
    records["pc_style"] = draw_category(rng, n_records, [0.85, 0.07, 0.05, 0.03])


def assign_identities(rng, records: Records) -> None:
    """NHS number (and how it is written), date of birth and gender."""
    n_records = len(records)
    records["nhs"] = nhs_numbers(rng, n_records)
    records["nhs_style"] = draw_category(rng, n_records, [0.85, 0.10, 0.05])
    records["dob"] = dob_for_age(records["fracture_day"], records["age"].astype(np.int64),
                                 rng.integers(0, 365, n_records))
    records["gender"] = np.where(records["female"] == 1, 1, 0).astype(np.int8)
    odd = rng.random(n_records)
    records["gender"][odd < 0.0015] = 3
    records["gender"][odd < 0.0005] = 2


def link_repeat_episodes(rng, records: Records, is_defect: np.ndarray, n_fls: int) -> None:
    """Patients with more than one episode: a few records take the identity of another record
    of the same FLS with a fracture at least 30 days apart."""
    fls = records["fls"].astype(np.int64)
    fracture_day = records["fracture_day"]
    cand = np.flatnonzero(~is_defect)
    cand = cand[np.argsort(fls[cand], kind="stable")]
    c_start = np.searchsorted(fls[cand], np.arange(n_fls))
    c_len = np.searchsorted(fls[cand], np.arange(n_fls), side="right") - c_start
    multi = cand[rng.random(len(cand)) < 0.015]
    partner = cand[c_start[fls[multi]] + np.floor(rng.random(len(multi))
                                                  * c_len[fls[multi]]).astype(np.int64)]
    ok = ((partner != multi)
          & (np.abs(fracture_day[partner].astype(np.int64) - fracture_day[multi]) >= 30))
    ok &= ~np.isin(partner, multi) & ~np.isin(multi, partner)
    _, first = np.unique(partner, return_index=True)
    keep = np.zeros(len(multi), bool)
    keep[first] = True
    ok &= keep
    multi, partner = multi[ok], partner[ok]
    new_age = age_at(fracture_day[multi], records["dob"][partner])
    ok = (new_age >= 50) & (new_age <= 105)
    multi, partner, new_age = multi[ok], partner[ok], new_age[ok]
    for key in ("nhs", "dob", "female", "gender", "lsoa", "pc", "la"):
        records[key][multi] = records[key][partner]
    records["age"][multi] = new_age


def copy_duplicate_episodes(records: Records, dup_partner: dict[int, int]) -> None:
    """Duplicate episodes: copy everything from the partner except the row's own Record ID."""
    for j, i in dup_partner.items():
        for key, arr in records.c.items():
            if key in ("rid", "row"):
                continue
            arr[j] = arr[i]


def assign_record_ids(rng, records: Records, n_fls: int) -> None:
    """Record IDs: per service, numbered in fracture-date order from a random start."""
    n_records = len(records)
    fls = records["fls"].astype(np.int64)
    order_all = np.lexsort((np.arange(n_records), records["fracture_day"], fls))
    start = rng.integers(100, 5000, n_fls)
    pos_in = np.empty(n_records, dtype=np.int64)
    counts = np.bincount(fls, minlength=n_fls)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos_in[order_all] = np.arange(n_records) - np.repeat(offsets, counts)
    records["rid_num"] = start[fls] + pos_in
