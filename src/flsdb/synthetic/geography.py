"""Reference data the SYNTHETIC generator draws from: the synthetic registry and real geography
(LSOAs, deprivation) with invented postcodes in the unused `Y?`/`Z?` postcode areas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flsdb import paths

# Postcode areas that do not exist in the UK (so no invented postcode is ever a real one).
POSTCODE_AREAS = ["YA", "YB", "YD", "YE", "YF", "YG", "YH", "YK", "YL", "YM", "YN", "YP", "YR",
                  "YS", "YT", "YU", "YW", "YX", "YY", "ZA", "ZB", "ZD", "ZF", "ZG", "ZH", "ZL"]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass
class Geography:
    la_codes: np.ndarray        # catchment LAs, sorted
    la_start: np.ndarray        # first LSOA index of each LA
    la_count: np.ndarray        # LSOAs in each LA
    lsoa_codes: np.ndarray      # all catchment LSOAs, grouped by LA
    lsoa_quintile: np.ndarray   # deprivation quintile (1..5) of each LSOA, 0 if unknown
    lsoa_rank: np.ndarray       # IMD / WIMD rank (for the NSPL `imd` column)
    postcodes: np.ndarray       # 3 postcodes per LSOA: index 3 * lsoa + k
    unknown_postcodes: np.ndarray  # 10 per LA, well-formed, not in the lookup: 10 * la + k


def invented_postcode(block: int, unit: int) -> str:
    area = POSTCODE_AREAS[(block // 40) % len(POSTCODE_AREAS)]
    district = 1 + block % 40
    sector = unit // 80
    idx = (unit % 80) * 5 + block % 5
    return f"{area}{district} {sector}{INWARD_LETTERS[idx // 20]}{INWARD_LETTERS[idx % 20]}"


def load_geography(catchments: pd.DataFrame) -> Geography:
    ref = paths.reference_dir()
    lookup = pd.read_csv(ref / "lookup_lsoa11_ltla21.csv.gz",
                         usecols=["lsoa11_code", "ltla21_code"])
    la_codes = np.array(sorted(catchments["ltla21_code"].unique()), dtype=object)
    lookup = lookup[lookup["ltla21_code"].isin(set(la_codes))].sort_values(
        ["ltla21_code", "lsoa11_code"])
    imd = pd.read_csv(ref / "imd2019_england_lsoa11.csv.gz", encoding="utf-8-sig",
                      usecols=[0, 4, 5], thousands=",")
    imd.columns = ["lsoa11_code", "rank", "decile"]
    wimd = pd.read_csv(ref / "wimd2019_wales_lsoa11.csv.gz")
    wimd = wimd[["lsoa11_code", "IMD_rank", "IMD_decile"]].set_axis(
        ["lsoa11_code", "rank", "decile"], axis=1)
    deprivation = pd.concat([imd, wimd], ignore_index=True)
    lookup = lookup.merge(deprivation, on="lsoa11_code", how="left")
    counts = lookup.groupby("ltla21_code", sort=True).size().reindex(la_codes).to_numpy()
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n_lsoa = len(lookup)
    postcodes = np.array([invented_postcode(k // 800, k % 800) for k in range(3 * n_lsoa)],
                         dtype=object)
    base = (3 * n_lsoa) // 800 + 1
    unknown = np.array([invented_postcode(base + k // 800, k % 800)
                        for k in range(10 * len(la_codes))], dtype=object)
    decile = lookup["decile"].fillna(0).astype(int).to_numpy()
    return Geography(
        la_codes=la_codes, la_start=start, la_count=counts,
        lsoa_codes=lookup["lsoa11_code"].to_numpy(dtype=object),
        lsoa_quintile=np.where(decile > 0, (decile + 1) // 2, 0).astype(np.int8),
        lsoa_rank=lookup["rank"].fillna(0).astype(int).to_numpy(),
        postcodes=postcodes, unknown_postcodes=unknown,
    )


def load_registry(seeds_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = seeds_dir or paths.seeds_dir()
    registry = pd.read_csv(folder / "fls_registry.csv", dtype={"last_audit_year": "Int64"})
    catchments = pd.read_csv(folder / "fls_catchments.csv")
    return registry.sort_values("fls_code").reset_index(drop=True), catchments


def active_fls(registry: pd.DataFrame, year: int) -> np.ndarray:
    """Row positions of the services registered for audit year `year`."""
    last = registry["last_audit_year"].fillna(9999).astype(int)
    return np.flatnonzero((registry["first_audit_year"] <= year) & (last >= year))
