"""The SYNTHETIC submission files: which files each service sends, each record as it stood on
the file's as-at date (later answers blank until they happen), and the CSV bytes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from flsdb.synthetic.common import (CODE_LISTS, COLUMNS, LOOKUP_NAME, MANIFEST_NAME, MISSING,
                                    REF_DIR_NAME, SHIFTS_NAME, SITES, YES_NO_NK, Records)


def _slug(name: str) -> str:
    return "-".join(name.lower().replace(" fls", "").split())


def plan_files(registry, records: Records, extract_day: int, early_asat_day: int,
               re_export: set[int], in_early: np.ndarray, special: dict) -> list[dict]:
    """One final export per service (as at the extract date) and, for services in `re_export`,
    an earlier export as at `early_asat_day` of the records it already held."""
    fls = records["fls"].astype(np.int64)
    order = np.lexsort((records["rid_num"], fls))
    bounds = np.searchsorted(fls[order], np.arange(len(registry) + 1))
    files = []
    for service in range(len(registry)):
        rows = order[bounds[service]:bounds[service + 1]]
        if len(rows) == 0:
            continue
        code, name = registry.at[service, "fls_code"], registry.at[service, "fls_name"]
        base = {"fls": service, "code": code, "uk_dates": service == special["uk_dates"],
                "cp1252": service == special["cp1252"], "bom": service == special["bom"],
                "t_stamp": service == special["t_stamp"], "rid_style": service % 3}
        if service in re_export:
            early_rows = rows[in_early[rows]]
            if len(early_rows):
                day = np.datetime64(int(early_asat_day), "D")
                files.append({**base, "rows": early_rows, "asat": early_asat_day, "final": False,
                              "name": f"{code}_{_slug(name)}_{day}.csv"})
        files.append({**base, "rows": rows, "asat": extract_day, "final": True,
                      "name": f"{code}_{_slug(name)}_{np.datetime64(int(extract_day), 'D')}.csv"})
    return files


def clear_previous(out: Path) -> None:
    """Remove files an earlier run of the generator wrote (its own naming only)."""
    for p in out.glob("SYN[0-9][0-9][0-9]_*.csv"):
        p.unlink()
    ref = out / REF_DIR_NAME
    for name in (LOOKUP_NAME, MANIFEST_NAME, SHIFTS_NAME, "README.txt"):
        if (ref / name).exists():
            (ref / name).unlink()


def last_updated(records: Records, idx: np.ndarray, asat: np.ndarray) -> np.ndarray:
    """Last Updated (seconds since epoch) of rows `idx` as at day `asat`."""
    fracture_day = records["fracture_day"][idx].astype(np.int64)
    last = np.zeros(len(idx), dtype=np.int64)
    days_known = asat.astype(np.int64) - fracture_day  # as-at, in days after the fracture

    def upd(d, ok):
        nonlocal last
        last = np.where(ok & (d >= 0) & (d <= days_known), np.maximum(last, d), last)

    upd(records["contact_d"][idx], True)
    upd(records["assess_d"][idx], True)
    dxa_done = (records["dxa"][idx] == 0) & (records["assess_d"][idx] >= 0)
    dxa_d = records["dxa_d"][idx]
    death = records["death_d"][idx]
    upd(dxa_d, dxa_done & (dxa_d < death))
    due16 = days_known >= 112
    upd(np.full(len(idx), 112), due16 & (records["fu16"][idx] >= 0) | due16 & (death <= 112))
    fu16_d = records["fu16_d"][idx]
    upd(fu16_d, due16 & (records["fu16"][idx] == 0) & (fu16_d < death))
    due52 = days_known >= 392
    upd(np.full(len(idx), 392), due52 & ((records["fu52"][idx] >= 0) | (death <= 364)))
    fu52_d = records["fu52_d"][idx]
    upd(fu52_d, due52 & (records["fu52"][idx] == 0) & (fu52_d < death))
    upd(death, True)
    day = fracture_day + np.minimum(last + records["lag"][idx], days_known)
    return day * 86400 + records["tod"][idx]


def format_nhs_numbers(nums: np.ndarray, style: np.ndarray) -> np.ndarray:
    s = nums.astype(str).astype(object)
    out = s.copy()
    spaced = style == 1
    hyphened = style == 2
    if spaced.any():
        out[spaced] = [f"{x[:3]} {x[3:6]} {x[6:]}" for x in s[spaced]]
    if hyphened.any():
        out[hyphened] = [f"{x[:3]}-{x[3:6]}-{x[6:]}" for x in s[hyphened]]
    return out


def materialise(records, idx, asat, lu, spec, geo, ds) -> dict[str, np.ndarray]:
    """String columns of rows `idx` as recorded at day `asat`."""
    n = len(idx)
    uk = spec["uk_dates"]
    fracture_day = records["fracture_day"][idx].astype(np.int64)
    days_known = asat - fracture_day  # the as-at date, in days after the fracture
    rows_latent = {k: v[idx] for k, v in records.c.items()
                   if isinstance(v, np.ndarray) and v.ndim == 1}
    risk_factors = records["rf"][idx]

    def lab(codes, labels):
        table = np.array(list(labels) + [""], dtype=object)
        codes = np.asarray(codes).astype(np.int64)
        return table[np.where(codes >= 0, codes, len(labels))]

    def date_after(d, ok):
        return ds.fmt(np.where(ok & (d >= 0) & (d <= days_known), fracture_day + d, MISSING), uk)

    cols: dict[str, np.ndarray] = {}
    cols["FLS Code"] = np.full(n, spec["code"], dtype=object)
    num = rows_latent["rid_num"]
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
    cols["1.01 NHS Number"] = format_nhs_numbers(rows_latent["nhs"], rows_latent["nhs_style"])
    cols["1.02 Date of Birth"] = ds.fmt(rows_latent["dob"].astype(np.int64), uk)
    cols["1.03 Gender"] = lab(rows_latent["gender"], CODE_LISTS["gender"])
    pc = rows_latent["pc"]
    pcs = np.where(pc >= 0, geo.postcodes[np.maximum(pc, 0)],
                   np.where(pc > -10**9, geo.unknown_postcodes[np.clip(-pc - 1, 0, None) %
                                                               len(geo.unknown_postcodes)], ""))
    st = rows_latent["pc_style"]
    pcs = pcs.astype(object)
    for s_, fn in ((1, lambda x: x.replace(" ", "")), (2, str.lower),
                   (3, lambda x: x.replace(" ", "  "))):
        sel = np.flatnonzero((st == s_) & (pcs != ""))
        if len(sel):
            pcs[sel] = [fn(x) for x in pcs[sel]]
    cols["1.04 Post Code"] = pcs
    cols["1.05 CareRes"] = lab(rows_latent["care"], YES_NO_NK)
    contact = rows_latent["contact_d"]
    assess = rows_latent["assess_d"]
    death = rows_latent["death_d"]
    cols["1.06 DateFLSContact"] = date_after(contact, np.ones(n, bool))
    assessed_now = (assess >= 0) & (assess <= days_known)
    cols["1.07 DateFLSAssess"] = date_after(assess, np.ones(n, bool))
    cols["1.08 AdmitHosp"] = lab(rows_latent["admit"], YES_NO_NK)
    cols["1.09 Date Index Frac Diagnosed"] = ds.fmt(fracture_day, uk)
    cols["1.10 TypeOfFracture"] = lab(rows_latent["ftype"], CODE_LISTS["fracture_type"])
    cols["1.11 SiteFirstFrac"] = lab(rows_latent["site"], SITES)
    cols["1.12 SiteSecFrac"] = lab(rows_latent["site2"], SITES)
    cols["1.13 SiteThirdFrac"] = lab(rows_latent["site3"], SITES)
    hw = assessed_now & rows_latent["has_hw"]
    cols["2.01 Height"] = np.where(hw, rows_latent["height"].astype(int).astype(str), "").astype(object)
    cols["2.02 Weight"] = np.where(hw, rows_latent["weight"].astype(str), "").astype(object)
    for col, key in (("2.03 PrevFracHist", "prevfrac"), ("2.04 FamHipFracHist", "famhip"),
                     ("2.05 Smoker", "smoker"), ("2.06 BoneSpareTherapy", "bonespare")):
        v = np.where(assessed_now, rows_latent[key], -1)
        cols[col] = lab(np.where(v == 3, -1, v), YES_NO_NK)
    dxa = rows_latent["dxa"].astype(np.int64)
    dxa_d = rows_latent["dxa_d"]
    done_now = (dxa == 0) & (dxa_d <= days_known) & (dxa_d < death)
    dxa_now = np.where(dxa == 0, np.where(done_now, 0, 1), dxa)
    dxa_now = np.where(assessed_now, dxa_now, -1)
    cols["3.01 DXA"] = lab(dxa_now, CODE_LISTS["dxa"])
    cols["3.02 DXANotOrdered"] = lab(np.where(dxa_now == 2, rows_latent["dxa_no"], -1), CODE_LISTS["dxa_not_ordered"])
    cols["3.03 DateofDXA"] = ds.fmt(np.where(dxa_now == 0, fracture_day + dxa_d, MISSING), uk)
    cols["3.04 TScore"] = np.where(dxa_now == 0, rows_latent["tscore"].astype(str), "").astype(object)
    cols["3.05 RiskOfFracture"] = np.where(assessed_now & rows_latent["has_frax"], rows_latent["frax"].astype(str),
                                           "").astype(object)
    bt = np.where(assessed_now | (assess < 0), rows_latent["bt"], -1)
    cols["4.01 BoneTherapy"] = lab(bt, CODE_LISTS["bone_therapy_recommended"])
    cols["4.02 CalciumVitDRec"] = lab(np.where(assessed_now, rows_latent["calcium"], -1), YES_NO_NK)
    fy = rows_latent["falls_yes"]
    cols["5.01 RiskAssesByFLS"] = lab(np.where(assessed_now, np.where(fy, 0, 1), -1),
                                      CODE_LISTS["yes_no"])
    rf_cols = ["5.02 TwoFalls", "5.03 FearOfFalling", "5.04 MedsIncRiskFall", "5.05 PreFracMob",
               "5.06 Vision", "5.07 Toileting", "5.08 AbnormalCardAssess",
               "5.09 CognitiveImpairment"]
    for k, col in enumerate(rf_cols):
        cols[col] = lab(np.where(assessed_now & fy, risk_factors[:, k], -1), YES_NO_NK)
    cols["5.10 Referrals"] = lab(np.where(assessed_now, rows_latent["referrals"], -1), CODE_LISTS["referrals"])
    # 16 weeks
    due16 = days_known >= 112
    died16 = death <= 112
    fu16 = rows_latent["fu16"].astype(np.int64)
    fu16_d = rows_latent["fu16_d"]
    fu16_now = np.where(due16, np.where(died16, np.where(rows_latent["tod"] % 7 == 0, -1, 2), fu16), -1)
    fu16_now = np.where((fu16_now == 0) & (fu16_d > days_known), -1, fu16_now)  # not yet happened
    yes16 = fu16_now == 0
    yes16_late_death = yes16 & (fu16_d >= death)
    fu16_now = np.where(yes16_late_death, 1, fu16_now)
    yes16 = fu16_now == 0
    cols["6.01 FollowUp12_16"] = lab(fu16_now, CODE_LISTS["follow_up"])
    cols["6.02 Dateof16WeekAss"] = ds.fmt(np.where(yes16, fracture_day + fu16_d, MISSING), uk)
    cols["6.05 BoneTherapy1216"] = lab(np.where(yes16, rows_latent["bt16"], -1), CODE_LISTS["bone_therapy_16_weeks"])
    sb_now = np.where(yes16, rows_latent["sb"], np.where(due16 & ~died16 & (fu16_now >= 0), rows_latent["sb_nofu"], -1))
    cols["6.06 StartStrenBalExe"] = lab(sb_now, CODE_LISTS["strength_and_balance"])
    # 52 weeks
    due52 = days_known >= 392
    died52 = death <= 364
    fu52 = rows_latent["fu52"].astype(np.int64)
    fu52_d = rows_latent["fu52_d"]
    fu52_now = np.where(due52, np.where(died52, np.where(rows_latent["tod"] % 7 == 0, -1, 2), fu52), -1)
    fu52_now = np.where((fu52_now == 0) & (fu52_d >= death), 2, fu52_now)
    yes52 = fu52_now == 0
    cols["7.01 FollowUp48_56"] = lab(fu52_now, CODE_LISTS["follow_up"])
    cols["7.02 Dateof52WeekAss"] = ds.fmt(np.where(yes52, fracture_day + fu52_d, MISSING), uk)
    cols["7.05 BoneTherapy4856"] = lab(np.where(yes52, rows_latent["bt52"], -1), CODE_LISTS["bone_therapy_52_weeks"])
    cols["7.06 NumReFracSinceIndex"] = np.where(yes52, rows_latent["refrac"].astype(str), "").astype(object)
    cols["Date of Death"] = ds.fmt(np.where(death <= days_known, fracture_day + death, MISSING), uk)
    return {c: cols[c] for c in COLUMNS}


def write_csv(path: Path, cols: dict[str, np.ndarray], extra_len: dict[int, int], spec) -> None:
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
