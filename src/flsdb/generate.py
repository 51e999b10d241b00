"""`flsdb generate`: SYNTHETIC FLS-DB submissions in the raw contract of dataset.md.

Everything written here is invented. Nothing describes a real patient or a real NHS
organisation: the services come from the synthetic registry (seeds/fls_registry.csv), patients
are drawn from real population structure (ONS mid-2020, real LSOAs and deprivation deciles) but
are not people, NHS numbers start with 9 (a range not issued to patients), and postcodes use outward codes in the
unused `Y?`/`Z?` postcode areas, with a matching SYNTHETIC postcode -> LSOA lookup written to
`<out>/_reference/`.

What it writes into the landing folder `out_dir`:

- one CSV per FLS per export (`SYNnnn_<name>_<as-at date>.csv`), with the 48 contract columns;
  a few services also have an earlier export (as at about 5 months before the extract date) that
  the later export repeats with updates;
- `_reference/synthetic_nspl_postcode_lookup.csv`: postcode -> LSOA 2011 in the ONS NSPL layout;
- `_reference/injected_defects.csv`: every defect deliberately injected (file, line, class, column);
- `_reference/README.txt`: says all of this is synthetic.

Calibration (see flsdb.registry_build): each year's records are the published national volume
times `scale`, split among the services active that year in proportion to identification rate x
expected caseload, so that national KPI 2 / KPI 3 land on the published values, and KPI 7 (bone
therapy recommended) lands on its published national and deprivation-quintile values. Other KPIs
follow plausible per-service performance profiles (random effects).

Determinism: one numpy Generator seeded by `seed`, consumed in a fixed order; the same seed and
arguments give byte-identical files.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from flsdb import contract, paths
from flsdb.registry_build import COHORT_LOSS, PUBLISHED, expected_cells

COLUMNS = list(contract.COLUMNS)
REF_DIR_NAME = "_reference"
LOOKUP_NAME = "synthetic_nspl_postcode_lookup.csv"
MANIFEST_NAME = "injected_defects.csv"

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
DRUGS = list(contract.DRUGS)
CL = contract.CODE_LISTS
# Non-spine sites are captured unevenly by FLSs (wrist and humerus clinics refer well, "other"
# fractures are under-identified): multipliers on expected caseload when drawing the site.
SITE_CAPTURE = {"Hip": 1.15, "Wrist": 1.0, "Humerus": 1.32, "Pelvis": 1.75, "Other": 0.67,
                "Spine": 1.0}
# KPI 7 by deprivation quintile, relative to the national value (percentage points). 2024's
# published Q1 and Q5 are met exactly; Q2-Q4 and `unknown` move together to meet the national.
AGE_CAPTURE_SLOPE = 0.022
KPI7_SHAPE = {1: -5.0, 2: -0.5, 3: 0.5, 4: 1.0, 5: 1.0, 0: -1.0}
# Postcode areas that do not exist in the UK (so no invented postcode is ever a real one).
POSTCODE_AREAS = ["YA", "YB", "YD", "YE", "YF", "YG", "YH", "YK", "YL", "YM", "YN", "YP", "YR",
                  "YS", "YT", "YU", "YW", "YX", "YY", "ZA", "ZB", "ZD", "ZF", "ZG", "ZH", "ZL"]
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
NSPL_COLUMNS = [
    "pcd", "pcd2", "pcds", "dointr", "doterm", "usertype", "oseast1m", "osnrth1m", "osgrdind",
    "oa11", "cty", "ced", "laua", "ward", "hlthau", "nhser", "ctry", "rgn", "pcon", "eer",
    "teclec", "ttwa", "pct", "itl", "park", "lsoa11", "msoa11", "wz11", "ccg", "bua11",
    "buasd11", "ru11ind", "oac11", "lat", "long", "lep1", "lep2", "pfa", "imd", "calncv", "stp",
]
EPOCH = np.datetime64("1970-01-01", "D")
DAY0 = int(np.datetime64("1880-01-01", "D").astype(int))
DAY1 = int(np.datetime64("2040-12-31", "D").astype(int))
MISSING = -10**7  # "not recorded" day number


def _day(d: dt.date) -> int:
    return int((np.datetime64(d, "D") - EPOCH).astype(int))


# --------------------------------------------------------------------------------------------
# Reference data and geography
# --------------------------------------------------------------------------------------------

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


def _postcode(block: int, unit: int) -> str:
    area = POSTCODE_AREAS[(block // 40) % len(POSTCODE_AREAS)]
    district = 1 + block % 40
    sector = unit // 80
    idx = (unit % 80) * 5 + block % 5
    return f"{area}{district} {sector}{INWARD_LETTERS[idx // 20]}{INWARD_LETTERS[idx % 20]}"


def load_geography(catchments: pd.DataFrame) -> Geography:
    ref = paths.reference_dir()
    lk = pd.read_csv(ref / "lookup_lsoa11_ltla21.csv.gz", usecols=["lsoa11_code", "ltla21_code"])
    la_codes = np.array(sorted(catchments["ltla21_code"].unique()), dtype=object)
    lk = lk[lk["ltla21_code"].isin(set(la_codes))].sort_values(["ltla21_code", "lsoa11_code"])
    imd = pd.read_csv(ref / "imd2019_england_lsoa11.csv.gz", encoding="utf-8-sig",
                      usecols=[0, 4, 5], thousands=",")
    imd.columns = ["lsoa11_code", "rank", "decile"]
    wimd = pd.read_csv(ref / "wimd2019_wales_lsoa11.csv.gz")
    wimd = wimd[["lsoa11_code", "IMD_rank", "IMD_decile"]].set_axis(
        ["lsoa11_code", "rank", "decile"], axis=1)
    dep = pd.concat([imd, wimd], ignore_index=True)
    lk = lk.merge(dep, on="lsoa11_code", how="left")
    counts = lk.groupby("ltla21_code", sort=True).size().reindex(la_codes).to_numpy()
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    n = len(lk)
    postcodes = np.array([_postcode(k // 800, k % 800) for k in range(3 * n)], dtype=object)
    base = (3 * n) // 800 + 1
    unknown = np.array([_postcode(base + k // 800, k % 800) for k in range(10 * len(la_codes))],
                       dtype=object)
    decile = lk["decile"].fillna(0).astype(int).to_numpy()
    return Geography(
        la_codes=la_codes, la_start=start, la_count=counts,
        lsoa_codes=lk["lsoa11_code"].to_numpy(dtype=object),
        lsoa_quintile=np.where(decile > 0, (decile + 1) // 2, 0).astype(np.int8),
        lsoa_rank=lk["rank"].fillna(0).astype(int).to_numpy(),
        postcodes=postcodes, unknown_postcodes=unknown,
    )


def load_registry(seeds_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    sd = seeds_dir or paths.seeds_dir()
    reg = pd.read_csv(sd / "fls_registry.csv", dtype={"last_audit_year": "Int64"})
    cat = pd.read_csv(sd / "fls_catchments.csv")
    return reg.sort_values("fls_code").reset_index(drop=True), cat


def active_fls(reg: pd.DataFrame, year: int) -> np.ndarray:
    last = reg["last_audit_year"].fillna(9999).astype(int)
    return np.flatnonzero((reg["first_audit_year"] <= year) & (last >= year))


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

def _logit(p):
    return np.log(p / (1 - p))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _cat(rng: np.random.Generator, n: int, probs: dict | list, labels=None) -> np.ndarray:
    p = np.asarray(list(probs.values()) if isinstance(probs, dict) else probs, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum()).astype(np.int8)


def _largest_remainder(x: np.ndarray, total: int) -> np.ndarray:
    fl = np.floor(x).astype(np.int64)
    rest = total - fl.sum()
    if rest > 0:
        fl[np.argsort(-(x - fl), kind="stable")[:rest]] += 1
    elif rest < 0:
        fl[np.argsort(x - fl, kind="stable")[: -rest]] -= 1
    return fl


def _nhs_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
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


def _compact(a: np.ndarray) -> np.ndarray:
    """Smaller dtypes for the latent arrays (memory): int64 -> int32, float64 -> float32."""
    if a.dtype == np.int64 and (a.size == 0 or (a.min() >= -2**31 and a.max() < 2**31)):
        return a.astype(np.int32)
    if a.dtype == np.float64:
        return a.astype(np.float32)
    return a


def _fmt_nhs(nums: np.ndarray, style: np.ndarray) -> np.ndarray:
    s = nums.astype(str).astype(object)
    out = s.copy()
    sp = style == 1
    hy = style == 2
    if sp.any():
        out[sp] = [f"{x[:3]} {x[3:6]} {x[6:]}" for x in s[sp]]
    if hy.any():
        out[hy] = [f"{x[:3]}-{x[3:6]}-{x[6:]}" for x in s[hy]]
    return out


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


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------

class _Records:
    """Latent per-record state as a dict of numpy arrays."""

    def __init__(self, cols: dict[str, np.ndarray]):
        self.c = cols

    def __getitem__(self, k):
        return self.c[k]

    def __setitem__(self, k, v):
        self.c[k] = v

    def __len__(self):
        return len(self.c["fls"])


def _sample_records(rng, reg, cat, cells, years, scale) -> _Records:
    """Draw FLS, year, site, sex, age, LA and fracture date of every record."""
    n_fls = len(reg)
    fls_index = {c: i for i, c in enumerate(reg["fls_code"])}
    # Per-service identification random effects, persistent across years.
    z = rng.normal(size=(n_fls, 2))
    z[:, 1] = 0.6 * z[:, 0] + 0.8 * z[:, 1]
    m = cat.merge(cells, on="ltla21_code")
    m["fls"] = m["fls_code"].map(fls_index)
    m["w"] = m["population_share"] * m["expected"]
    m["site_idx"] = m["fracture_site"].map({s: i for i, s in enumerate(SITES)})
    m["spine"] = m["fracture_site"] == "Spine"
    # FLSs identify younger patients more completely than the very old (mean age ~72-73).
    m["w_draw"] = (m["w"] * m["fracture_site"].map(SITE_CAPTURE)
                   * np.exp(-AGE_CAPTURE_SLOPE * (m["age"] - 50)))
    la_pos = {c: i for i, c in enumerate(sorted(cat["ltla21_code"].unique()))}
    m["la"] = m["ltla21_code"].map(la_pos)
    m["sexi"] = (m["sex"] == "female").astype(np.int8)
    m = m.sort_values(["fls", "spine", "ltla21_code", "sex", "age", "site_idx"]).reset_index(
        drop=True)
    groups = {key: g for key, g in m.groupby(["fls", "spine"], sort=True)}
    exp_ns = m[~m["spine"]].groupby("fls")["w"].sum().reindex(range(n_fls), fill_value=0.0)
    exp_s = m[m["spine"]].groupby("fls")["w"].sum().reindex(range(n_fls), fill_value=0.0)

    parts = []
    for year in years:
        pub = PUBLISHED.get(year, PUBLISHED[max(PUBLISHED)])
        act = active_fls(reg, year)
        volume = int(round(pub["records"] * scale))
        eff_ns = np.exp(0.3 * z[act, 0] + 0.05 * rng.normal(size=len(act)))
        eff_s = np.exp(0.35 * z[act, 1] + 0.05 * rng.normal(size=len(act)))
        ns, sp = exp_ns.to_numpy()[act], exp_s.to_numpy()[act]
        id_ns = pub["kpi2"] / 100 * eff_ns * ns.sum() / (eff_ns * ns).sum()
        id_s = pub["kpi3"] / 100 * eff_s * sp.sum() / (eff_s * sp).sum()
        want = np.concatenate([id_ns * ns, id_s * sp])
        counts = _largest_remainder(want * volume / want.sum(), volume)
        for j, f in enumerate(act):
            for spine, n in ((False, counts[j]), (True, counts[len(act) + j])):
                if n <= 0:
                    continue
                g = groups[(int(f), spine)]
                p = g["w_draw"].to_numpy()
                pick = rng.choice(len(g), size=int(n), p=p / p.sum())
                parts.append(pd.DataFrame({
                    "fls": np.full(n, f, dtype=np.int16), "year": np.full(n, year, np.int16),
                    "site": g["site_idx"].to_numpy()[pick].astype(np.int8),
                    "female": g["sexi"].to_numpy()[pick],
                    "age": g["age"].to_numpy()[pick].astype(np.int16),
                    "la": g["la"].to_numpy()[pick].astype(np.int32),
                }))
    df = pd.concat(parts, ignore_index=True)
    n = len(df)
    ages = df["age"].to_numpy().copy()
    old = ages >= 90
    ages[old] = 90 + np.minimum(rng.geometric(0.22, size=int(old.sum())) - 1, 15)
    df["age"] = ages
    # Fracture date: uniform over the year with a mild winter excess.
    f = np.empty(n, dtype=np.int32)
    for year in years:
        sel = np.flatnonzero(df["year"].to_numpy() == year)
        d0 = _day(dt.date(year, 1, 1))
        nd = _day(dt.date(year + 1, 1, 1)) - d0
        w = 1 + 0.15 * np.cos(2 * np.pi * np.arange(nd) / nd)
        f[sel] = d0 + rng.choice(nd, size=len(sel), p=w / w.sum())
    df["F"] = f
    return _Records({k: df[k].to_numpy().copy() for k in df.columns})


def _dob_for_age(F: np.ndarray, age: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Date of birth (day number) such that the age at F is `age`; `back` in 0..364."""
    d = pd.to_datetime(F.astype("datetime64[D]"))
    y, mth, day = d.year.to_numpy() - age, d.month.to_numpy(), d.day.to_numpy()
    day = np.where((mth == 2) & (day == 29), 28, day)
    anniv = pd.to_datetime(pd.DataFrame({"year": y, "month": mth, "day": day}))
    return ((anniv.to_numpy().astype("datetime64[D]") - EPOCH).astype(np.int32) - back)


