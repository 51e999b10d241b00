"""Files the SYNTHETIC generator writes beside the submissions, in `<landing>/_reference/`: the
synthetic postcode lookup, the injected-defect manifest and a README saying all is synthetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from flsdb import paths
from flsdb.synthetic.common import LOOKUP_NAME, MANIFEST_NAME, SHIFTS_NAME
from flsdb.synthetic.geography import Geography
from flsdb.synthetic.registry_build import ONS_REGION_TO_NHS

NSPL_COLUMNS = [
    "pcd", "pcd2", "pcds", "dointr", "doterm", "usertype", "oseast1m", "osnrth1m", "osgrdind",
    "oa11", "cty", "ced", "laua", "ward", "hlthau", "nhser", "ctry", "rgn", "pcon", "eer",
    "teclec", "ttwa", "pct", "itl", "park", "lsoa11", "msoa11", "wz11", "ccg", "bua11",
    "buasd11", "ru11ind", "oac11", "lat", "long", "lep1", "lep2", "pfa", "imd", "calncv", "stp",
]


def write_lookup(ref: Path, geo: Geography) -> Path:
    """The SYNTHETIC postcode -> LSOA 2011 lookup in the ONS NSPL layout."""
    regions = pd.read_csv(paths.reference_dir() / "lookup_ltla21_region21.csv")
    rgn_of = dict(zip(regions["ltla21_code"], regions["region21_code"]))
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


def write_manifest(path: Path, manifest) -> None:
    df = pd.DataFrame(manifest, columns=["source_file", "line_number", "defect_class",
                                         "column_name"])
    df = df.sort_values(["source_file", "line_number", "defect_class"], kind="stable")
    df.to_csv(path, index=False, lineterminator="\n")


def write_readme(ref: Path, seed, years, scale, clean, extract) -> None:
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
        f"{SHIFTS_NAME}: every month-by-month performance shift injected on purpose (fls_code,\n"
        "kpi_number, behaviour, kind step/trend, start_month, full_month, direction,\n"
        "size_logit). Empty with --no-drift.\n\n"
        "Folders and files starting with '_' in the landing folder are not submissions.\n",
        encoding="utf-8")
