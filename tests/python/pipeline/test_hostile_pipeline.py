"""Issue 12, "Done when": a set of hostile files goes through `flsdb load`, `build`, `validate`,
`approve`, `publish` and `report` with no traceback, every row and file accounted for, and no
identifier in anything under the published tier or the site.

Issue 19, round 3 (at the end of this file): the publication gate and the extract history under
attack, on a validated copy of the tiny build (deployment.py): a damaged, busy, read-only or
misplaced history changes nothing; `kill -9` during a publication leaves nothing broken and the
next publication cleans up; three publications at once give one publication and two "busy";
a report made while publications run reads one extract whole. The walk-rounds of the gate itself
are in test_gate.py.

The hostile files are made here from a small synthetic landing set, one per class of
docs/reliability.md, with bytes of their own (not the ones the unit tests of the loader use):
identifiers planted in Record IDs and file names, a value meant to become live HTML, non-ASCII and
repeated-digit NHS numbers, a stray single byte in a UTF-8 file, a future Last Updated, padded and
worded coded answers, hidden and underscore files, a symlink loop and an unreadable folder.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import deployment as dep
from flsdb import paths
from flsdb.publish import history as hist
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
        steps["approve"] = _cli(["approve", "--reviewer", "Hostile Input Reviewer", "--yes"], env)
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


# ------------------------------------------------- round 3 (issue 19): the gate and the history

@pytest.fixture
def signed(tmp_path_factory) -> dep.Deployment:
    """The validated tiny deployment, approved by a named reviewer, nothing published yet."""
    d = dep.fresh(tmp_path_factory)
    d.approve("Dr Grace Hopper")
    return d


def _history_state(history: Path):
    if history.is_dir():
        return sorted(p.name for p in history.iterdir())
    return history.read_bytes() if history.exists() else None


# fault -> (exit code of publish, words, exit code of `flsdb history`)
HISTORY_FAULTS = {"empty": (6, "empty file (0 bytes)", 6), "truncated": (6, "truncated", 6),
                  "garbage": (6, "unreadable, truncated or corrupt", 6),
                  "folder": (8, "is a folder", 8),          # the settings check, at start-up
                  "busy": (4, "is busy", 4), "read_only": (5, "cannot be written", 0)}


@pytest.mark.parametrize("fault", list(HISTORY_FAULTS))
def test_publish_with_a_damaged_busy_or_read_only_history_changes_nothing(signed, fault, tmp_path):
    d, extra, holder, mount = signed, {}, None, None
    if fault == "read_only":
        mount = tmp_path / "ro"
        mount.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        extra = {"FLSDB_HISTORY": str(mount / "flsdb_history.duckdb")}
    history = Path(extra.get("FLSDB_HISTORY", d.history))
    try:
        assert d.cli("publish", env=extra).returncode == 0
        tier = d.tier_state()
        if fault == "empty":
            history.write_bytes(b"")
        elif fault == "truncated":
            with open(history, "r+b") as handle:
                handle.truncate(history.stat().st_size // 2)
        elif fault == "garbage":
            history.write_bytes(os.urandom(300_000))
        elif fault == "folder":
            history.unlink()
            history.mkdir()
        elif fault == "busy":
            holder = subprocess.Popen([sys.executable, "-c", ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                                       "print('ready', flush=True); time.sleep(120)"), str(history)],
                                      stdout=subprocess.PIPE, text=True)
            assert holder.stdout.readline().strip() == "ready"
        else:
            assert subprocess.run(["mount", "-o", "remount,ro", str(mount)]).returncode == 0
        before = _history_state(history)
        code, words, history_code = HISTORY_FAULTS[fault]
        message = dep.refused(d.cli("publish", env=extra), code, words,
                              "Nothing was changed" if fault == "folder" else "Nothing was published")
        if code == 6:
            assert "Restore it from your backup" in message and "flsdb load" not in message
        assert d.tier_state() == tier                  # tier, restricted extract, approval: untouched
        assert _history_state(history) == before
        listed = d.cli("history", env=extra)
        if history_code:
            dep.refused(listed, history_code, words)
        else:
            assert listed.returncode == 0 and "1 publication(s)" in listed.stdout
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        if mount is not None:
            subprocess.run(["umount", str(mount)], capture_output=True)


def test_an_empty_or_table_less_history_never_gives_an_unexpected_error(signed):
    pytest.importorskip("vl_convert")
    d = signed
    assert d.cli("publish").returncode == 0
    d.history.write_bytes(b"")
    for command in ("history", "report"):
        dep.refused(d.cli(command), 6, "empty file (0 bytes)", "Restore it from your backup")
    d.history.unlink()
    duckdb.connect(str(d.history)).close()          # a history file with no tables: empty
    listed = d.cli("history")
    assert listed.returncode == 0 and "No publication recorded" in listed.stdout
    assert d.cli("report").returncode == 0
    assert d.cli("publish").returncode == 0
    assert [e["publication_id"] for e in hist.list_extracts(d.history)] == [1]


def test_kill_during_publish_leaves_nothing_broken_and_the_next_publish_cleans_up(signed):
    """SIGKILL when each temporary part of a publication appears (the new DuckDB file, its
    Parquet version, the restricted extract's copy, the history) and at fixed delays: after each
    kill the tier is absent or whole and the history answers; the next publication removes the
    leftovers and publishes."""
    d = signed
    published = d.output / "published"

    def new(folder: Path, before: set[str], prefix: str = "") -> bool:
        return folder.is_dir() and any(n.startswith(prefix) for n in set(os.listdir(folder)) - before)

    triggers = {
        "tier database": lambda before, elapsed: new(published, before["published"], ".flsdb_published.duckdb.tmp-"),
        "parquet version": lambda before, elapsed: new(published, before["published"], ".parquet-2"),
        "restricted copy": lambda before, elapsed: new(d.output, before["output"], ".restricted_analyst_extract-tmp-"),
        "history": lambda before, elapsed: new(d.history.parent, before["history"]),
        **{f"{delay} s": (lambda before, elapsed, delay=delay: elapsed >= delay) for delay in (1.5, 2.5, 3.5)},
    }
    seen_leftovers, outcomes = set(), []
    for name, trigger in triggers.items():
        before = {"published": set(os.listdir(published)) if published.is_dir() else set(),
                  "output": set(os.listdir(d.output)),
                  "history": set(os.listdir(d.history.parent)) if d.history.parent.is_dir() else set()}
        writer = d.popen("publish")
        started = time.monotonic()
        while writer.poll() is None:
            if trigger(before, time.monotonic() - started):
                writer.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        writer.communicate()
        outcomes.append((name, writer.returncode))
        seen_leftovers |= {p.name.split("-")[0] for p in list(published.glob(".*tmp-*")) + list(d.output.glob(".*-tmp-*"))}
        if (published / "manifest.json").exists():     # a tier was published: it is whole
            manifest = json.loads((published / "manifest.json").read_text())
            assert (published / "parquet").resolve().is_dir(), name
            assert manifest["database_sha256"] == dep.sha256(published / "flsdb_published.duckdb"), name
        assert hist.check_history(d.history, writing=False) in ("absent", "empty", "ready")
        assert d.cli("history").returncode == 0, name
    assert sum(code == -signal.SIGKILL for _, code in outcomes) >= 4, outcomes
    assert seen_leftovers, "no kill left anything to clean up: not a test of the clean-up"
    done = d.cli("publish")
    assert done.returncode == 0, done.stderr[-3000:]
    dep.whole_tier(d)
    assert len(hist.list_extracts(d.history)) == 1
    assert not list(d.history.parent.glob(".*new-*"))


def test_three_publishes_at_once_one_publishes_the_others_say_busy(signed):
    d = signed
    for round_number in range(3):
        writers = [d.popen("publish") for _ in range(3)]
        results = [(w.wait(timeout=600), *w.communicate()) for w in writers]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 4, 4], [(c, e[-500:]) for c, _, e in results]
        for code, out, err in results:
            assert "Traceback" not in err
            if code == 4:
                assert [line for line in err.splitlines() if line.startswith("Error:")] == [
                    next(line for line in err.splitlines() if line.startswith("Error: Publication busy:"))]
        dep.whole_tier(d)
        assert len(hist.list_extracts(d.history)) == 1        # the same extract, recorded once


def test_a_report_made_while_extracts_are_published_reads_one_extract(signed, tmp_path):
    """Extract B is extract A with one more record submitted (1,660 against 1,661 in issue 19). A
    thread publishes A, B, A, ... while `flsdb report` runs twice; each report's page at a glance
    and its downloads give the same number."""
    pytest.importorskip("vl_convert")
    a = signed
    b_warehouse = tmp_path / "b" / "flsdb.duckdb"
    b_warehouse.parent.mkdir()
    b_warehouse.write_bytes(a.warehouse.read_bytes())
    with duckdb.connect(str(b_warehouse)) as con:
        con.execute("update publication.published_records_submitted set records_submitted = records_submitted + 1")
    b_quality = tmp_path / "b" / "quality"
    assert a.cli("validate", "--warehouse", str(b_warehouse), "--output", str(b_quality), "--run-results",
                 str(a.tiny["target"] / "run_results.json")).returncode == 0
    assert a.cli("approve", "--reviewer", "Dr Ada Lovelace", "--yes", "--validation",
                 str(b_quality / "validation.json")).returncode == 0
    assert a.cli("publish").returncode == 0
    extracts = ([], ["--validation", str(b_quality / "validation.json"), "--warehouse", str(b_warehouse)])
    stop, codes = threading.Event(), []

    def publish_alternately() -> None:
        while not stop.is_set():
            for args in extracts:
                codes.append(a.cli("publish", *args).returncode)
                time.sleep(0.5)

    publisher = threading.Thread(target=publish_alternately)
    publisher.start()
    counts = []
    try:
        for _ in range(2):
            reported = a.cli("report")
            assert reported.returncode == 0, reported.stderr[-3000:]
            index = (a.output / "site" / "index.html").read_text(encoding="utf-8")
            shown = {int(y): int(n.replace(",", "")) for y, n in
                     re.findall(r'id="records-(\d+)">\d+<strong>([\d,]+)</strong>', index)}
            downloads = a.output / "site" / "downloads"
            csv_counts = pd.read_csv(downloads / "published_records_submitted.csv.zip")
            parquet_counts = pd.read_parquet(downloads / "published_records_submitted.parquet")
            assert shown
            for year, count in shown.items():
                assert csv_counts.loc[csv_counts["audit_year"] == year, "records_submitted"].item() == count
                assert parquet_counts.loc[parquet_counts["audit_year"] == year, "records_submitted"].item() == count
            counts.append(shown)
    finally:
        stop.set()
        publisher.join()
    assert codes.count(0) >= 2 and set(codes) <= {0}, codes


def test_only_leftovers_are_removed_and_only_by_the_one_publisher(tmp_path):
    """flsdb.publish.lock on a hand-made output folder: what a killed publisher leaves goes; the
    published version, the one before it, the tier and the locks stay; a second publisher is
    busy at once; a reader waits for the publisher."""
    from flsdb.publish import lock

    out = tmp_path / "output"
    published = out / "published"
    for folder in (published / ".parquet-20250101T000000-aaaa", published / ".parquet-20250201T000000-bbbb",
                   published / ".parquet-20250301T000000-cccc", out / ".restricted_analyst_extract-tmp-1",
                   out / ".restricted_analyst_extract-old-2", out / "restricted_analyst_extract"):
        folder.mkdir(parents=True)
        (folder / "x.parquet").write_bytes(b"x")
    (published / "parquet").symlink_to(".parquet-20250201T000000-bbbb")
    (published / "manifest.json").write_text(json.dumps(
        {"parquet_version": ".parquet-20250201T000000-bbbb", "previous_parquet_version": ".parquet-20250101T000000-aaaa"}))
    for name in ("flsdb_published.duckdb", ".flsdb_published.duckdb.tmp-1", ".flsdb_published.duckdb.tmp-1.wal",
                 ".manifest.json.tmp-3"):
        (published / name).write_bytes(b"x")
    (published / ".parquet-link-4").symlink_to(".parquet-20250301T000000-cccc")
    (out / ".approval.json.tmp-5").write_text("{}")

    with lock.exclusive(out):
        with pytest.raises(lock.PublicationBusy, match=f"process {os.getpid()}"), lock.exclusive(out):
            pass
        removed = {p.name for p in lock.remove_leftovers(out, "restricted_analyst_extract", "flsdb_published.duckdb")}
        waited = []

        def read() -> None:
            with lock.shared(out, on_wait=waited.append):
                pass

        reader = threading.Thread(target=read)
        reader.start()
        time.sleep(0.5)
        assert waited and reader.is_alive()            # the reader waits for the publisher
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert removed == {".parquet-20250301T000000-cccc", ".flsdb_published.duckdb.tmp-1",
                       ".flsdb_published.duckdb.tmp-1.wal", ".manifest.json.tmp-3", ".parquet-link-4",
                       ".restricted_analyst_extract-tmp-1", ".restricted_analyst_extract-old-2",
                       ".approval.json.tmp-5"}
    assert sorted(p.name for p in published.iterdir()) == [
        ".parquet-20250101T000000-aaaa", ".parquet-20250201T000000-bbbb", ".publish.lock", ".tier.lock",
        "flsdb_published.duckdb", "manifest.json", "parquet"]
    assert sorted(p.name for p in out.iterdir()) == ["published", "restricted_analyst_extract"]
