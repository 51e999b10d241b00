"""Privacy: no identifier ever leaves the raw schema, and the pseudonymisation key never reaches disk.

An automated scan of everything the project writes, for:
- NHS numbers: any 10-digit token (spaces or hyphens allowed) with a valid modulus-11 check
  digit, or whose digits are an NHS number of the raw data;
- full postcodes of the raw data (any spacing and case);
- dates of birth: no date before 1990 anywhere (every in-scope patient was born before 1975, and
  no audit date is that early), and no row-level table whose dates include its own record's
  date of birth (which also covers patients out of scope by age).

What is scanned: every table (and submission-derived view) outside the raw schema of the
national warehouse (conftest.built_warehouse) and of the tiny build (tiny_build.py); the
published marts (DuckDB file, Parquet, manifest) and the publication CSVs; dbt's target and log
folders of both builds (and the project's logs/); the loader's output; and the loader's messages
for files full of identifiers. The only NHS-number-shaped values allowed outside raw are the ones
written in the repository's own source (the public NHS example number 943 476 5919 used by the
unit-test fixtures), and none of them may be a patient's.

The boundary (docs/reliability.md): raw rows, including rejected rows' raw_line, exist only in
the raw schema and in the internal data-quality report; never in staging, marts, publication
outputs or logs.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import pytest

from flsdb import contract, paths, safe_csv

import tiny_build
from submission_rows import csv_line, csv_text, good_row, nhs

# Not part of a longer word or number: a decimal fraction such as 50.4160138829 is no NHS number.
NHS_TOKEN = re.compile(r"(?<![0-9A-Za-z.])(\d{3})([ -]?)(\d{3})\2(\d{4})(?![0-9A-Za-z]|\.[0-9])")
POSTCODE_TOKEN = re.compile(r"(?<![0-9A-Z])([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})(?![0-9A-Z])")
DATE_TOKEN = re.compile(r"(?<![0-9])(?:(1[89]\d\d)-(\d\d)-(\d\d)|(\d\d)/(\d\d)/(1[89]\d\d))(?![0-9])")
DOB_CUTOFF = 1990
NUMERIC = ("BIGINT", "INTEGER", "HUGEINT", "UBIGINT", "DOUBLE", "FLOAT", "SMALLINT", "TINYINT",
           "UINTEGER", "USMALLINT", "UTINYINT") + tuple(f"DECIMAL({p},{s})" for p in range(1, 39)
                                                      for s in range(p + 1))
# Reference data of every UK postcode (not person-level); scanned for NHS numbers only.
POSTCODE_REFERENCE = {"stg_reference__postcode_lookups"}


def repository_source_text() -> str:
    parts = []
    for folder in ("models", "macros", "tests", "seeds", "analyses"):
        for p in (paths.PROJECT_DIR / folder).rglob("*"):
            if p.is_file() and p.suffix in (".sql", ".yml", ".yaml", ".md", ".csv"):
                parts.append(p.read_text(encoding="utf-8", errors="ignore"))
    parts.append((paths.PROJECT_DIR / "dbt_project.yml").read_text())
    return "\n".join(parts)


def _nhs_tokens(text: str) -> set[str]:
    return {"".join(m.group(1, 3, 4)) for m in NHS_TOKEN.finditer(text)}


class Identifiers:
    """The identifiers of the raw data of one or more warehouses, and the scan rules."""

    def __init__(self, warehouses: list[Path]):
        self.nhs: set[str] = set()
        self.postcodes: set[str] = set()
        self.dobs: set[str] = set()
        for wh in warehouses:
            con = duckdb.connect(str(wh), read_only=True)
            try:
                for n, pc, dob in con.execute(
                        'SELECT regexp_replace("1.01 NHS Number", \'[ -]\', \'\', \'g\'), '
                        'upper(replace("1.04 Post Code", \' \', \'\')), trim("1.02 Date of Birth") '
                        "FROM raw.submission_records").fetchall():
                    if n:
                        self.nhs.add(n)
                    if pc and 5 <= len(pc) <= 7:
                        self.postcodes.add(pc)
                    if dob:
                        self.dobs.add(dob)
            finally:
                con.close()
        source = repository_source_text()
        self.allowed_nhs = {t for t in _nhs_tokens(source) if contract.nhs_number_is_valid(t)}
        self.allowed_dates = {m.group(0) for m in DATE_TOKEN.finditer(source)}
        assert not (self.allowed_nhs & self.nhs), "a repository fixture is a patient's NHS number"
        assert len(self.nhs) > 100 and len(self.postcodes) > 100 and len(self.dobs) > 100

    def nhs_leak(self, digits: str) -> bool:
        return digits not in self.allowed_nhs and (
            digits in self.nhs or contract.nhs_number_is_valid(digits))

    def text_leaks(self, text: str) -> list[str]:
        found = [f"NHS number {t}" for t in _nhs_tokens(text) if self.nhs_leak(t)]
        found += [f"postcode {a} {b}" for a, b in POSTCODE_TOKEN.findall(text.upper())
                  if a + b in self.postcodes]
        found += [f"date {m.group(0)}" for m in DATE_TOKEN.finditer(text)
                  if m.group(0) not in self.allowed_dates
                  and int(m.group(1) or m.group(6)) < DOB_CUTOFF]
        return sorted(set(found))[:20]


def scan_database(db: Path, ids: Identifiers, skip_schemas=("raw",)) -> dict[str, list[str]]:
    """Leaks per table of every table and view (outside skip_schemas) of a DuckDB file.

    Each column's distinct values (as text) are scanned with the same rules as files; date
    columns are also checked for any date before DOB_CUTOFF; row-level tables (with fls_code and
    record_id) are joined back to raw, where there is a raw schema, to check that no date column
    holds the record's own date of birth."""
    con = duckdb.connect(str(db), read_only=True)
    leaks: dict[str, list[str]] = {}
    try:
        relations = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() UNION ALL "
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal "
            "ORDER BY ALL").fetchall()
        has_raw = ("raw", "submission_records") in relations
        for schema, table in relations:
            if schema in skip_schemas or schema in ("information_schema", "pg_catalog"):
                continue
            rel = f'"{schema}"."{table}"'
            columns = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ?", [schema, table]).fetchall()
            found = []
            for column, kind in columns:
                if kind == "BOOLEAN":
                    continue
                if kind in NUMERIC:     # only a whole number of 10 digits can be an NHS number
                    where = f'"{column}" BETWEEN 100000000 AND 9999999999'
                elif kind == "VARCHAR":
                    # hex digests (pseudonyms, sha256) cannot hold a delimited 10-digit token
                    where = (f'"{column}" IS NOT NULL AND NOT regexp_full_match("{column}", '
                             "'[0-9a-fA-F]{64}')")
                elif kind.startswith(("DATE", "TIMESTAMP")):
                    where = None        # checked below: no date before DOB_CUTOFF
                else:
                    where = f'"{column}" IS NOT NULL'
                values = con.execute(f'SELECT DISTINCT "{column}"::VARCHAR FROM {rel} '
                                     f"WHERE {where}").fetchall() if where else []
                text = "\n".join(v for (v,) in values)
                leaks_here = ids.text_leaks(text)
                if table in POSTCODE_REFERENCE:
                    leaks_here = [x for x in leaks_here if not x.startswith("postcode")]
                found += [f"{column}: {x}" for x in leaks_here]
                if kind in ("DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE"):
                    (n,) = con.execute(f'SELECT count(*) FROM {rel} WHERE "{column}" < '
                                       f"DATE '{DOB_CUTOFF}-01-01'").fetchone()
                    if n:
                        found.append(f"{n} dates before {DOB_CUTOFF} in {column}")
            names = {c for c, _ in columns}
            dates = [c for c, k in columns if k == "DATE"]
            if has_raw and dates and {"fls_code", "record_id"} <= names:
                dob = ("coalesce(try_strptime(trim(r.\"1.02 Date of Birth\"), '%Y-%m-%d'), "
                       "try_strptime(trim(r.\"1.02 Date of Birth\"), '%d/%m/%Y'))::DATE")
                counts = con.execute(
                    "SELECT " + ", ".join(f'count(*) FILTER (WHERE t."{c}" = {dob})' for c in dates)
                    + f' FROM {rel} t JOIN raw.submission_records r ON trim(r."FLS Code") = '
                      't.fls_code AND trim(r."Record ID") = t.record_id').fetchone()
                found += [f"{n} rows whose {c} is the record's date of birth"
                          for c, n in zip(dates, counts) if n]
            if found:
                leaks[f"{schema}.{table}"] = sorted(set(found))[:20]
    finally:
        con.close()
    return leaks


