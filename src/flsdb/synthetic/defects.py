"""The realistic mess of the SYNTHETIC submissions: which rows get a defect, and the defect
itself. Every injected defect is listed in the manifest so that tests can find it again."""

from __future__ import annotations

import datetime as dt

import numpy as np

from flsdb import contract
from flsdb.synthetic.common import CODED_COLUMNS, COLUMNS, DEFECT_RATES, day_number


def plan_defects(rng, fls: np.ndarray, fracture_day: np.ndarray, extract_day: int,
                 re_export: set[int], clean: bool) -> tuple[dict[int, tuple[str, str]],
                                                            dict[int, int]]:
    """Rows that get a defect (never in services with an earlier export).

    Returns (defects: row -> (class, ""), dup_partner: duplicate row -> the row it copies)."""
    n_records = len(fls)
    defects: dict[int, tuple[str, str]] = {}
    dup_partner: dict[int, int] = {}
    eligible = np.flatnonzero(~np.isin(fls, list(re_export)))
    if clean:
        return defects, dup_partner
    counts = {k: max(1, round(v * n_records)) for k, v in DEFECT_RATES.items()}
    pool = rng.permutation(eligible)
    # duplicate episodes first: j becomes a copy of i (same FLS), under its own Record ID
    by_fls: dict[int, list[int]] = {}
    for idx in pool[: min(len(pool), 20 * counts["duplicate_episode"] + 200)]:
        by_fls.setdefault(int(fls[idx]), []).append(int(idx))
    used: set[int] = set()
    made = 0
    for service in sorted(by_fls):
        rows = by_fls[service]
        while len(rows) >= 2 and made < counts["duplicate_episode"]:
            j, i = rows.pop(), rows.pop()
            dup_partner[j] = i
            defects[j] = ("duplicate_episode", "")
            used.update({i, j})
            made += 1
        if made >= counts["duplicate_episode"]:
            break
    rest = pool[~np.isin(pool, np.array(sorted(used), dtype=np.int64))]
    # a follow-up too late needs a fracture old enough for the date to be in the past
    old_enough = fracture_day[rest] <= extract_day - 800
    wanted = counts["follow_up_too_late"]
    take = np.concatenate([rest[old_enough][:wanted], rest[~old_enough]])[:wanted]
    for idx in take:
        defects[int(idx)] = ("follow_up_too_late", "")
    rest = rest[~np.isin(rest, take)]
    pos = 0
    for cls, wanted in counts.items():
        if cls in ("duplicate_episode", "follow_up_too_late"):
            continue
        for idx in rest[pos:pos + wanted]:
            defects[int(idx)] = (cls, "")
        pos += wanted
    return defects, dup_partner


def mess_case(cols, case_selector, rng) -> None:
    """Mixed case and padding in a few coded answers (valid after trimming, case-insensitive)."""
    hit = np.flatnonzero(case_selector[:, 0] < 0.01)
    for pos in hit:
        col = CODED_COLUMNS[int(case_selector[pos, 1] * len(CODED_COLUMNS))]
        value = cols[col][pos]
        if not value:
            continue
        k = int(case_selector[pos, 2] * 4)
        cols[col][pos] = (value.upper(), value.lower(), f" {value} ", f"{value}  ")[k]


