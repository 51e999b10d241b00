"""`flsdb generate`: the steps, in order. See flsdb.synthetic for what is written and why."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from tqdm import tqdm

from flsdb import paths
from flsdb.synthetic import audit_years
from flsdb.synthetic.common import (EXCLUSION_RATES, MANIFEST_NAME, REF_DIR_NAME, REJECT_RATES,
                                    SHIFTS_NAME, SITES, DateStrings, Records, compact,
                                    day_number)
from flsdb.synthetic.defects import apply_defect, mess_case, plan_defects
from flsdb.synthetic.drift import Shift, plan_shifts, shift_offsets, write_shifts
from flsdb.synthetic.episodes import (assign_identities, assign_record_ids,
                                      copy_duplicate_episodes, draw_episodes,
                                      link_repeat_episodes, place_patients)
from flsdb.synthetic.exports import (clear_previous, last_updated, materialise, plan_files,
                                     write_csv)
from flsdb.synthetic.geography import Geography, active_fls, load_geography, load_registry
from flsdb.synthetic.pathway import Cohort, draw_service_effects, walk_pathway
from flsdb.synthetic.reference_files import write_lookup, write_manifest, write_readme
from flsdb.synthetic.registry_build import expected_cells

# Days before the extract date that the earlier exports of a few services were taken.
EARLY_EXPORT_DAYS = 150


def choose_export_services(rng, registry, final_year: int) -> tuple[dict[str, int], set[int]]:
    """Services whose file has an unusual format (one each), and services that also sent an
    earlier export (about 12% of those active in the final year)."""
    final_year_active = active_fls(registry, final_year)
    order = rng.permutation(final_year_active)
    special = {"cp1252": int(order[0]), "uk_dates": int(order[1]), "bom": int(order[2]),
               "t_stamp": int(order[3])}
    n_re_export = max(1, round(0.12 * len(final_year_active)))
    re_export = {int(x) for x in order[4:4 + n_re_export]}
    return special, re_export


def defect_row_flags(n_records: int, defects: dict, dup_partner: dict) -> tuple[np.ndarray,
                                                                                 np.ndarray]:
    """(rows with a planned defect, sorted; mask of rows protected from other changes)."""
    defect_rows = np.array(sorted(defects), dtype=np.int64)
    is_defect = np.zeros(n_records, bool)
    is_defect[defect_rows] = True
    for i in dup_partner.values():
        is_defect[i] = True  # partners are protected from other changes
    return defect_rows, is_defect


def build_cohort(records: Records, geo: Geography, welsh_fls: np.ndarray, defects: dict,
                 service_effects: dict, shifts: list[Shift]) -> Cohort:
    """The person-level facts the pathway reads, with the deprivation quintile the warehouse
    will see (unknown when the postcode is unknown or defective)."""
    n_records = len(records)
    fls = records["fls"].astype(np.int64)
    site = records["site"].astype(np.int64)
    site_name = np.array(SITES)[site]
    quintile_true = geo.lsoa_quintile[records["lsoa"]]
    postcode_known = records["pc"] >= 0
    postcode_bad = np.zeros(n_records, bool)
    for idx, (cls, _) in defects.items():
        if cls == "invalid_postcode":
            postcode_bad[idx] = True
    return Cohort(
        n_records=n_records, fls=fls, year=records["year"], fracture_day=records["fracture_day"],
        age=records["age"].astype(np.int64), female=records["female"].astype(bool), site=site,
        site_name=site_name, hip=site_name == "Hip", spine=site_name == "Spine",
        welsh=welsh_fls[fls].astype(float),
        quintile_observed=np.where(postcode_known & ~postcode_bad, quintile_true, 0),
        service_effects=service_effects,
        drift=shift_offsets(shifts, fls, records["fracture_day"]))


def cohort_exclusions(n_records: int, defects: dict) -> np.ndarray:
    """Rows the warehouse will reject or exclude (so KPI 7 is calibrated without them)."""
    excluded = np.zeros(n_records, bool)
    for idx, (cls, _) in defects.items():
        if cls in REJECT_RATES or cls in EXCLUSION_RATES:
            excluded[idx] = True
    return excluded


def write_exports(rng, seed, out: Path, files, records: Records, registry, geo, extract_day,
                  defects, dup_partner, defect_rows, is_defect, clean) -> tuple[list, int]:
    """Write every submission file with its defects; return (manifest rows, rows written)."""
    n_records = len(records)
    fracture_day = records["fracture_day"]
    ds = DateStrings()
    # Extract-date anchor: the latest Last Updated overall is on the extract date.
    lu_final = last_updated(records, np.arange(n_records), np.full(n_records, extract_day))
    anchor_pool = np.flatnonzero(~is_defect & (fracture_day <= extract_day))
    anchor = int(anchor_pool[np.argmax(lu_final[anchor_pool])])
    anchor_lu = extract_day * 86400 + int(records["tod"][anchor])
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
        lu = last_updated(records, idx, np.full(len(idx), asat))
        if spec["final"]:
            hit = np.flatnonzero(idx == anchor)
            if len(hit):
                lu[hit[0]] = anchor_lu
            for j, v in clone_lu.items():
                hit = np.flatnonzero(idx == j)
                if len(hit):
                    lu[hit[0]] = v
        cols = materialise(records, idx, asat, lu, spec, geo, ds)
        extra_len: dict[int, int] = {}
        if spec["final"] and not clean:
            mess_case(cols, records["cw"][idx], defect_payload_rng)
            for pos in np.flatnonzero(is_defect[idx] & np.isin(idx, defect_rows)):
                row = int(idx[pos])
                cls, _ = defects[row]
                col, n_fields = apply_defect(cls, cols, pos, row, records, spec, ds, extract_day,
                                             defect_payload_rng)
                if n_fields is not None:
                    extra_len[pos] = n_fields
                manifest.append((spec["name"], pos + 2, cls, col))
        if spec["final"]:
            for pos, row in enumerate(idx):
                final_lu_by_row[int(row)] = int(lu[pos])
        else:
            spec["lu"] = lu
        write_csv(out / spec["name"], cols, extra_len, spec)
        file_rows_total += len(idx)
    if not clean:
        for spec in files:
            if spec["final"]:
                continue
            for pos, row in enumerate(spec["rows"]):
                if final_lu_by_row.get(int(row), -1) > int(spec["lu"][pos]):
                    manifest.append((spec["name"], pos + 2, "re_export_version", ""))
    return manifest, file_rows_total


def generate(years=(2023, 2024), scale: float = 1.0, out_dir: Path | str | None = None,
             seed: int = 20240101, clean: bool = False, seeds_dir: Path | None = None,
             drift: bool = True) -> str:
    """Write synthetic submissions, the synthetic postcode lookup, the defect manifest and the
    list of injected performance shifts (none with drift=False)."""
    years = audit_years.check_years(years)
    out = Path(out_dir) if out_dir is not None else paths.landing_dir()
    rng = np.random.default_rng(seed)
    extract = dt.date(max(years) + 1, 6, 30)
    extract_day = day_number(extract)
    early_asat_day = extract_day - EARLY_EXPORT_DAYS

    registry, catchments = load_registry(seeds_dir)
    cells = expected_cells(seeds_dir)
    geo = load_geography(catchments)
    n_fls = len(registry)
    welsh_fls = (registry["country_code"] == "W92000004").to_numpy()
    shifts = plan_shifts(seed, registry, years) if drift else []

    records = draw_episodes(rng, registry, catchments, cells, years, scale)
    n_records = len(records)
    fls = records["fls"].astype(np.int64)
    fracture_day = records["fracture_day"]
    place_patients(rng, records, geo)
    assign_identities(rng, records)

    special, re_export = choose_export_services(rng, registry, max(years))
    in_early = np.isin(fls, list(re_export)) & (fracture_day <= early_asat_day - 7)
    defects, dup_partner = plan_defects(rng, fls, fracture_day, extract_day, re_export, clean)
    defect_rows, is_defect = defect_row_flags(n_records, defects, dup_partner)
    link_repeat_episodes(rng, records, is_defect, n_fls)

    cohort = build_cohort(records, geo, welsh_fls, defects, draw_service_effects(rng, n_fls),
                          shifts)
    latent = walk_pathway(rng, cohort, cohort_exclusions(n_records, defects), extract_day, years)
    records.c.update({k: compact(v) for k, v in latent.items()})
    del latent, cohort
    copy_duplicate_episodes(records, dup_partner)
    assign_record_ids(rng, records, n_fls)

    files = plan_files(registry, records, extract_day, early_asat_day, re_export, in_early,
                       special)
    out.mkdir(parents=True, exist_ok=True)
    clear_previous(out)
    ref = out / REF_DIR_NAME
    ref.mkdir(exist_ok=True)
    manifest, file_rows_total = write_exports(rng, seed, out, files, records, registry, geo,
                                              extract_day, defects, dup_partner, defect_rows,
                                              is_defect, clean)
    lookup_path = write_lookup(ref, geo)
    write_manifest(ref / MANIFEST_NAME, manifest)
    write_shifts(ref / SHIFTS_NAME, shifts)
    write_readme(ref, seed, years, scale, clean, extract)
    return summarise(out, ref, files, file_rows_total, records, years, extract, clean, manifest,
                     lookup_path, shifts)


def summarise(out, ref, files, file_rows_total, records, years, extract, clean, manifest,
              lookup_path, shifts) -> str:
    distinct = {y: int((records["year"] == y).sum()) for y in years}
    lines = [
        "SYNTHETIC data written by flsdb generate (not real patients or services)",
        f"  output folder : {out}",
        (f"  files         : {len(files)} submission files "
         f"({sum(1 for s in files if not s['final'])} earlier exports), {file_rows_total:,} rows"),
        "  records       : " + ", ".join(f"{y}: {n:,}" for y, n in distinct.items()),
        f"  extract date  : {extract.isoformat()}",
        (f"  defects       : {'none (--clean)' if clean else f'{len(manifest):,} injected'}"
         f" -> {ref / MANIFEST_NAME}"),
        (f"  shifts        : {len(shifts)} month-by-month performance shifts"
         f" -> {ref / SHIFTS_NAME}"),
        f"  postcode lookup: {lookup_path}",
    ]
    return "\n".join(lines)
