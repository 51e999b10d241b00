"""Issue 12, "Done when": a set of hostile files goes through `flsdb load`, `build`, `validate`,
`publish` and `report` with no traceback, every row and file accounted for, and no identifier in
anything under the published tier or the site.

The hostile files are made here from a small synthetic landing set, one per class of
docs/reliability.md, with bytes of their own (not the ones the unit tests of the loader use):
identifiers planted in Record IDs and file names, a value meant to become live HTML, non-ASCII and
repeated-digit NHS numbers, a stray single byte in a UTF-8 file, a future Last Updated, padded and
worded coded answers, hidden and underscore files, a symlink loop and an unreadable folder.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import duckdb
import pytest

from flsdb import paths
from shared_builds import SharedBuild

pytestmark = pytest.mark.warehouse       # builds a warehouse of its own

# Planted identifiers: a valid NHS number (modulus 11), a postcode and a date of birth. None of them
# may appear anywhere under the published tier or the site.
PLANTED_NHS_NUMBER = "4010232137"
PLANTED_POSTCODE = "SW1A 2AA"
PLANTED_DOB = "14/03/1941"
LIVE_HTML = '<img src=x onerror="alert(12)">'


def _rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _write(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([header, *rows])
    path.write_bytes(buffer.getvalue().encode(encoding))


def _plant_hostile_files(landing: Path) -> None:
    template = min(p for p in landing.glob("SYN0*.csv"))
    header, rows = _rows(template)
    column = {name: index for index, name in enumerate(header)}
    base = [list(row) for row in rows[:6]]

    def variant(index: int, **changes: str) -> list[str]:
        row = list(base[index % len(base)])
        row[column["Record ID"]] = f"HOSTILE-{index}"
        for name, value in changes.items():
            row[column[name]] = value
        return row

    # Identifiers inside a Record ID and a file name; live HTML in a Record ID.
    _write(landing / f"SYN001_{PLANTED_POSTCODE}_{PLANTED_DOB.replace('/', '-')}.csv", header, [
        variant(1, **{"Record ID": f"ID-{PLANTED_NHS_NUMBER}"}),
        variant(2, **{"Record ID": f"born {PLANTED_DOB} at {PLANTED_POSTCODE}"}),
        variant(3, **{"Record ID": LIVE_HTML}),
    ])
    # NHS numbers in other scripts' digits and repeated digits: row rejects.
    _write(landing / "SYN001_digits.csv", header, [
        variant(4, **{"1.01 NHS Number": "\u0664\u0660\u0661\u0660\u0662\u0663\u0662\u0661\u0663\u0667"}),
        variant(5, **{"1.01 NHS Number": "\u2474" + PLANTED_NHS_NUMBER[1:]}),
        variant(6, **{"1.01 NHS Number": "3333333333"}),
    ])
    # A UTF-8 file with one stray single byte (a Latin-1 e-acute) in a Record ID.
    good = io.StringIO()
    csv.writer(good, lineterminator="\n").writerows([header, variant(7, **{"Record ID": "Zoë-7"})])
    (landing / "SYN001_stray_byte.csv").write_bytes(
        good.getvalue().encode("utf-8").replace(b"Zo\xc3\xab-7", b"Zo\xc3\xab-7\xe9"))
    # A Last Updated far in the future; coded answers padded and written with their wording.
    _write(landing / "SYN001_future_and_padded.csv", header, [
        variant(8, **{"Last Updated": "01/01/2099 10:00"}),
        variant(9, **{"1.03 Gender": "\t" + base[3][column["1.03 Gender"]] + "\u00a0\r"}),
    ])
    # Names the loader skips or cannot read: each must be recorded with a reason.
    _write(landing / ".hidden_export.csv", header, [variant(10)])
    _write(landing / "_draft_export.csv", header, [variant(11)])
    (landing / "loop").symlink_to(landing / "loop")
    locked = landing / "locked_folder"
    locked.mkdir()
    _write(locked / "SYN001_locked.csv", header, [variant(12)])


def _make(shared: SharedBuild, root: Path) -> dict:
    flsdb = str(Path(sys.executable).with_name("flsdb"))

    def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
        done = shared.run(args[0], [flsdb, *args], env, paths.PROJECT_DIR, root / "steps" / f"{args[0]}.log")
        return subprocess.CompletedProcess(done.args, done.returncode, done.stdout, "")

    landing = root / "landing"
    generated = shared.run("generate", [flsdb, "generate", "--years", "2024", "--scale", "0.02", "--seed",
                                        "1212", "--clean", "--out", str(landing)],
                           dict(os.environ), paths.PROJECT_DIR, root / "steps" / "generate.log")
    assert generated.returncode == 0, generated.stdout[-5000:]
    _plant_hostile_files(landing)
    env = dict(os.environ)
    env.update({
        "FLSDB_WAREHOUSE": str(root / "warehouse.duckdb"),
        "FLSDB_LANDING": str(landing),
        "FLSDB_OUTPUT": str(root / "output"),
        "FLSDB_HISTORY": str(root / "history.duckdb"),
        "FLSDB_POSTCODE_LOOKUP": str(landing / "_reference" / "synthetic_nspl_postcode_lookup.csv"),
        "DBT_PROFILES_DIR": str(paths.PROJECT_DIR),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
        "DO_NOT_TRACK": "1",
    })
    env.pop("FLSDB_PSEUDONYM_KEY", None)
    os.chmod(landing / "locked_folder", 0)
    try:
        steps = {"load": _cli(["load"], env), "build": _cli(["build"], env)}
        steps["validate"] = _cli(["validate", "--run-results", str(root / "target" / "run_results.json")], env)
        steps["publish"] = _cli(["publish"], env)
        steps["report"] = _cli(["report"], env)
    finally:
        os.chmod(landing / "locked_folder", 0o755)
    return {"root": root, "landing": landing, "steps": steps}


BUILD = SharedBuild("hostile pipeline (2024 at 2%, clean, hostile files)", _make, fixture="hostile_run",
                    module=__file__)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    """Made once, in the background when the session starts (shared_builds.py)."""
    return BUILD.get(lambda: tmp_path_factory.mktemp("hostile_pipeline"))


def test_every_step_runs_with_no_traceback(hostile_run):
    for step, proc in hostile_run["steps"].items():
        assert "Traceback" not in proc.stdout + proc.stderr, (step, proc.stderr[-3000:])
        assert proc.returncode == 0, (step, proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])


def test_every_file_and_row_is_accounted_for(hostile_run):
    landing = hostile_run["landing"]
    con = duckdb.connect(str(hostile_run["root"] / "warehouse.duckdb"), read_only=True)
    try:
        recorded = {row[0] for row in con.execute("select source_file from raw.load_files").fetchall()}
        read, accepted, rejected = con.execute(
            "select sum(rows_read), sum(rows_accepted), sum(rows_rejected) from raw.load_files").fetchone()
    finally:
        con.close()
    assert read == accepted + rejected
    on_disk = {p.relative_to(landing).as_posix() for p in landing.rglob("*")
               if p.is_file() and not p.relative_to(landing).as_posix().startswith("_reference/")}
    on_disk |= {"loop", "locked_folder"}
    missing = {name for name in on_disk if not any(name == r or r.startswith(name) for r in recorded)}
    assert not missing, missing


def _published_text(root: Path) -> str:
    """Every value of every published table, and every file of the published tier and the site."""
    texts = []
    published = root / "output" / "published"
    for database in published.glob("*.duckdb"):
        con = duckdb.connect(str(database), read_only=True)
        try:
            for schema, table in con.execute(
                    "select table_schema, table_name from information_schema.tables").fetchall():
                frame = con.execute(f'select * from "{schema}"."{table}"').fetchdf()
                texts.append(frame.to_csv(index=False))
        finally:
            con.close()
    for folder in (published, root / "output" / "site"):
        for path in folder.rglob("*"):
            if path.is_file() and path.suffix != ".duckdb":
                texts.append(path.name)
                texts.append(path.read_bytes().decode("utf-8", errors="replace"))
            if path.is_file() and path.suffix == ".zip":      # the site's downloads: zipped CSVs
                with zipfile.ZipFile(path) as archive:
                    texts += [archive.read(name).decode("utf-8", errors="replace") for name in archive.namelist()]
    return "\n".join(texts)


def test_no_identifier_or_lineage_reaches_the_published_tier_or_the_site(hostile_run):
    text = _published_text(hostile_run["root"])
    assert text, "nothing was published"
    for planted in (PLANTED_NHS_NUMBER, PLANTED_POSTCODE, PLANTED_DOB, PLANTED_DOB.replace("/", "-"),
                    "HOSTILE-", "SYN001_digits.csv"):
        assert planted not in text, planted
    assert LIVE_HTML not in text


def test_no_submission_value_is_live_html_in_the_quality_report(hostile_run):
    for path in (hostile_run["root"] / "output" / "quality").rglob("*.html"):
        assert LIVE_HTML not in path.read_text(encoding="utf-8", errors="replace"), path
