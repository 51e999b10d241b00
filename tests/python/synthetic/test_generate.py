"""Tests of the synthetic registry seeds and of `flsdb generate` (src/flsdb/synthetic/)."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flsdb import contract, paths
from flsdb.synthetic import DEFECT_CLASSES, LOOKUP_NAME, MANIFEST_NAME, NSPL_COLUMNS, generate
from flsdb.synthetic import SHIFTS_NAME, audit_years
from flsdb.synthetic.drift import BEHAVIOURS
from flsdb.synthetic.registry_build import active_counts, la_table

SEEDS = paths.seeds_dir()
POSTCODE_RE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")


def submission_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.csv")
                  if not any(part.startswith("_") for part in p.relative_to(folder).parts))


def decode(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp1252"), "windows-1252"


def read_rows(path: Path) -> tuple[list[str], list[list[str]], str]:
    text, enc = decode(path.read_bytes())
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:], enc


def parse_dates(values: pd.Series) -> pd.Series:
    """ISO YYYY-MM-DD or UK DD/MM/YYYY, as docs/specification/submission-format.md allows."""
    iso = pd.to_datetime(values.where(values.str.match(r"^\d{4}-")), format="%Y-%m-%d",
                         errors="coerce")
    uk = pd.to_datetime(values.where(values.str.match(r"^\d{2}/")), format="%d/%m/%Y",
                        errors="coerce")
    return iso.fillna(uk)


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def messy(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("messy")
    generate(years=[2023, 2024], scale=0.02, out_dir=out, seed=11, clean=False)
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean")
    generate(years=[2023, 2024], scale=0.02, out_dir=out, seed=11, clean=True)
    return out


# ---------------------------------------------------------------------------------------------
# Registry seeds
# ---------------------------------------------------------------------------------------------

def test_registry_services_regions_countries():
    reg = pd.read_csv(SEEDS / "fls_registry.csv")
    assert list(reg.columns) == ["fls_code", "fls_name", "country_code", "country_name",
                                 "region_code", "region_name", "first_audit_year",
                                 "last_audit_year"]
    assert 70 <= len(reg) <= 80
    assert reg["fls_code"].is_unique and reg["fls_name"].is_unique
    assert reg["fls_code"].str.fullmatch(r"SYN\d{3}").all()
    assert set(reg["country_code"]) == {"E92000001", "W92000004"}
    assert set(reg["region_code"]) == {"E40000003", "E40000005", "E40000006", "E40000007",
                                       "E40000008", "E40000009", "E40000010", "W92000004"}
    assert (reg.loc[reg["country_code"] == "W92000004", "region_name"] == "Wales").all()
    # some services are new in 2024, so fewer are active in 2023
    assert (reg["first_audit_year"] == 2024).sum() >= 5


def test_catchments_real_las_shares_and_coverage():
    reg = pd.read_csv(SEEDS / "fls_registry.csv")
    cat = pd.read_csv(SEEDS / "fls_catchments.csv")
    assert list(cat.columns) == ["fls_code", "ltla21_code", "ltla21_name", "population_share"]
    assert set(cat["fls_code"]) == set(reg["fls_code"])
    la = la_table()
    assert set(cat["ltla21_code"]) <= set(la["ltla21_code"])
    assert ((cat["population_share"] > 0) & (cat["population_share"] <= 1)).all()
    assert cat.groupby("ltla21_code")["population_share"].sum().max() <= 1 + 1e-9
    assert (cat.groupby("ltla21_code").size() > 1).sum() >= 5  # some LAs are split
    m = cat.merge(la, on="ltla21_code")
    coverage = (m["population_share"] * m["pop50"]).sum() / la["pop50"].sum()
    assert 0.4 <= coverage <= 0.6
    # Welsh services serve Welsh LAs only
    welsh = set(reg.loc[reg["country_code"] == "W92000004", "fls_code"])
    assert cat[cat["fls_code"].isin(welsh)]["ltla21_code"].str.startswith("W").all()


# ---------------------------------------------------------------------------------------------
# Generated submissions
# ---------------------------------------------------------------------------------------------

def test_headers_and_codes_match_contract(clean):
    files = submission_files(clean)
    assert len(files) >= 70
    for path in files:
        header, rows, _ = read_rows(path)
        assert header == list(contract.COLUMNS)
        assert all(len(r) == len(header) for r in rows)
    # every coded answer in clean output is in its list (exact spelling)
    frames = []
    for path in files:
        header, rows, _ = read_rows(path)
        frames.append(pd.DataFrame(rows, columns=header))
    df = pd.concat(frames, ignore_index=True)
    for col, kind in contract.COLUMNS.items():
        values = df[col][df[col] != ""]
        if kind.startswith("code:"):
            allowed = set(contract.CODE_LISTS[kind[5:]])
            assert set(values) <= allowed, col
        elif kind.startswith(("number:", "integer:")):
            _, lo, hi = kind.split(":")
            num = pd.to_numeric(values)
            assert ((num >= float(lo)) & (num <= float(hi))).all(), col
    nhs = df["1.01 NHS Number"].str.replace(r"[ -]", "", regex=True)
    assert nhs.map(contract.nhs_number_is_valid).all()
    pcs = df["1.04 Post Code"][df["1.04 Post Code"] != ""]
    assert pcs.str.replace(" ", "").str.upper().str.match(POSTCODE_RE).all()
    assert df["FLS Code"].isin(pd.read_csv(SEEDS / "fls_registry.csv")["fls_code"]).all()


def test_same_seed_gives_identical_bytes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(years=[2024], scale=0.01, out_dir=a, seed=5)
    generate(years=[2024], scale=0.01, out_dir=b, seed=5)
    generate(years=[2024], scale=0.01, out_dir=c, seed=6)
    assert folder_digest(a) == folder_digest(b)
    assert folder_digest(a) != folder_digest(c)


def test_clean_writes_no_defects(clean):
    manifest = pd.read_csv(clean / "_reference" / MANIFEST_NAME)
    assert list(manifest.columns) == ["source_file", "line_number", "defect_class", "column_name"]
    assert manifest.empty
    E = None
    for path in submission_files(clean):
        header, rows, _ = read_rows(path)
        df = pd.DataFrame(rows, columns=header)
        f = parse_dates(df["1.09 Date Index Frac Diagnosed"])
        dob = parse_dates(df["1.02 Date of Birth"])
        assert f.notna().all() and dob.notna().all()
        lu = pd.to_datetime(df["Last Updated"].str.replace("T", " "), format="%Y-%m-%d %H:%M:%S")
        for col, kind in contract.COLUMNS.items():
            if kind == "date" and col != "1.02 Date of Birth":
                d = parse_dates(df[col])
                assert ((d.isna()) | ((d >= f) & (d <= lu.dt.normalize()))).all(), col
        assert (f >= "2016-01-01").all() and (dob < f).all()
        assert (lu.dt.normalize() >= f).all()
        age = (f - dob).dt.days / 365.25
        assert (age >= 50).all() and (age < 110).all()
        E = lu.max() if E is None else max(E, lu.max())
    assert E.date().isoformat() == "2025-06-30"


def test_manifest_lists_every_defect_class(messy):
    manifest = pd.read_csv(messy / "_reference" / MANIFEST_NAME, keep_default_na=False)
    assert set(manifest["defect_class"]) == set(DEFECT_CLASSES)
    files = {p.name: p for p in submission_files(messy)}
    cache = {}
    for rec in manifest.itertuples():
        assert rec.source_file in files
        if rec.source_file not in cache:
            cache[rec.source_file] = read_rows(files[rec.source_file])
        header, rows, _ = cache[rec.source_file]
        row = rows[rec.line_number - 2]
        if rec.defect_class == "wrong_column_count":
            assert len(row) != len(header)
            continue
        assert len(row) == len(header)
        value = dict(zip(header, row))
        if rec.defect_class == "invalid_nhs_number":
            assert not contract.nhs_number_is_valid(value["1.01 NHS Number"])
        if rec.defect_class == "missing_required_value":
            assert value[rec.column_name].strip() == ""
        if rec.defect_class == "invalid_fracture_site":
            assert value["1.11 SiteFirstFrac"].strip().lower() not in {
                s.lower() for s in contract.SITES}
        if rec.defect_class == "invalid_postcode":
            assert not POSTCODE_RE.match(value["1.04 Post Code"].replace(" ", "").upper())
    # defects (other than re-export versions) are a small share of all rows
    total = sum(len(read_rows(p)[1]) for p in files.values())
    share = (manifest["defect_class"] != "re_export_version").sum() / total
    assert share < 0.03


def test_duplicate_episodes_and_reexports(messy):
    manifest = pd.read_csv(messy / "_reference" / MANIFEST_NAME, keep_default_na=False)
    frames = []
    for order, path in enumerate(submission_files(messy)):
        header, rows, _ = read_rows(path)
        df = pd.DataFrame([r for r in rows if len(r) == len(header)], columns=header)
        df["_file"] = path.name
        df["_line"] = [i + 2 for i, r in enumerate(rows) if len(r) == len(header)]
        frames.append(df)
    df = pd.concat(frames, ignore_index=True)
    dup = manifest[manifest["defect_class"] == "duplicate_episode"]
    for rec in dup.itertuples():
        row = df[(df["_file"] == rec.source_file) & (df["_line"] == rec.line_number)].iloc[0]
        same = df[(df["FLS Code"] == row["FLS Code"])
                  & (df["1.01 NHS Number"] == row["1.01 NHS Number"])
                  & (df["1.09 Date Index Frac Diagnosed"] == row["1.09 Date Index Frac Diagnosed"])
                  & (df["Record ID"] != row["Record ID"])]
        assert len(same) == 1
        assert same.iloc[0]["Last Updated"] > row["Last Updated"]
    re = manifest[manifest["defect_class"] == "re_export_version"]
    assert len(re) > 0
    for rec in re.head(50).itertuples():
        row = df[(df["_file"] == rec.source_file) & (df["_line"] == rec.line_number)].iloc[0]
        later = df[(df["FLS Code"] == row["FLS Code"]) & (df["Record ID"] == row["Record ID"])
                   & (df["_file"] != rec.source_file)]
        assert len(later) == 1 and later.iloc[0]["Last Updated"] > row["Last Updated"]


def test_windows_1252_file_and_uk_dates(messy):
    encodings, uk_files = {}, []
    for path in submission_files(messy):
        data = path.read_bytes()
        header, rows, enc = read_rows(path)
        encodings[path.name] = enc
        if enc == "windows-1252":
            ids = [r[1] for r in rows if len(r) > 1]
            assert any(any(ord(ch) > 127 for ch in x) for x in ids)
            assert any("É" in x for x in ids) and any("–" in x for x in ids)
            # exact round trip through cp1252
            assert data.decode("cp1252").encode("cp1252") == data
        dates = [r[11] for r in rows if len(r) == len(header)]
        if dates and all(re.fullmatch(r"\d{2}/\d{2}/\d{4}", d) for d in dates[:20]):
            uk_files.append(path.name)
    assert list(encodings.values()).count("windows-1252") == 1
    assert len(uk_files) == 1


def test_postcode_lookup_layout(clean):
    ref = clean / "_reference"
    assert (ref / "README.txt").read_text().startswith("SYNTHETIC")
    lk = pd.read_csv(ref / LOOKUP_NAME, dtype=str, keep_default_na=False)
    assert list(lk.columns) == NSPL_COLUMNS
    assert lk.columns[:5].tolist() == ["pcd", "pcd2", "pcds", "dointr", "doterm"]
    assert lk["pcds"].is_unique
    assert lk["pcds"].str.fullmatch(r"[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}").all()
    assert (lk["pcd"].str.len() == 7).all() and (lk["pcd2"].str.len() == 8).all()
    assert lk["lsoa11"].str.match(r"^[EW]01\d{6}$").all()
    # postcodes in the submissions: nearly all in the lookup, about 1% well formed but unknown
    known = set(lk["pcds"].str.replace(" ", ""))
    pcs = []
    for path in submission_files(clean):
        _header, rows, _ = read_rows(path)
        pcs += [r[6].replace(" ", "").upper() for r in rows if r[6]]
    hit = np.mean([p in known for p in pcs])
    assert 0.97 <= hit < 1.0


@pytest.fixture(scope="module")
def full_2024(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("full_2024")
    return out, generate(years=[2024], scale=1.0, out_dir=out, seed=3)


def test_national_volume_at_full_scale(full_2024):
    tmp_path, summary = full_2024
    assert "83,500" in summary
    keys, n_files = set(), 0
    for path in submission_files(tmp_path):
        n_files += 1
        _, rows, _ = read_rows(path)
        keys.update((r[0], r[1]) for r in rows if len(r) > 1)
    assert abs(len(keys) - 83500) <= 0.005 * 83500
    assert 70 <= n_files <= 95


# ---------------------------------------------------------------------------------------------
# Audit years 2016-2026, services per year, month-by-month drift
# ---------------------------------------------------------------------------------------------

PUBLISHED_RECORDS = {2016: 42589, 2017: 52731, 2019: 69926, 2021: 49327, 2022: 65843,
                     2023: 77268, 2024: 83500}
PUBLISHED_SERVICES = {2017: 55, 2022: 69, 2024: 77}


def final_rows(folder: Path) -> pd.DataFrame:
    """Every row of every file, the later export winning for a record sent twice."""
    frames = []
    for path in submission_files(folder):
        header, rows, _ = read_rows(path)
        df = pd.DataFrame([r for r in rows if len(r) == len(header)], columns=header)
        df["_file"] = path.name
        frames.append(df)
    df = pd.concat(frames, ignore_index=True).sort_values("_file", kind="stable")
    df = df.drop_duplicates(["FLS Code", "Record ID"], keep="last")
    df["_fracture"] = parse_dates(df["1.09 Date Index Frac Diagnosed"])
    return df


def test_year_table_keeps_the_published_figures():
    table = audit_years.table()
    assert sorted(table) == list(range(2016, 2027))
    for year, records in PUBLISHED_RECORDS.items():
        assert table[year]["records"] == records
    for year, services in PUBLISHED_SERVICES.items():
        assert table[year]["active_services"] == services
    # the years in between lie between their published neighbours
    assert 52731 < table[2018]["records"] < 69926
    assert 49327 < table[2020]["records"] < 69926
    counts = [table[y]["active_services"] for y in sorted(table)]
    assert counts == sorted(counts)


def test_registry_has_the_table_s_services_every_year():
    reg = pd.read_csv(SEEDS / "fls_registry.csv", dtype={"last_audit_year": "Int64"})
    expected = {y: e["active_services"] for y, e in audit_years.table().items()}
    assert active_counts(reg) == expected


@pytest.fixture(scope="module")
def every_year(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("every_year")
    return out, generate(years=range(2016, 2027), scale=0.02, out_dir=out, seed=13, clean=True)


def test_every_audit_year_has_its_national_volume_and_services(every_year):
    folder, summary = every_year
    df = final_rows(folder)
    per_year = df.groupby(df["_fracture"].dt.year)
    records = per_year.size().to_dict()
    services = per_year["FLS Code"].nunique().to_dict()
    reg = pd.read_csv(SEEDS / "fls_registry.csv", dtype={"last_audit_year": "Int64"})
    for year, entry in audit_years.table().items():
        assert records[year] == round(entry["records"] * 0.02), year
        assert f"{year}: {round(entry['records'] * 0.02):,}" in summary
        assert services[year] == entry["active_services"], year
        # only services registered for the year send its records
        last = reg["last_audit_year"].fillna(9999)
        active = set(reg.loc[(reg["first_audit_year"] <= year) & (last >= year), "fls_code"])
        assert set(df.loc[df["_fracture"].dt.year == year, "FLS Code"]) <= active
    assert df["_fracture"].max() < pd.Timestamp("2027-01-01")


@pytest.mark.parametrize("years", ["2015", "2024,2027", "20x4"])
def test_cli_refuses_years_outside_the_table(tmp_path, years):
    from click.testing import CliRunner

    from flsdb.cli import main

    result = CliRunner().invoke(main, ["generate", "--years", years, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--years" in result.output
    assert not list(tmp_path.glob("*.csv"))


def behaviour_flags(df: pd.DataFrame) -> pd.DataFrame:
    """Per record, whether each drifting behaviour happened (as the KPI numerators read it)."""
    assess = parse_dates(df["1.07 DateFLSAssess"])
    yes = {col: df[col].str.strip().str.lower() for col in
           ("3.01 DXA", "5.01 RiskAssesByFLS", "6.06 StartStrenBalExe", "6.01 FollowUp12_16")}
    return pd.DataFrame({
        "assessed": (assess - df["_fracture"]).dt.days.between(0, 90),
        "dxa": yes["3.01 DXA"] == "done",
        "falls": yes["5.01 RiskAssesByFLS"] == "yes",
        "sb": yes["6.06 StartStrenBalExe"] == "yes",
        "fu16": yes["6.01 FollowUp12_16"] == "yes",
    }, index=df.index)


def test_drift_manifest_matches_the_generated_rows(full_2024, tmp_path):
    """The same seed without drift makes the same draws, so each listed shift must show in its
    service's rows: unchanged before the start month, moved in the listed direction after it."""
    folder, _ = full_2024
    shifts = pd.read_csv(folder / "_reference" / SHIFTS_NAME)
    assert list(shifts.columns) == ["fls_code", "kpi_number", "behaviour", "description", "kind",
                                    "start_month", "full_month", "direction", "size_logit"]
    assert len(shifts) >= 10 and shifts["fls_code"].is_unique
    assert set(shifts["kind"]) == {"step", "trend"}
    assert set(shifts["direction"]) == {"improve", "worsen"}
    assert (shifts["kpi_number"] == shifts["behaviour"].map(
        {b: k for b, (k, _) in BEHAVIOURS.items()})).all()
    assert ((shifts["size_logit"] > 0) == (shifts["direction"] == "improve")).all()
    generate(years=[2024], scale=1.0, out_dir=tmp_path, seed=3, drift=False)
    assert pd.read_csv(tmp_path / "_reference" / SHIFTS_NAME).empty
    keys = ["FLS Code", "Record ID"]
    drifted, steady = final_rows(folder), final_rows(tmp_path)
    both = drifted[keys + ["_fracture"]].join(behaviour_flags(drifted)).merge(
        steady[keys].join(behaviour_flags(steady)), on=keys, suffixes=("", "_steady"))
    assert len(both) == len(drifted) == len(steady)
    for shift in shifts.itertuples():
        rows = both[both["FLS Code"] == shift.fls_code]
        before = rows[rows["_fracture"] < pd.Timestamp(shift.start_month)]
        after = rows[rows["_fracture"] >= pd.Timestamp(shift.full_month)]
        assert len(before) > 20 and len(after) > 20, shift
        b = shift.behaviour
        assert (before[b] == before[f"{b}_steady"]).all(), shift
        moved = after[b].astype(int) - after[f"{b}_steady"].astype(int)
        sign = 1 if shift.direction == "improve" else -1
        assert (moved * sign >= 0).all() and (moved * sign).sum() > 0, shift