def scan_files(roots: list[Path], ids: Identifiers) -> dict[str, list[str]]:
    leaks = {}
    for root in roots:
        if not root.exists():
            continue
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for p in files:
            if p.suffix in (".duckdb", ".wal", ".parquet"):
                continue
            found = ids.text_leaks(p.read_bytes().decode("utf-8", errors="ignore"))
            if found:
                leaks[str(p)] = found
    return leaks


@pytest.fixture(scope="module")
def ids(built_warehouse, tiny) -> Identifiers:
    return Identifiers([built_warehouse["warehouse"], tiny["warehouse"]])


def test_identifier_patterns_are_found_when_present(ids, tmp_path):
    """The scanner itself works: planted identifiers are found (so a clean scan means clean)."""
    number = next(iter(ids.nhs))
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    postcode = next(iter(ids.postcodes))
    text = f"x {spaced} y {postcode[:-3].lower()} {postcode[-3:].lower()} z 15/03/1948 w"
    found = ids.text_leaks(text)
    assert any(f.startswith("NHS number") for f in found)
    assert any(f.startswith("postcode") for f in found)
    assert "date 15/03/1948" in found
    assert ids.text_leaks("pseudonym 9a8b1234567890cd, 2024-06-01, E92000001") == []
    db = tmp_path / "planted.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA marts; CREATE TABLE marts.t (a VARCHAR, b BIGINT, c DATE)")
    con.execute("INSERT INTO marts.t VALUES (?, ?, DATE '1950-01-02')", [postcode, int(number)])
    con.close()
    leaks = scan_database(db, ids)["marts.t"]
    assert any("NHS number" in x for x in leaks) and any("postcode" in x for x in leaks)
    assert any("dates before" in x for x in leaks)


