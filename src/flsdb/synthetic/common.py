"""Shared constants and small helpers of the SYNTHETIC generator (no clinical logic here)."""

from __future__ import annotations

import datetime as dt

import numpy as np

from flsdb import contract
from flsdb.synthetic.registry_build import COHORT_LOSS

COLUMNS = list(contract.COLUMNS)
REF_DIR_NAME = "_reference"
LOOKUP_NAME = "synthetic_nspl_postcode_lookup.csv"
MANIFEST_NAME = "injected_defects.csv"
SHIFTS_NAME = "injected_shifts.csv"

# Defect classes (manifest codes) and their default rates (share of all records). Rejects and
# exclusions sum to registry_build.COHORT_LOSS, which the registry calibration allows for.
REJECT_RATES = {
    "wrong_column_count": 0.0005,
    "missing_required_value": 0.0005,
    "invalid_date": 0.0005,
    "invalid_nhs_number": 0.0005,
    "unknown_fls_code": 0.0004,
    "fracture_after_extract": 0.0003,
    "fracture_before_2016": 0.0003,
    "birth_after_fracture": 0.0003,
    "age_over_110": 0.0003,
    "invalid_fracture_site": 0.0004,
}
EXCLUSION_RATES = {"under_50": 0.0008, "duplicate_episode": 0.0007}
WARNING_RATES = {
    "invalid_code": 0.0008,
    "number_out_of_range": 0.0008,
    "invalid_postcode": 0.0005,
    "date_before_fracture": 0.0005,
    "follow_up_too_late": 0.0003,
    "death_before_fracture": 0.0003,
}
DEFECT_RATES = {**REJECT_RATES, **EXCLUSION_RATES, **WARNING_RATES}
DEFECT_CLASSES = tuple(DEFECT_RATES) + ("re_export_version",)
assert abs(sum(REJECT_RATES.values()) + sum(EXCLUSION_RATES.values()) - COHORT_LOSS) < 1e-9

SITES = list(contract.SITES)
CODE_LISTS = contract.CODE_LISTS
YES_NO_NK = contract.YES_NO_NK
CODED_COLUMNS = [c for c, k in contract.COLUMNS.items() if k.startswith("code:")]
# Non-spine sites are captured unevenly by FLSs (wrist and humerus clinics refer well, "other"
# fractures are under-identified): multipliers on expected caseload when drawing the site.
SITE_CAPTURE = {"Hip": 1.15, "Wrist": 1.0, "Humerus": 1.32, "Pelvis": 1.75, "Other": 0.67,
                "Spine": 1.0}
# FLSs identify younger patients more completely than the very old (mean age ~72-73).
AGE_CAPTURE_SLOPE = 0.022
# KPI 7 by deprivation quintile, relative to the national value (percentage points). 2024's
# published Q1 and Q5 are met exactly; Q2-Q4 and `unknown` move together to meet the national.
KPI7_SHAPE = {1: -5.0, 2: -0.5, 3: 0.5, 4: 1.0, 5: 1.0, 0: -1.0}
EPOCH = np.datetime64("1970-01-01", "D")
DAY0 = int(np.datetime64("1880-01-01", "D").astype(int))
DAY1 = int(np.datetime64("2040-12-31", "D").astype(int))
MISSING = -10**7  # "not recorded" day number


def day_number(d: dt.date) -> int:
    """Days since 1970-01-01."""
    return int((np.datetime64(d, "D") - EPOCH).astype(int))


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def draw_category(rng: np.random.Generator, n: int, probs: dict | list) -> np.ndarray:
    """n category indices drawn with the given (unnormalised) probabilities."""
    p = np.asarray(list(probs.values()) if isinstance(probs, dict) else probs, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


def largest_remainder(x: np.ndarray, total: int) -> np.ndarray:
    """Integers summing to `total`, each the floor or ceiling of x."""
    floor = np.floor(x).astype(np.int64)
    rest = total - floor.sum()
    if rest > 0:
        floor[np.argsort(-(x - floor), kind="stable")[:rest]] += 1
    elif rest < 0:
        floor[np.argsort(x - floor, kind="stable")[: -rest]] -= 1
    return floor


def compact(a: np.ndarray) -> np.ndarray:
    """Smaller dtypes for the latent arrays (memory): int64 -> int32, float64 -> float32."""
    if a.dtype == np.int64 and (a.size == 0 or (a.min() >= -2**31 and a.max() < 2**31)):
        return a.astype(np.int32)
    if a.dtype == np.float64:
        return a.astype(np.float32)
    return a


class DateStrings:
    """Vectorised day -> string formatting through a precomputed table."""

    def __init__(self) -> None:
        days = np.arange(DAY0, DAY1 + 1).astype("datetime64[D]")
        iso = np.datetime_as_string(days, unit="D")
        self.iso = np.concatenate([iso.astype(object), np.array([""], dtype=object)])
        uk = np.array([f"{x[8:10]}/{x[5:7]}/{x[0:4]}" for x in iso], dtype=object)
        self.uk = np.concatenate([uk, np.array([""], dtype=object)])

    def fmt(self, days: np.ndarray, uk: bool = False) -> np.ndarray:
        """days: int array, MISSING (or anything out of range) -> ''. Returns object array."""
        table = self.uk if uk else self.iso
        idx = np.where((days >= DAY0) & (days <= DAY1), days - DAY0, len(table) - 1)
        return table[idx]


class Records:
    """Latent per-record state (one entry per generated episode) as a dict of numpy arrays."""

    def __init__(self, cols: dict[str, np.ndarray]):
        self.c = cols

    def __getitem__(self, k):
        return self.c[k]

    def __setitem__(self, k, v):
        self.c[k] = v

    def __len__(self):
        return len(self.c["fls"])