def apply_defect(cls, cols, pos, row, records, spec, ds, extract_day, rng):
    """Inject defect `cls` into row `pos` of a file. Returns (column_name, n_fields or None)."""
    uk = spec["uk_dates"]
    fracture_day = int(records["fracture_day"][row])

    def d(day):
        return ds.fmt(np.array([day]), uk)[0]

    def pick(options):
        return options[int(rng.integers(len(options)))]

    if cls == "wrong_column_count":
        return "", pick([len(COLUMNS) - int(rng.integers(3, 12)), len(COLUMNS) + 1])
    if cls == "missing_required_value":
        col = pick(["1.01 NHS Number", "1.02 Date of Birth", "1.09 Date Index Frac Diagnosed",
                    "1.11 SiteFirstFrac", "Last Updated"])
        cols[col][pos] = ""
        return col, None
    if cls == "invalid_date":
        col = pick(["1.09 Date Index Frac Diagnosed", "1.02 Date of Birth"])
        y = int(np.datetime64(fracture_day, "D").astype(object).year)
        cols[col][pos] = pick([f"31/02/{y}", f"{y}-02-30", f"31/04/{y}", f"{y}-13-01",
                               f"32/01/{y}", "unknown"])
        return col, None
    if cls == "invalid_nhs_number":
        digits = str(int(records["nhs"][row]))
        bad = digits[:9] + str((int(digits[9]) + int(rng.integers(1, 10))) % 10)
        while contract.nhs_number_is_valid(bad):
            bad = digits[:9] + str((int(bad[9]) + 1) % 10)
        cols["1.01 NHS Number"][pos] = bad
        return "1.01 NHS Number", None
    if cls == "unknown_fls_code":
        cols["FLS Code"][pos] = pick(["SYN9" + f"{int(rng.integers(100)):02d}", "XYZ123"])
        return "FLS Code", None
    if cls == "fracture_after_extract":
        cols["1.09 Date Index Frac Diagnosed"][pos] = d(extract_day + int(rng.integers(5, 150)))
        return "1.09 Date Index Frac Diagnosed", None
    if cls == "fracture_before_2016":
        cols["1.09 Date Index Frac Diagnosed"][pos] = d(day_number(dt.date(2015, 1, 1))
                                                       + int(rng.integers(0, 365)))
        return "1.09 Date Index Frac Diagnosed", None
    if cls == "birth_after_fracture":
        cols["1.02 Date of Birth"][pos] = d(fracture_day + int(rng.integers(10, 5000)))
        return "1.02 Date of Birth", None
    if cls == "age_over_110":
        cols["1.02 Date of Birth"][pos] = d(fracture_day - int((111.5 + rng.random() * 6) * 365.25))
        return "1.02 Date of Birth", None
    if cls == "invalid_fracture_site":
        cols["1.11 SiteFirstFrac"][pos] = pick(["Skull", "Finger", "Toe", "Face", "Hipp",
                                                "Vertebra"])
        return "1.11 SiteFirstFrac", None
    if cls == "under_50":
        cols["1.02 Date of Birth"][pos] = d(fracture_day - int((35 + rng.random() * 14.5) * 365.25))
        return "1.02 Date of Birth", None
    if cls == "duplicate_episode":
        return "", None
    if cls == "invalid_code":
        col, val = pick([("1.05 CareRes", "Maybe"), ("1.08 AdmitHosp", "Y"),
                         ("2.03 PrevFracHist", "Unknown"), ("2.05 Smoker", "Ex-smoker"),
                         ("3.01 DXA", "Booked"), ("5.10 Referrals", "Falls clinic, physio"),
                         ("6.06 StartStrenBalExe", "Started"), ("1.10 TypeOfFracture", "Traumatic"),
                         ("2.06 BoneSpareTherapy", "Yes - \"AA\" weekly")])
        cols[col][pos] = val
        return col, None
    if cls == "number_out_of_range":
        col, val = pick([("2.01 Height", "1.62"), ("2.02 Weight", "0"), ("2.02 Weight", "sixty"),
                         ("3.04 TScore", "-7.5"), ("3.05 RiskOfFracture", "150"),
                         ("7.06 NumReFracSinceIndex", "25"), ("2.01 Height", "5'4")])
        cols[col][pos] = val
        return col, None
    if cls == "invalid_postcode":
        cols["1.04 Post Code"][pos] = pick(["YA1 3B", "1YA 3BD", "NO FIXED ABODE", "YA1 ?BD",
                                            "12345"])
        return "1.04 Post Code", None
    if cls == "date_before_fracture":
        col = pick(["1.07 DateFLSAssess", "3.03 DateofDXA", "6.02 Dateof16WeekAss",
                    "7.02 Dateof52WeekAss"])
        cols[col][pos] = d(fracture_day - int(rng.integers(1, 90)))
        return col, None
    if cls == "follow_up_too_late":
        col = pick(["6.02 Dateof16WeekAss", "7.02 Dateof52WeekAss"])
        cols[col][pos] = d(fracture_day + int(rng.integers(735, 790)))
        return col, None
    if cls == "death_before_fracture":
        cols["Date of Death"][pos] = d(fracture_day - int(rng.integers(1, 400)))
        return "Date of Death", None
    raise ValueError(cls)