def test_no_identifier_in_any_table_outside_raw(built_warehouse, tiny, ids):
    for wh in (built_warehouse["warehouse"], tiny["warehouse"]):
        assert scan_database(wh, ids) == {}, wh


def test_no_identifier_in_the_published_tier_the_downloads_or_the_analyst_extract(tiny, ids, tmp_path):
    """Published from the tiny build (the same code as for the national one, in a second); the
    restricted analyst extract (not published) is scanned too: pseudonymised, nothing more."""
    from flsdb.publish.marts import publish_marts
    from flsdb.publish.restricted import write_restricted_extract
    from flsdb.publish.site_downloads import write_downloads

    out = tmp_path / "output"
    published = publish_marts(tiny["warehouse"], out)
    restricted = write_restricted_extract(tiny["warehouse"], out)
    assert scan_database(published, ids) == {}
    assert scan_files([out / "published", restricted], ids) == {}
    parquet = sorted((out / "published").rglob("*.parquet")) + sorted(restricted.glob("*.parquet"))
    assert len(parquet) > 1
    for p in parquet:
        view_db = tmp_path / f"{p.stem}.duckdb"
        con = duckdb.connect(str(view_db))
        con.execute("CREATE SCHEMA pub; CREATE TABLE pub.t AS SELECT * FROM read_parquet(?)",
                    [str(p)])
        con.close()
        assert scan_database(view_db, ids) == {}, p
    written = write_downloads(published, tmp_path / "downloads")
    csvs = [p for p in written if p.suffix == ".csv"]
    for archive in (p for p in written if p.name.endswith(".csv.zip")):   # each table's CSV, zipped
        with zipfile.ZipFile(archive) as opened:
            csvs += [Path(opened.extract(name, tmp_path / "unzipped")) for name in opened.namelist()]
    assert len(csvs) > 10 and scan_files(csvs, ids) == {}
    for p in csvs:                                 # and no spreadsheet formula in any cell
        assert safe_csv.dangerous_cells(p) == [], p


def test_no_identifier_in_dbt_target_logs_or_loader_output(built_warehouse, tiny, ids):
    roots = [built_warehouse["target"], tiny["target"], tiny["logs"], paths.PROJECT_DIR / "logs"]
    assert scan_files(roots, ids) == {}
    for text in (tiny["load_output"], tiny["build_output"]):
        assert ids.text_leaks(text) == []