def _age_at(F: np.ndarray, dob: np.ndarray) -> np.ndarray:
    f = pd.to_datetime(F.astype("datetime64[D]"))
    b = pd.to_datetime(dob.astype("datetime64[D]"))
    before = (f.month.to_numpy() < b.month.to_numpy()) | (
        (f.month.to_numpy() == b.month.to_numpy()) & (f.day.to_numpy() < b.day.to_numpy()))
    return f.year.to_numpy() - b.year.to_numpy() - before


def generate(years=(2023, 2024), scale: float = 1.0, out_dir: Path | str | None = None,
             seed: int = 20240101, clean: bool = False, seeds_dir: Path | None = None) -> str:
    """Write synthetic submissions, the synthetic postcode lookup and the defect manifest."""
    years = sorted({int(y) for y in years})
    out = Path(out_dir) if out_dir is not None else paths.landing_dir()
    rng = np.random.default_rng(seed)
    extract = dt.date(max(years) + 1, 6, 30)
    E = _day(extract)
    A1 = E - 150  # as-at date of the earlier exports

    reg, cat = load_registry(seeds_dir)
    cells = expected_cells(seeds_dir)
    geo = load_geography(cat)
    n_fls = len(reg)
    welsh_fls = (reg["country_code"] == "W92000004").to_numpy()

    r = _sample_records(rng, reg, cat, cells, years, scale)
    N = len(r)
    fls = r["fls"].astype(np.int64)
    F = r["F"]
    wales = welsh_fls[fls]

    # ---- where the patient lives
    la = r["la"]
    lsoa = geo.la_start[la] + np.floor(rng.random(N) * geo.la_count[la]).astype(np.int64)
    r["lsoa"] = lsoa
    pc_kind = _cat(rng, N, [0.98, 0.01, 0.01])  # 0 known, 1 well-formed unknown, 2 blank
    r["pc"] = np.where(pc_kind == 0, 3 * lsoa + rng.integers(0, 3, N),
                       np.where(pc_kind == 1, -(10 * la + rng.integers(0, 10, N)) - 1, -10**9))
    r["pc_style"] = _cat(rng, N, [0.85, 0.07, 0.05, 0.03])

    # ---- identity: NHS number, date of birth, gender
    r["nhs"] = _nhs_numbers(rng, N)
    r["nhs_style"] = _cat(rng, N, [0.85, 0.10, 0.05])
    r["dob"] = _dob_for_age(F, r["age"].astype(np.int64), rng.integers(0, 365, N))
    r["gender"] = np.where(r["female"] == 1, 1, 0).astype(np.int8)
    g_odd = rng.random(N)
    r["gender"][g_odd < 0.0015] = 3
    r["gender"][g_odd < 0.0005] = 2

    # ---- files: which services get an earlier export, and special-format files
    final_year_act = active_fls(reg, max(years))
    order = rng.permutation(final_year_act)
    special = {"cp1252": int(order[0]), "uk_dates": int(order[1]), "bom": int(order[2]),
               "t_stamp": int(order[3])}
    n_re = max(1, int(round(0.12 * len(final_year_act))))
    re_export = set(int(x) for x in order[4:4 + n_re])
    in_early = np.isin(fls, list(re_export)) & (F <= A1 - 7)

    # ---- defect plan (rows, never in services with an earlier export)
    defects: dict[int, tuple[str, str]] = {}
    dup_partner: dict[int, int] = {}
    eligible = np.flatnonzero(~np.isin(fls, list(re_export)))
    if not clean:
        counts = {k: max(1, int(round(v * N))) for k, v in DEFECT_RATES.items()}
        pool = rng.permutation(eligible)
        pos = 0
        # duplicate episodes first: j becomes a copy of i (same FLS), under its own Record ID
        by_fls: dict[int, list[int]] = {}
        for idx in pool[: min(len(pool), 20 * counts["duplicate_episode"] + 200)]:
            by_fls.setdefault(int(fls[idx]), []).append(int(idx))
        used: set[int] = set()
        k = 0
        for f_ in sorted(by_fls):
            lst = by_fls[f_]
            while len(lst) >= 2 and k < counts["duplicate_episode"]:
                j, i = lst.pop(), lst.pop()
                dup_partner[j] = i
                defects[j] = ("duplicate_episode", "")
                used.update({i, j})
                k += 1
            if k >= counts["duplicate_episode"]:
                break
        rest = pool[~np.isin(pool, np.array(sorted(used), dtype=np.int64))]
        late = F[rest] <= E - 800
        cnt = counts["follow_up_too_late"]
        take = np.concatenate([rest[late][:cnt], rest[~late]])[:cnt]
        for idx in take:
            defects[int(idx)] = ("follow_up_too_late", "")
        rest = rest[~np.isin(rest, take)]
        pos = 0
        for cls, cnt in counts.items():
            if cls in ("duplicate_episode", "follow_up_too_late"):
                continue
            for idx in rest[pos:pos + cnt]:
                defects[int(idx)] = (cls, "")
            pos += cnt
    defect_rows = np.array(sorted(defects), dtype=np.int64)
    is_defect = np.zeros(N, bool)
    is_defect[defect_rows] = True
    for i in dup_partner.values():
        is_defect[i] = True  # partners are protected from other changes

    # ---- patients with more than one episode (different fracture dates, same FLS)
    cand = np.flatnonzero(~is_defect)
    cand = cand[np.argsort(fls[cand], kind="stable")]
    c_start = np.searchsorted(fls[cand], np.arange(n_fls))
    c_len = np.searchsorted(fls[cand], np.arange(n_fls), side="right") - c_start
    multi = cand[rng.random(len(cand)) < 0.015]
    partner = cand[c_start[fls[multi]] + np.floor(rng.random(len(multi))
                                                  * c_len[fls[multi]]).astype(np.int64)]
    ok = (partner != multi) & (np.abs(F[partner].astype(np.int64) - F[multi]) >= 30)
    ok &= ~np.isin(partner, multi) & ~np.isin(multi, partner)
    _, first = np.unique(partner, return_index=True)
    keep = np.zeros(len(multi), bool)
    keep[first] = True
    ok &= keep
    multi, partner = multi[ok], partner[ok]
    new_age = _age_at(F[multi], r["dob"][partner])
    ok = (new_age >= 50) & (new_age <= 105)
    multi, partner, new_age = multi[ok], partner[ok], new_age[ok]
    for key in ("nhs", "dob", "female", "gender", "lsoa", "pc", "la"):
        r[key][multi] = r[key][partner]
    r["age"][multi] = new_age
    age = r["age"].astype(np.int64)
    female = r["female"].astype(bool)
    site = r["site"].astype(np.int64)
    s_name = np.array(SITES)[site]
    hip, spine = s_name == "Hip", s_name == "Spine"
    quint_true = geo.lsoa_quintile[r["lsoa"]]
    pc_known = r["pc"] >= 0
    postcode_bad = np.zeros(N, bool)
    for idx, (cls, _) in defects.items():
        if cls == "invalid_postcode":
            postcode_bad[idx] = True
    quint_obs = np.where(pc_known & ~postcode_bad, quint_true, 0)

    # ---- per-service performance profiles (random effects on the logit scale)
    fx = {k: rng.normal(0, sd, n_fls) for k, sd in (
        ("assessed", 0.5), ("delay", 0.35), ("dxa", 0.6), ("falls", 0.6), ("drug", 0.45),
        ("fu16", 0.7), ("fu52", 0.7), ("sb", 0.5), ("complete", 0.6))}
    W = wales.astype(float)

    def eff(name):
        return fx[name][fls]

    # care home, admission, type, further sites
    care_p = _sigmoid(-3.6 + 0.11 * (age - 75) + 0.6 * hip)
    care = np.where(rng.random(N) < care_p, 0, 1).astype(np.int8)
    care = np.where(rng.random(N) < 0.03, 2, care)
    care = np.where(rng.random(N) < _sigmoid(-3.2 + eff("complete")), -1, care).astype(np.int8)
    admit_p = np.select([hip, s_name == "Pelvis", spine, s_name == "Humerus"],
                        [0.97, 0.6, 0.35, 0.2], 0.15)
    admit = np.where(rng.random(N) < admit_p, 0, 1).astype(np.int8)
    admit = np.where(rng.random(N) < 0.02, 2, admit)
    admit = np.where(rng.random(N) < 0.03, -1, admit).astype(np.int8)
    ftype = np.where(spine & (rng.random(N) < 0.3), 1, 0).astype(np.int8)
    ftype = np.where(rng.random(N) < 0.04, -1, ftype).astype(np.int8)
    site2 = np.where(rng.random(N) < 0.05, rng.integers(0, 6, N), -1).astype(np.int8)
    site2 = np.where(site2 == site, (site2 + 2) % 6, site2).astype(np.int8)
    site3 = np.where((site2 >= 0) & (rng.random(N) < 0.1), rng.integers(0, 6, N), -1)
    site3 = np.where((site3 == site) | (site3 == site2), -1, site3).astype(np.int8)

    # death (days after F; a big number when beyond the horizon)
    site_mult = np.select([hip, s_name == "Pelvis", spine, s_name == "Wrist"], [2.6, 1.6, 1.4, 0.35],
                          1.0)
    hazard = 0.022 * np.exp(0.085 * (age - 75)) * site_mult * np.where(care == 0, 2.0, 1.0)
    death_d = np.floor(-np.log(rng.random(N)) / hazard * 365.25).astype(np.int64)
    early = hip & (rng.random(N) < 0.5)
    death_d = np.where(early, np.floor(death_d * 0.6), death_d).astype(np.int64)
    death_d = np.minimum(death_d, 20000)

    # assessment pathway
    assessed = rng.random(N) < _sigmoid(2.3 + 0.4 * W + eff("assessed") - 0.6 * (care == 0))
    med = np.log(50) - 0.3 * W + eff("delay")
    assess_d = np.round(np.exp(med + 0.8 * rng.normal(size=N))).astype(np.int64) + 1
    contact_d = np.floor(assess_d * rng.uniform(0.1, 0.8, N)).astype(np.int64)
    lone_contact = np.round(np.exp(np.log(20) + 0.7 * rng.normal(size=N))).astype(np.int64)
    contact_d = np.where(assessed, contact_d, np.where(rng.random(N) < 0.7, lone_contact, -1))
    assess_d = np.where(assessed & (assess_d < death_d), assess_d, -1)
    assessed = assess_d >= 0
    contact_d = np.where(contact_d < death_d, contact_d, -1)
    contact_d = np.where(assessed & (rng.random(N) < 0.04), -1, contact_d)

    # baseline and risk factors (recorded at assessment)
    height = np.where(female, rng.normal(160, 7, N), rng.normal(174, 7.5, N)).round(0)
    weight = np.where(female, rng.normal(67, 14, N), rng.normal(80, 15, N)).clip(32, 180).round(1)
    has_hw = rng.random(N) < _sigmoid(0.6 + eff("complete"))
    prevfrac = _cat(rng, N, [0.30, 0.55, 0.10, 0.05])
    famhip = _cat(rng, N, [0.10, 0.50, 0.35, 0.05])
    smoker = _cat(rng, N, [0.12, 0.76, 0.07, 0.05])
    bonespare = _cat(rng, N, [0.12, 0.80, 0.05, 0.03])

    # DXA
    p_done = _sigmoid(1.9 - 1.8 * W + eff("dxa") - 0.04 * np.maximum(age - 75, 0) - 1.0 * (care == 0))
    u = rng.random(N)
    p_ord = 0.15
    dxa = np.where(u < p_done * (1 - p_ord) , 0, np.where(u < p_done * (1 - p_ord) + p_ord * 0.8, 1, 2))
    notreq_p = _sigmoid(-0.4 + 0.06 * (age - 75) + 1.2 * (care == 0))
    dxa_no = np.where(rng.random(N) < notreq_p, 0, 1 + _cat(rng, N, [0.35, 0.25, 0.40]))
    dxa_no = np.where(dxa == 2, dxa_no, -1)
    dxa_d = assess_d + np.round(np.exp(np.log(22) + 0.75 * rng.normal(size=N))).astype(np.int64)
    tscore = np.clip(rng.normal(-2.2, 1.0, N), -5.5, 3.5).round(1)
    frax = np.clip(np.exp(np.log(14) + 0.6 * rng.normal(size=N) + 0.03 * (age - 72)), 1, 80).round(1)
    has_frax = rng.random(N) < 0.55

    # falls
    falls_yes = rng.random(N) < _sigmoid(0.35 + 0.3 * W + eff("falls"))
    referrals = _cat(rng, N, [0.14, 0.18, 0.10, 0.58])
    rf = np.stack([_cat(rng, N, p) for p in (
        [0.35, 0.55, 0.10], [0.40, 0.50, 0.10], [0.45, 0.45, 0.10], [0.40, 0.55, 0.05],
        [0.25, 0.70, 0.05], [0.12, 0.83, 0.05], [0.10, 0.70, 0.20], [0.15, 0.80, 0.05])], axis=1)
    calcium = _cat(rng, N, [0.82, 0.12, 0.06])

    # Bone therapy recommended (KPI 7), calibrated by year and deprivation quintile.
    excluded_from_cohort = np.zeros(N, bool)
    for idx, (cls, _) in defects.items():
        if cls in REJECT_RATES or cls in EXCLUSION_RATES:
            excluded_from_cohort[idx] = True
    lin = (eff("drug") - 0.012 * np.abs(age - 74) - 0.5 * (care == 0) + 0.25 * spine
           + 0.3 * female)
    drug_yes = np.zeros(N, bool)
    # 4.01 is recorded at the assessment, so only assessments done by the extract date count.
    assessed_e = assessed & (F.astype(np.int64) + assess_d <= E)
    yr = r["year"]
    for year in years:
        pub = PUBLISHED.get(year, PUBLISHED[max(PUBLISHED)])
        nat = pub["kpi7"] / 100
        q1 = pub.get("kpi7_q1", pub["kpi7"] + KPI7_SHAPE[1]) / 100
        q5 = pub.get("kpi7_q5", pub["kpi7"] + KPI7_SHAPE[5]) / 100
        in_y = (yr == year)
        coh = in_y & ~excluded_from_cohort
        n_q = {q: int((coh & (quint_obs == q)).sum()) for q in range(6)}

        def solve(mask, target):
            # intercept a: mean over mask of assessed * sigmoid(a + lin) = target
            lo, hi = -10.0, 10.0
            ae, li = assessed_e[mask], lin[mask]
            for _ in range(40):
                mid = (lo + hi) / 2
                val = (ae * _sigmoid(mid + li)).mean()
                lo, hi = (mid, hi) if val < target else (lo, mid)
            return (lo + hi) / 2

        def targets(shift):
            t = {1: q1, 5: q5}
            for q in (2, 3, 4, 0):
                t[q] = min(max(nat + KPI7_SHAPE[q] / 100 + shift, 0.01), 0.99)
            return t

        lo, hi = -0.3, 0.3
        for _ in range(50):
            mid = (lo + hi) / 2
            t = targets(mid)
            tot = sum(t[q] * n_q[q] for q in range(6)) / max(sum(n_q.values()), 1)
            lo, hi = (mid, hi) if tot < nat else (lo, mid)
        t = targets((lo + hi) / 2)
        for q in range(6):
            for part in (coh, in_y & excluded_from_cohort):
                mask = part & (quint_obs == q)
                if not mask.any():
                    continue
                a = solve(mask, t[q])
                p = np.clip(assessed_e[mask] * _sigmoid(a + lin[mask]), 1e-9, 1 - 1e-9)
                k = int(round(t[q] * mask.sum()))
                idx = np.flatnonzero(mask)
                keys = np.log(rng.random(len(idx))) / p
                drug_yes[idx[np.argsort(-keys, kind="stable")[:k]]] = True
    drug_which = _cat(rng, N, [0.55, 0.07, 0.02, 0.15, 0.12, 0.03, 0.02, 0.01, 0.01, 0.02])
    no_drug = 10 + _cat(rng, N, [0.25, 0.10, 0.14, 0.36, 0.15])
    bt = np.where(drug_yes, drug_which, no_drug).astype(np.int8)
    bt = np.where(~drug_yes & ~assessed & (rng.random(N) < 0.7), -1, bt).astype(np.int8)

    # 16-week follow-up
    p16 = _sigmoid(-0.45 + 0.6 * W + eff("fu16")) * np.where(assessed, 1.0, 0.5)
    u = rng.random(N)
    fu16 = np.where(u < p16, 0, np.where(u < p16 + (1 - p16) * 0.62, 1,
                                         np.where(u < p16 + (1 - p16) * 0.78, 3, -1)))
    fu16_d = np.clip(np.round(rng.normal(104, 14, N)), 80, 140).astype(np.int64)
    started16 = np.where(drug_yes, rng.random(N) < 0.78, rng.random(N) < 0.05)
    bt16 = np.where(started16, np.where(drug_yes & (rng.random(N) < 0.9), bt,
                                        _cat(rng, N, [0.6, 0.1, 0.02, 0.15, 0.13, 0, 0, 0, 0, 0])),
                    np.where(drug_yes, 10 + _cat(rng, N, [0.36, 0.18, 0.23, 0.09, 0.14]),
                             10 + _cat(rng, N, [0.70, 0.15, 0.03, 0.02, 0.10])))
    sb = np.where(rng.random(N) < _sigmoid(-1.6 + eff("sb")), 0,
                  1 + _cat(rng, N, [0.54, 0.30, 0.16]))
    sb_nofu = np.where(rng.random(N) < 0.5, 3, np.where(rng.random(N) < 0.6, 1, -1))

    # 52-week follow-up
    p52 = np.clip(_sigmoid(-0.6 + 0.4 * W + eff("fu52")) * np.where(fu16 == 0, 1.35, 0.8), 0, 0.95)
    u = rng.random(N)
    fu52 = np.where(u < p52, 0, np.where(u < p52 + (1 - p52) * 0.6, 1,
                                         np.where(u < p52 + (1 - p52) * 0.8, 3, -1)))
    fu52_d = np.clip(np.round(rng.normal(364, 12, N)), 336, 392).astype(np.int64)
    still = np.where(started16 & (fu16 == 0), rng.random(N) < 0.82,
                     np.where(drug_yes, rng.random(N) < 0.42, rng.random(N) < 0.05))
    drug52 = np.where(started16 & (bt16 < 10), bt16,
                      np.where((bt >= 0) & (bt < 10), bt, drug_which))
    bt52 = np.where(still, drug52,
                    10 + np.where(started16, _cat(rng, N, [0.75, 0.05, 0.20]),
                                  _cat(rng, N, [0.10, 0.75, 0.15])))
    bt52 = np.where(bt52 < 0, 0, bt52)
    refrac = np.select([rng.random(N) < 0.88, rng.random(N) < 0.75, rng.random(N) < 0.8],
                       [0, 1, 2], 3)

    lag = np.minimum(rng.geometric(1 / 12, N) - 1, 90)
    tod = rng.integers(7 * 3600, 19 * 3600, N)
    cw = rng.random((N, 4))  # case/padding mess selector

    lat = dict(
        care=care, admit=admit, ftype=ftype, site2=site2, site3=site3, death_d=death_d,
        assessed=assessed, assess_d=assess_d, contact_d=contact_d, height=height, weight=weight,
        has_hw=has_hw, prevfrac=prevfrac, famhip=famhip, smoker=smoker, bonespare=bonespare,
        dxa=dxa, dxa_no=dxa_no, dxa_d=dxa_d, tscore=tscore, frax=frax, has_frax=has_frax,
        falls_yes=falls_yes, referrals=referrals, rf=rf, calcium=calcium, bt=bt, fu16=fu16,
        fu16_d=fu16_d, bt16=bt16, sb=sb, sb_nofu=sb_nofu, fu52=fu52, fu52_d=fu52_d, bt52=bt52,
        refrac=refrac, lag=lag, tod=tod, cw=cw)
    r.c.update({k: _compact(v) for k, v in lat.items()})
    del lat, care, admit, ftype, site2, site3, death_d, assess_d, contact_d, height, weight
    del has_hw, prevfrac, famhip, smoker, bonespare, dxa, dxa_no, dxa_d, tscore, frax, has_frax
    del falls_yes, referrals, rf, calcium, bt, fu16, fu16_d, bt16, sb, sb_nofu, fu52, fu52_d
    del bt52, refrac, lag, tod, cw, lin, care_p, hazard, u, no_drug, drug_which, drug52, still
    del started16, p16, p52, p_done, notreq_p, med, lone_contact, admit_p, site_mult, early

    # duplicate episodes: copy everything from the partner except the row's own Record ID
    for j, i in dup_partner.items():
        for key, arr in r.c.items():
            if key in ("rid", "row"):
                continue
            arr[j] = arr[i]

    # ---- Record IDs: per service, in fracture-date order
    rid_num = np.zeros(N, dtype=np.int64)
    order_all = np.lexsort((np.arange(N), r["F"], fls))
    start = rng.integers(100, 5000, n_fls)
    pos_in = np.empty(N, dtype=np.int64)
    counts_f = np.bincount(fls, minlength=n_fls)
    offs = np.concatenate([[0], np.cumsum(counts_f)[:-1]])
    pos_in[order_all] = np.arange(N) - np.repeat(offs, counts_f)
    rid_num = start[fls] + pos_in
    r["rid_num"] = rid_num

    ds = DateStrings()
    files = _plan_files(reg, r, E, A1, re_export, in_early, special)
    out.mkdir(parents=True, exist_ok=True)
    _clear_previous(out)
    ref = out / REF_DIR_NAME
    ref.mkdir(exist_ok=True)

    # Extract-date anchor: the latest Last Updated overall is on the extract date.
    lu_final = _last_updated(r, np.arange(N), np.full(N, E))
    anchor_pool = np.flatnonzero(~is_defect & (F <= E))
    anchor = int(anchor_pool[np.argmax(lu_final[anchor_pool])])
    anchor_lu = E * 86400 + int(r["tod"][anchor])
    clone_lu = {}
    for j, i in dup_partner.items():
        clone_lu[j] = int(lu_final[i]) - int(rng.integers(1800, 5 * 3600))

    manifest: list[tuple[str, int, str, str]] = []
    defect_payload_rng = np.random.default_rng(seed + 7)
    file_rows_total = 0
    final_lu_by_row: dict[int, int] = {}
    for spec in tqdm(files, desc="flsdb generate", unit="file", leave=False, disable=None):
        idx = spec["rows"]
        asat = spec["asat"]
        lu = _last_updated(r, idx, np.full(len(idx), asat))
        if spec["final"]:
            hit = np.flatnonzero(idx == anchor)
            if len(hit):
                lu[hit[0]] = anchor_lu
            for j, v in clone_lu.items():
                hit = np.flatnonzero(idx == j)
                if len(hit):
                    lu[hit[0]] = v
        cols = _materialise(r, idx, asat, lu, spec, reg, geo, ds)
        extra_len: dict[int, int] = {}
        if spec["final"] and not clean:
            _mess_case(cols, idx, r["cw"][idx], defect_payload_rng)
            for pos in np.flatnonzero(is_defect[idx] & np.isin(idx, defect_rows)):
                row = int(idx[pos])
                cls, _ = defects[row]
                col, n_fields = _apply_defect(cls, cols, pos, row, r, spec, ds, E,
                                              defect_payload_rng)
                if n_fields is not None:
                    extra_len[pos] = n_fields
                manifest.append((spec["name"], pos + 2, cls, col))
        if spec["final"]:
            for pos, row in enumerate(idx):
                final_lu_by_row[int(row)] = int(lu[pos])
        else:
            spec["lu"] = lu
        _write_csv(out / spec["name"], cols, extra_len, spec)
        file_rows_total += len(idx)
    if not clean:
        for spec in files:
            if spec["final"]:
                continue
            for pos, row in enumerate(spec["rows"]):
                if final_lu_by_row.get(int(row), -1) > int(spec["lu"][pos]):
                    manifest.append((spec["name"], pos + 2, "re_export_version", ""))

    lookup_path = _write_lookup(ref, geo, reg, cat)
    _write_manifest(ref / MANIFEST_NAME, manifest)
    _write_readme(ref, seed, years, scale, clean, extract)

    distinct = {y: int((r["year"] == y).sum()) for y in years}
    lines = [
        "SYNTHETIC data written by flsdb generate (not real patients or services)",
        f"  output folder : {out}",
        f"  files         : {len(files)} submission files "
        f"({sum(1 for s in files if not s['final'])} earlier exports), {file_rows_total:,} rows",
        "  records       : " + ", ".join(f"{y}: {n:,}" for y, n in distinct.items()),
        f"  extract date  : {extract.isoformat()}",
        f"  defects       : {'none (--clean)' if clean else f'{len(manifest):,} injected'}"
        f" -> {ref / MANIFEST_NAME}",
        f"  postcode lookup: {lookup_path}",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

def _slug(name: str) -> str:
    return "-".join(name.lower().replace(" fls", "").split())


def _plan_files(reg, r, E, A1, re_export, in_early, special) -> list[dict]:
    fls = r["fls"].astype(np.int64)
    order = np.lexsort((r["rid_num"], fls))
    bounds = np.searchsorted(fls[order], np.arange(len(reg) + 1))
    files = []
    for f in range(len(reg)):
        rows = order[bounds[f]:bounds[f + 1]]
        if len(rows) == 0:
            continue
        code, name = reg.at[f, "fls_code"], reg.at[f, "fls_name"]
        base = {"fls": f, "code": code, "uk_dates": f == special["uk_dates"],
                "cp1252": f == special["cp1252"], "bom": f == special["bom"],
                "t_stamp": f == special["t_stamp"], "rid_style": f % 3}
        if f in re_export:
            early_rows = rows[in_early[rows]]
            if len(early_rows):
                day = np.datetime64(int(A1), "D")
                files.append({**base, "rows": early_rows, "asat": A1, "final": False,
                              "name": f"{code}_{_slug(name)}_{day}.csv"})
        files.append({**base, "rows": rows, "asat": E, "final": True,
                      "name": f"{code}_{_slug(name)}_{np.datetime64(int(E), 'D')}.csv"})
    return files


def _clear_previous(out: Path) -> None:
    """Remove files an earlier run of the generator wrote (its own naming only)."""
    for p in out.glob("SYN[0-9][0-9][0-9]_*.csv"):
        p.unlink()
    ref = out / REF_DIR_NAME
    for name in (LOOKUP_NAME, MANIFEST_NAME, "README.txt"):
        if (ref / name).exists():
            (ref / name).unlink()


def _last_updated(r: _Records, idx: np.ndarray, asat: np.ndarray) -> np.ndarray:
    """Last Updated (seconds since epoch) of rows `idx` as at day `asat`."""
    F = r["F"][idx].astype(np.int64)
    last = np.zeros(len(idx), dtype=np.int64)
    A = asat.astype(np.int64) - F  # as-at, in days after F

    def upd(d, ok):
        nonlocal last
        last = np.where(ok & (d >= 0) & (d <= A), np.maximum(last, d), last)

    upd(r["contact_d"][idx], True)
    upd(r["assess_d"][idx], True)
    dxa_done = (r["dxa"][idx] == 0) & (r["assess_d"][idx] >= 0)
    dxa_d = r["dxa_d"][idx]
    death = r["death_d"][idx]
    upd(dxa_d, dxa_done & (dxa_d < death))
    due16 = A >= 112
    upd(np.full(len(idx), 112), due16 & (r["fu16"][idx] >= 0) | due16 & (death <= 112))
    fu16_d = r["fu16_d"][idx]
    upd(fu16_d, due16 & (r["fu16"][idx] == 0) & (fu16_d < death))
    due52 = A >= 392
    upd(np.full(len(idx), 392), due52 & ((r["fu52"][idx] >= 0) | (death <= 364)))
    fu52_d = r["fu52_d"][idx]
    upd(fu52_d, due52 & (r["fu52"][idx] == 0) & (fu52_d < death))
    upd(death, True)
    day = F + np.minimum(last + r["lag"][idx], A)
    return day * 86400 + r["tod"][idx]


def _materialise(r, idx, asat, lu, spec, reg, geo, ds) -> dict[str, np.ndarray]:
    """String columns of rows `idx` as recorded at day `asat`."""
    n = len(idx)
    uk = spec["uk_dates"]
    F = r["F"][idx].astype(np.int64)
    A = asat - F
    g = {k: v[idx] for k, v in r.c.items() if isinstance(v, np.ndarray) and v.ndim == 1}
    rf = r["rf"][idx]
    blank = np.full(n, "", dtype=object)

    def lab(codes, labels):
        table = np.array(list(labels) + [""], dtype=object)
        codes = np.asarray(codes).astype(np.int64)
        return table[np.where(codes >= 0, codes, len(labels))]

    def date_after(d, ok):
        return ds.fmt(np.where(ok & (d >= 0) & (d <= A), F + d, MISSING), uk)

    cols: dict[str, np.ndarray] = {}
    cols["FLS Code"] = np.full(n, spec["code"], dtype=object)
    num = g["rid_num"]
    style = spec["rid_style"]
    if spec["cp1252"]:
        cols["Record ID"] = np.array([f"RÉF–{x:06d}" if x % 5 else f"NÖ·{x:06d}" for x in num],
                                     dtype=object)
    elif style == 0:
        cols["Record ID"] = np.char.add("R", np.char.zfill(num.astype(str), 7)).astype(object)
    elif style == 1:
        cols["Record ID"] = np.char.add(f"{spec['code']}-", num.astype(str)).astype(object)
    else:
        cols["Record ID"] = np.char.zfill(num.astype(str), 8).astype(object)
    ts = np.datetime_as_string(lu.astype("datetime64[s]"), unit="s")
    if not spec["t_stamp"]:
        ts = np.char.replace(ts, "T", " ")
    cols["Last Updated"] = ts.astype(object)
    cols["1.01 NHS Number"] = _fmt_nhs(g["nhs"], g["nhs_style"])
    cols["1.02 Date of Birth"] = ds.fmt(g["dob"].astype(np.int64), uk)
    cols["1.03 Gender"] = lab(g["gender"], CL["gender"])
    pc = g["pc"]
    pcs = np.where(pc >= 0, geo.postcodes[np.maximum(pc, 0)],
                   np.where(pc > -10**9, geo.unknown_postcodes[np.clip(-pc - 1, 0, None) %
                                                               len(geo.unknown_postcodes)], ""))
    st = g["pc_style"]
    pcs = pcs.astype(object)
    for s_, fn in ((1, lambda x: x.replace(" ", "")), (2, str.lower),
                   (3, lambda x: x.replace(" ", "  "))):
        sel = np.flatnonzero((st == s_) & (pcs != ""))
        if len(sel):
            pcs[sel] = [fn(x) for x in pcs[sel]]
    cols["1.04 Post Code"] = pcs
    cols["1.05 CareRes"] = lab(g["care"], YNK)
    contact = g["contact_d"]
    assess = g["assess_d"]
    death = g["death_d"]
    cols["1.06 DateFLSContact"] = date_after(contact, np.ones(n, bool))
    assessed_now = (assess >= 0) & (assess <= A)
    cols["1.07 DateFLSAssess"] = date_after(assess, np.ones(n, bool))
    cols["1.08 AdmitHosp"] = lab(g["admit"], YNK)
    cols["1.09 Date Index Frac Diagnosed"] = ds.fmt(F, uk)
    cols["1.10 TypeOfFracture"] = lab(g["ftype"], CL["fracture_type"])
    cols["1.11 SiteFirstFrac"] = lab(g["site"], SITES)
    cols["1.12 SiteSecFrac"] = lab(g["site2"], SITES)
    cols["1.13 SiteThirdFrac"] = lab(g["site3"], SITES)
    hw = assessed_now & g["has_hw"]
    cols["2.01 Height"] = np.where(hw, g["height"].astype(int).astype(str), "").astype(object)
    cols["2.02 Weight"] = np.where(hw, g["weight"].astype(str), "").astype(object)
    for col, key in (("2.03 PrevFracHist", "prevfrac"), ("2.04 FamHipFracHist", "famhip"),
                     ("2.05 Smoker", "smoker"), ("2.06 BoneSpareTherapy", "bonespare")):
        v = np.where(assessed_now, g[key], -1)
        cols[col] = lab(np.where(v == 3, -1, v), YNK)
    dxa = g["dxa"].astype(np.int64)
    dxa_d = g["dxa_d"]
    done_now = (dxa == 0) & (dxa_d <= A) & (dxa_d < death)
    dxa_now = np.where(dxa == 0, np.where(done_now, 0, 1), dxa)
    dxa_now = np.where(assessed_now, dxa_now, -1)
    cols["3.01 DXA"] = lab(dxa_now, CL["dxa"])
    cols["3.02 DXANotOrdered"] = lab(np.where(dxa_now == 2, g["dxa_no"], -1), CL["dxa_not_ordered"])
    cols["3.03 DateofDXA"] = ds.fmt(np.where(dxa_now == 0, F + dxa_d, MISSING), uk)
    cols["3.04 TScore"] = np.where(dxa_now == 0, g["tscore"].astype(str), "").astype(object)
    cols["3.05 RiskOfFracture"] = np.where(assessed_now & g["has_frax"], g["frax"].astype(str),
                                           "").astype(object)
    bt = np.where(assessed_now | (assess < 0), g["bt"], -1)
    cols["4.01 BoneTherapy"] = lab(bt, CL["bone_therapy_recommended"])
    cols["4.02 CalciumVitDRec"] = lab(np.where(assessed_now, g["calcium"], -1), YNK)
    fy = g["falls_yes"]
    cols["5.01 RiskAssesByFLS"] = lab(np.where(assessed_now, np.where(fy, 0, 1), -1),
                                      CL["yes_no"])
    rf_cols = ["5.02 TwoFalls", "5.03 FearOfFalling", "5.04 MedsIncRiskFall", "5.05 PreFracMob",
               "5.06 Vision", "5.07 Toileting", "5.08 AbnormalCardAssess",
               "5.09 CognitiveImpairment"]
    for k, col in enumerate(rf_cols):
        cols[col] = lab(np.where(assessed_now & fy, rf[:, k], -1), YNK)
    cols["5.10 Referrals"] = lab(np.where(assessed_now, g["referrals"], -1), CL["referrals"])
    # 16 weeks
    due16 = A >= 112
    died16 = death <= 112
    fu16 = g["fu16"].astype(np.int64)
    fu16_d = g["fu16_d"]
    fu16_now = np.where(due16, np.where(died16, np.where(g["tod"] % 7 == 0, -1, 2), fu16), -1)
    fu16_now = np.where((fu16_now == 0) & (fu16_d > A), -1, fu16_now)  # not yet happened
    yes16 = fu16_now == 0
    yes16_late_death = yes16 & (fu16_d >= death)
    fu16_now = np.where(yes16_late_death, 1, fu16_now)
    yes16 = fu16_now == 0
    cols["6.01 FollowUp12_16"] = lab(fu16_now, CL["follow_up"])
    cols["6.02 Dateof16WeekAss"] = ds.fmt(np.where(yes16, F + fu16_d, MISSING), uk)
    cols["6.05 BoneTherapy1216"] = lab(np.where(yes16, g["bt16"], -1), CL["bone_therapy_16_weeks"])
    sb_now = np.where(yes16, g["sb"], np.where(due16 & ~died16 & (fu16_now >= 0), g["sb_nofu"], -1))
    cols["6.06 StartStrenBalExe"] = lab(sb_now, CL["strength_and_balance"])
    # 52 weeks
    due52 = A >= 392
    died52 = death <= 364
    fu52 = g["fu52"].astype(np.int64)
    fu52_d = g["fu52_d"]
    fu52_now = np.where(due52, np.where(died52, np.where(g["tod"] % 7 == 0, -1, 2), fu52), -1)
    fu52_now = np.where((fu52_now == 0) & (fu52_d >= death), 2, fu52_now)
    yes52 = fu52_now == 0
    cols["7.01 FollowUp48_56"] = lab(fu52_now, CL["follow_up"])
    cols["7.02 Dateof52WeekAss"] = ds.fmt(np.where(yes52, F + fu52_d, MISSING), uk)
    cols["7.05 BoneTherapy4856"] = lab(np.where(yes52, g["bt52"], -1), CL["bone_therapy_52_weeks"])
    cols["7.06 NumReFracSinceIndex"] = np.where(yes52, g["refrac"].astype(str), "").astype(object)
    cols["Date of Death"] = ds.fmt(np.where(death <= A, F + death, MISSING), uk)
    return {c: cols[c] for c in COLUMNS}


YNK = contract.YES_NO_NK
CODED_COLUMNS = [c for c, k in contract.COLUMNS.items() if k.startswith("code:")]


def _mess_case(cols, idx, cw, rng) -> None:
    """Mixed case and padding in a few coded answers (valid after trimming, case-insensitive)."""
    n = len(idx)
    hit = np.flatnonzero(cw[:, 0] < 0.01)
    for pos in hit:
        col = CODED_COLUMNS[int(cw[pos, 1] * len(CODED_COLUMNS))]
        v = cols[col][pos]
        if not v:
            continue
        k = int(cw[pos, 2] * 4)
        cols[col][pos] = (v.upper(), v.lower(), f" {v} ", f"{v}  ")[k]


def _apply_defect(cls, cols, pos, row, r, spec, ds, E, rng):
    """Inject defect `cls` into row `pos` of a file. Returns (column_name, n_fields or None)."""
    uk = spec["uk_dates"]
    F = int(r["F"][row])

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
        y = int(np.datetime64(F, "D").astype(object).year)
        cols[col][pos] = pick([f"31/02/{y}", f"{y}-02-30", f"31/04/{y}", f"{y}-13-01",
                               f"32/01/{y}", "unknown"])
        return col, None
    if cls == "invalid_nhs_number":
        digits = str(int(r["nhs"][row]))
        bad = digits[:9] + str((int(digits[9]) + int(rng.integers(1, 10))) % 10)
        while contract.nhs_number_is_valid(bad):
            bad = digits[:9] + str((int(bad[9]) + 1) % 10)
        cols["1.01 NHS Number"][pos] = bad
        return "1.01 NHS Number", None
    if cls == "unknown_fls_code":
        cols["FLS Code"][pos] = pick(["SYN9" + f"{int(rng.integers(100)):02d}", "XYZ123"])
        return "FLS Code", None
    if cls == "fracture_after_extract":
        cols["1.09 Date Index Frac Diagnosed"][pos] = d(E + int(rng.integers(5, 150)))
        return "1.09 Date Index Frac Diagnosed", None
    if cls == "fracture_before_2016":
        cols["1.09 Date Index Frac Diagnosed"][pos] = d(_day(dt.date(2015, 1, 1))
                                                       + int(rng.integers(0, 365)))
        return "1.09 Date Index Frac Diagnosed", None
    if cls == "birth_after_fracture":
        cols["1.02 Date of Birth"][pos] = d(F + int(rng.integers(10, 5000)))
        return "1.02 Date of Birth", None
    if cls == "age_over_110":
        cols["1.02 Date of Birth"][pos] = d(F - int((111.5 + rng.random() * 6) * 365.25))
        return "1.02 Date of Birth", None
    if cls == "invalid_fracture_site":
        cols["1.11 SiteFirstFrac"][pos] = pick(["Skull", "Finger", "Toe", "Face", "Hipp",
                                                "Vertebra"])
        return "1.11 SiteFirstFrac", None
    if cls == "under_50":
        cols["1.02 Date of Birth"][pos] = d(F - int((35 + rng.random() * 14.5) * 365.25))
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
        cols[col][pos] = d(F - int(rng.integers(1, 90)))
        return col, None
    if cls == "follow_up_too_late":
        col = pick(["6.02 Dateof16WeekAss", "7.02 Dateof52WeekAss"])
        cols[col][pos] = d(F + int(rng.integers(735, 790)))
        return col, None
    if cls == "death_before_fracture":
        cols["Date of Death"][pos] = d(F - int(rng.integers(1, 400)))
        return "Date of Death", None
    raise ValueError(cls)


def _write_csv(path: Path, cols: dict[str, np.ndarray], extra_len: dict[int, int], spec) -> None:
    buf = io.StringIO()
    term = "\r\n" if spec["cp1252"] else "\n"
    w = csv.writer(buf, lineterminator=term, quoting=csv.QUOTE_MINIMAL)
    w.writerow(COLUMNS)
    rows = list(zip(*[cols[c] for c in COLUMNS]))
    for pos, n_fields in extra_len.items():
        row = list(rows[pos])
        rows[pos] = row[:n_fields] if n_fields < len(row) else row + ["extra value"]
    w.writerows(rows)
    text = buf.getvalue()
    if spec["cp1252"]:
        data = text.encode("cp1252")
    elif spec["bom"]:
        data = text.encode("utf-8-sig")
    else:
        data = text.encode("utf-8")
    path.write_bytes(data)


def _write_lookup(ref: Path, geo: Geography, reg, cat) -> Path:
    ref_dir = paths.reference_dir()
    regions = pd.read_csv(ref_dir / "lookup_ltla21_region21.csv")
    rgn_of = dict(zip(regions["ltla21_code"], regions["region21_code"]))
    from flsdb.registry_build import ONS_REGION_TO_NHS
    n_lsoa = len(geo.lsoa_codes)
    la_of_lsoa = np.repeat(geo.la_codes, geo.la_count)
    pcds = geo.postcodes
    lsoa_i = np.arange(3 * n_lsoa) // 3
    la_col = la_of_lsoa[lsoa_i]
    outward = np.array([p.split(" ")[0] for p in pcds], dtype=object)
    inward = np.array([p.split(" ")[1] for p in pcds], dtype=object)
    pcd = np.array([o + " " * (7 - len(o) - 3) + i if len(o) < 4 else o + i
                    for o, i in zip(outward, inward)], dtype=object)
    pcd2 = np.array([o.ljust(4) + " " + i for o, i in zip(outward, inward)], dtype=object)
    welsh = np.array([c.startswith("W") for c in la_col])
    df = pd.DataFrame({c: "" for c in NSPL_COLUMNS}, index=range(len(pcds)))
    df["pcd"], df["pcd2"], df["pcds"] = pcd, pcd2, pcds
    df["dointr"] = "198001"
    df["usertype"] = "0"
    df["osgrdind"] = "9"
    df["laua"] = la_col
    df["ctry"] = np.where(welsh, "W92000004", "E92000001")
    df["rgn"] = [("W99999999" if c.startswith("W") else rgn_of[c]) for c in la_col]
    df["nhser"] = [("W99999999" if c.startswith("W") else ONS_REGION_TO_NHS[rgn_of[c]])
                   for c in la_col]
    df["lsoa11"] = geo.lsoa_codes[lsoa_i]
    df["imd"] = geo.lsoa_rank[lsoa_i].astype(str)
    path = ref / LOOKUP_NAME
    df.to_csv(path, index=False, lineterminator="\n")
    return path


def _write_manifest(path: Path, manifest) -> None:
    df = pd.DataFrame(manifest, columns=["source_file", "line_number", "defect_class",
                                         "column_name"])
    df = df.sort_values(["source_file", "line_number", "defect_class"], kind="stable")
    df.to_csv(path, index=False, lineterminator="\n")


def _write_readme(ref: Path, seed, years, scale, clean, extract) -> None:
    (ref / "README.txt").write_text(
        "SYNTHETIC DATA - NOT REAL PATIENTS, NOT REAL NHS SERVICES, NOT REAL POSTCODES\n\n"
        "Written by `flsdb generate` "
        f"(seed {seed}, years {','.join(map(str, years))}, scale {scale}, "
        f"clean {clean}, extract date {extract.isoformat()}).\n\n"
        f"{LOOKUP_NAME}: a SYNTHETIC postcode -> LSOA 2011 lookup in the ONS NSPL column layout,\n"
        "covering only the invented postcodes of the synthetic submissions (outward codes in the\n"
        "non-existent Y?/Z? postcode areas). LSOA codes, local authorities and deprivation ranks\n"
        "are real (ONS, MHCLG IMD 2019, WIMD 2019; Open Government Licence v3.0). A real\n"
        "deployment points FLSDB_POSTCODE_LOOKUP at the ONS postcode directory instead.\n"
        "About 1% of submitted postcodes are well formed but deliberately absent from it.\n\n"
        f"{MANIFEST_NAME}: every defect the generator injected on purpose (source_file,\n"
        "line_number with the header as line 1, defect_class, column_name). Empty with --clean.\n\n"
        "Folders and files starting with '_' in the landing folder are not submissions.\n",
        encoding="utf-8")