def test_loader_messages_never_repeat_identifiers(tmp_path):
    """Files built to make the loader talk about identifiers: its output, the file-level reasons
    and the row-level reasons carry none (the raw row stays in raw_line, inside raw)."""
    landing = tmp_path / "landing"
    landing.mkdir()
    registry = tmp_path / "registry.csv"
    registry.write_text("fls_code,fls_name\nRX1,a\n")
    dob, postcode, number = "1948-03-15", "SW1A 1AA", nhs(42)
    spaced = f"{number[:3]} {number[3:6]} {number[6:]}"
    row = good_row(1, **{"1.01 NHS Number": spaced, "1.02 Date of Birth": dob,
                         "1.04 Post Code": postcode})
    (landing / "no_header.csv").write_text(csv_line(row) + "\n")
    (landing / "odd_header.csv").write_text(
        csv_text([row]).replace("2.01 Height", f"{spaced} {dob} {postcode}", 1))
    (landing / "misplaced.csv").write_text(csv_text([
        good_row(2, **{"Date of Death": spaced}),                    # NHS number in a date
        good_row(3, **{"1.01 NHS Number": spaced[:-1] + "0"}),       # fails modulus 11
        good_row(4, **{"1.02 Date of Birth": "1913-01-01"}),         # age over 110
        good_row(5, **{"1.02 Date of Birth": "2030-01-01"}),         # born after fracture
        good_row(6, **{"1.02 Date of Birth": "31/02/1950"}),         # not a date
    ]))
    wh = tmp_path / "wh.duckdb"
    code = ("from flsdb.ingest import load_landing; import sys; r = load_landing(sys.argv[1], "
            "sys.argv[2], registry_path=sys.argv[3], progress=False); print(r.summary_table())")
    proc = subprocess.run([sys.executable, "-c", code, str(landing), str(wh), str(registry)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    con = duckdb.connect(str(wh), read_only=True)
    reasons = [r[0] for r in con.execute("SELECT rejection_reason FROM raw.load_files WHERE "
                                         "rejection_reason IS NOT NULL").fetchall()]
    row_reasons = [r[0] for r in con.execute("SELECT reject_reason FROM "
                                             "raw.submission_rejects").fetchall()]
    raw_lines = " ".join(r[0] for r in con.execute(
        "SELECT raw_line FROM raw.submission_rejects").fetchall())
    con.close()
    assert len(reasons) == 2 and len(row_reasons) == 5
    for text in [output, *reasons, *row_reasons]:
        for needle in (spaced, number, spaced[:-1] + "0", dob, "1913-01-01", "2030-01-01",
                       "31/02/1950", postcode, postcode.replace(" ", "")):
            assert needle not in text, (needle, text)
    assert spaced in raw_lines and "31/02/1950" in raw_lines     # kept, inside raw only
    assert "<10-digit number hidden>" in " ".join(reasons)
    assert "not repeated here as it may be an NHS number" in " ".join(row_reasons)


# ---------------------------------------------------------------------------------------------
# The pseudonymisation key
# ---------------------------------------------------------------------------------------------

def test_pseudonym_key_is_never_written_to_disk(tiny):
    key = tiny_build.KEY.encode()
    written = [tiny["target"], tiny["logs"], tiny["warehouse"],
               Path(f"{tiny['warehouse']}.wal"), tiny["root"] / "output"]
    checked = 0
    for root in written:
        if not root.exists():
            continue
        for p in [root] if root.is_file() else [q for q in root.rglob("*") if q.is_file()]:
            data = p.read_bytes()
            assert key not in data and key.lower() not in data.lower(), p
            checked += 1
    assert checked > 20
    assert key.decode() not in tiny["load_output"] + tiny["build_output"]
    # ...and the key was really used: the pseudonyms differ from the development key's.
    con = duckdb.connect(str(tiny["warehouse"]), read_only=True)
    pseudonym, raw = con.execute(
        "SELECT s.patient_pseudonym, regexp_replace(r.\"1.01 NHS Number\", '[ -]', '', 'g') "
        "FROM staging.stg_fls_db__submission_records s JOIN raw.submission_records r "
        "ON s.file_sha256 = r._file_sha256 AND s.line_number = r._line_number LIMIT 1").fetchone()
    con.close()
    import hashlib
    import hmac
    from flsdb.dbt_duckdb_plugin import DEVELOPMENT_KEY
    expected = hmac.new(tiny_build.KEY.encode(), raw.encode(), hashlib.sha256).hexdigest()
    assert pseudonym.lower() == expected
    assert pseudonym.lower() != hmac.new(DEVELOPMENT_KEY.encode(), raw.encode(),
                                         hashlib.sha256).hexdigest()


def test_missing_key_outside_development_mode_is_a_clear_error(tiny):
    result = tiny_build.run_dbt(
        tiny, ["run", "--select", "stg_fls_db__submission_records",
               "--vars", json.dumps({"data_is_synthetic": False})], key=None)
    assert result.returncode != 0
    assert ("FLSDB_PSEUDONYM_KEY is not set: real data must not be pseudonymised with the "
            "development key") in result.stdout
