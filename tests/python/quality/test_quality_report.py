"""The data-quality report rebuilt for a ten-minute review, and the services' feedback files
(issue 20, parts 2 and 3; src/flsdb/quality/quality_report.py, changes.py, feedback.py).

- the main page of the default build fits in 4,000 px at 1,400 px wide (measured in headless
  Chromium), in plain words, with one count of checks;
- "Since the last approved extract" lists a problem planted as new, one planted as resolved and a
  planted volume jump, read from a small history made from the session warehouse;
- each service's feedback file holds its own problems and nothing of another service.

Reuses the session warehouse of conftest.py (default synthetic data, built once); the planted
cases work on copies.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

from conftest import run_dbt
from flsdb.publish.history import record_published_extract
from flsdb.quality import changes as quality_changes
from flsdb.quality.validate import validate

MAX_HEIGHT = 4_000
WIDTH = 1_400


def quiet(line: str) -> None:
    pass


@pytest.fixture(scope="module")
def report(built_warehouse, tmp_path_factory):
    """The default build validated as `flsdb validate` does (GX included), with no history."""
    root = tmp_path_factory.mktemp("report")
    validation = validate(built_warehouse["warehouse"], root / "quality",
                          built_warehouse["target"] / "run_results.json", progress=quiet,
                          history=root / "no-history.duckdb")
    return {"out": root / "quality", "validation": validation, "root": root}


# ---------------------------------------------------------------------------------------------
# The main page: height, plain words, one count of checks
# ---------------------------------------------------------------------------------------------

def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (make browser installs it: apt-get install -y chromium)")


def page_height(page: Path, work: Path, width: int = WIDTH) -> int:
    """document.documentElement.scrollHeight of `page` at `width` px, in headless Chromium: a
    copy of the page whose script writes the height into the DOM, read back with --dump-dom. The
    window is short, so that the height measured is the content's, not the window's."""
    work.mkdir(parents=True, exist_ok=True)
    measured = work / page.name
    measured.write_text(page.read_text(encoding="utf-8").replace(
        "</body>", "<script>document.body.setAttribute('data-scroll-height', "
                   "String(document.documentElement.scrollHeight));</script></body>"), encoding="utf-8")
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         f"--user-data-dir={work / 'profile'}", f"--window-size={width},600", "--dump-dom",
         measured.as_uri()], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r'data-scroll-height="(\d+)"', done.stdout)
    assert found, done.stdout[:2000]
    return int(found.group(1))


def test_main_page_fits_in_4000_px_at_1400_px_wide(report, tmp_path):
    height = page_height(report["out"] / "report.html", tmp_path / "main")
    print(f"report.html: {height} px tall at {WIDTH} px wide")
    assert height <= MAX_HEIGHT, height
    # the measure follows the content: the details page (every check) is far taller
    assert page_height(report["out"] / "checks.html", tmp_path / "details") > 5 * MAX_HEIGHT


class _Text(HTMLParser):
    """The visible text of a page, and the ids of its elements."""

    def __init__(self):
        super().__init__()
        self.text: list[str] = []
        self.ids: set[str] = set()
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        self.ids |= {value for name, value in attrs if name == "id"}
        if tag in ("style", "script", "title"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


def visible(page: Path) -> tuple[str, set[str]]:
    parsed = _Text()
    parsed.feed(page.read_text(encoding="utf-8"))
    return " ".join(" ".join(parsed.text).split()), parsed.ids


def test_main_page_is_in_plain_words_and_first_says_what_needs_a_decision(report):
    text, ids = visible(report["out"] / "report.html")
    assert {"verdict", "decision", "warnings", "changes", "services", "all-checks"} <= ids
    # the first screen: verdict, then what needs a decision, before any table of detail
    assert text.index("PASS WITH WARNINGS") < text.index("What needs a decision") \
        < text.index("Warnings, largest first") < text.index("Problems by service")
    for internal in (r"\bdbt\b", r"\bgx\b", r"\bdq\b", r"Great Expectations", r"\bexpect_\w+"):
        assert not re.search(internal, text, re.IGNORECASE), internal
    # no code such as wrong_column_count, no check name, no file name: those are on the details pages
    assert not re.search(r"\b[a-z0-9]+_[a-z0-9_]+\b", text), re.findall(r"\b[a-z0-9]+_[a-z0-9_]+\b", text)[:5]
    details, _ = visible(report["out"] / "checks.html")
    assert "dq.rows_rejected" in details and "wrong_column_count" in details


def test_one_count_of_checks_everywhere(report):
    validation = report["validation"]
    data = json.loads((report["out"] / "validation.json").read_text(encoding="utf-8"))
    total = len(data["checks"])
    dbt = sum(c["source"] == "dbt" for c in data["checks"])
    assert total == len(validation.checks) and f"({total} checks," in validation.summary()
    main, _ = visible(report["out"] / "report.html")
    details, _ = visible(report["out"] / "checks.html")
    # the build's own check (dbt.build) is one of the tests of the build, on every page
    assert f"tests of the build {dbt:,} {dbt:,}" in main, main[-600:]
    assert f"all {total:,}" in main
    assert f"{total:,} checks: {dbt:,} tests of the build" in details
    assert f"({dbt:,} checks)" in details
    counted = {n for n in re.findall(r"\b(\d[\d,]*) (?:tests|dbt checks)\b", main + " " + details)}
    assert counted <= {f"{dbt:,}"}, counted


def test_warnings_are_ranked_by_share_and_name_their_services(report):
    validation = report["validation"]
    from flsdb.quality.quality_report import context

    warnings = context(validation)["warnings"]
    assert warnings, "the default data raises warnings"
    shares = [w["impact"]["share"] for w in warnings if w["impact"]["share"] is not None]
    assert shares == sorted(shares, reverse=True)
    for warning in warnings:
        assert warning["impact"]["services"], warning["name"]
    text, _ = visible(report["out"] / "report.html")
    section = text[text.index("Warnings, largest first"):text.index("Since the last approved extract ")]
    for warning in warnings:
        assert warning["impact"]["services"][0] in section
    # the rows-rejected share is the largest share at one service, measured by the model
    con = duckdb.connect(str(validation.warehouse), read_only=True)
    top = con.execute("select fls_code, share_of_service from quality.dq_check_services "
                      "where check_name = 'rows_rejected' order by share_of_service desc limit 1").fetchone()
    con.close()
    rejected = next(c for c in validation.checks if c["name"] == "dq.rows_rejected")
    assert rejected["measured_value"] == pytest.approx(top[1]) and rejected["services"][0] == top[0]


def test_checks_that_fire_on_every_extract_are_information_or_have_a_threshold(report):
    checks = {c["name"]: c for c in report["validation"].checks}
    for name in ("dq.excluded_under_50", "dq.kpi_1_not_met"):
        assert checks[name]["severity"] == "info" and checks[name]["status"] == "pass"
        assert checks[name]["measured_value"] > 0            # measured, and shown
    for name in ("dq.rows_rejected", "dq.field_warnings", "dq.excluded_duplicate_episode"):
        assert checks[name]["threshold_value"] > 0, name
    with open(Path(__file__).parents[3] / "seeds" / "dq_thresholds.csv", newline="", encoding="utf-8") as f:
        seed = list(csv.DictReader(f))
    assert all(row["threshold_rationale"].strip() for row in seed)
    # the GX checks of single values allow the same share as the data-quality check
    postcode = checks["gx.raw_submissions.expect_column_values_to_match_regex[1.04 Post Code]"]
    assert postcode["mostly"] == pytest.approx(1 - checks["dq.field_warnings"]["threshold_value"])
    assert postcode["unexpected_count"] > 0 and postcode["status"] == "pass"


def test_no_history_says_there_is_nothing_to_compare_with(report, tmp_path):
    text, _ = visible(report["out"] / "report.html")
    assert "no earlier approved extract to compare with" in text.lower()
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()                         # a history file with no table
    assert not quality_changes.since_last_approved(report["validation"].warehouse, empty).compared


# ---------------------------------------------------------------------------------------------
# Since the last approved extract
# ---------------------------------------------------------------------------------------------

def test_changes_since_last_approved_list_a_new_and_a_resolved_problem_and_a_volume_jump(
        built_warehouse, tmp_path):
    warehouse = built_warehouse["warehouse"]
    history = tmp_path / "history.duckdb"
    recorded = record_published_extract(warehouse, history)
    con = duckdb.connect(str(history))
    # new: a problem of this extract that the approved one did not have
    new = con.execute("""
        select fls_code, source_file, line_number from dq_problem_history
        where problem_kind = 'row rejected' and fls_code is not null
        order by fls_code, source_file, line_number limit 1""").fetchone()
    con.execute("delete from dq_problem_history where problem_kind = 'row rejected' and fls_code = ? "
                "and source_file = ? and line_number = ?", list(new))
    # resolved: a problem the approved extract had and this one does not
    con.execute("""
        insert into dq_problem_history (publication_id, extract_date, published_at, problem_kind,
            problem_code, fls_code, source_file, line_number, field_name, reason, description)
        select publication_id, extract_date, published_at, 'warning', 'not a number', 'SYN002',
               'SYN002_resolved_planted.csv', 41, '2.01 Height', 'not a number', 'PLANTED RESOLVED'
        from extracts""")
    # a volume jump: SYN003's cohort (its episode KPIs' denominators) was half of today's
    con.execute("update kpi_result_history set denominator = denominator / 2, value_pct = 2 * value_pct "
                "where geography_level = 'fls' and geography_code = 'SYN003' and breakdown = 'all'")
    con.close()

    found = quality_changes.since_last_approved(warehouse, history)
    assert found.approved["publication_id"] == recorded.publication_id
    new_rows = [p for p in found.problems if p["change"] == "new"]
    resolved = [p for p in found.problems if p["change"] == "resolved"]
    assert [(p["fls_code"], p["source_file"], p["line_number"]) for p in new_rows] == [new]
    assert [p["source_file"] for p in resolved] == ["SYN002_resolved_planted.csv"]
    jumped = [v for v in found.volumes if v["is_above_threshold"]]
    assert [v["fls_code"] for v in jumped] == ["SYN003"]
    assert jumped[0]["change_share"] == pytest.approx(1.0)          # doubled
    restated = {(k["geography_code"], k["change"]) for k in found.kpis}
    assert ("SYN003", "restated") in restated                       # its values moved too
    assert all(code == "SYN003" for code, _ in restated if code.startswith("SYN"))

    out = tmp_path / "quality"
    validate(warehouse, out, built_warehouse["target"] / "run_results.json", run_gx=False,
             progress=quiet, history=history)
    text, _ = visible(out / "report.html")
    section = text[text.index("Since the last approved extract "):text.index("Problems by service")]
    assert f"publication {recorded.publication_id} of the extract history" in section
    assert "Problems: 1 new, 1 resolved" in section
    assert f"new {new[0]} row rejected 1" in section and "resolved SYN002 value not usable 1" in section
    assert "Volume: 1 service moved by more than 20%" in section and "SYN003" in section
    assert "+100.0%" in section
    decision = text[text.index("What needs a decision"):text.index("Warnings, largest first")]
    assert "1 new problem, 1 resolved; 1 service whose volume moved by more than 20%" in decision
    details = (out / "changes.html").read_text(encoding="utf-8")
    assert "SYN002_resolved_planted.csv" in details and new[1] in details
    # the history was only read
    con = duckdb.connect(str(history), read_only=True)
    assert con.execute("select count(*) from extracts").fetchone()[0] == 1
    con.close()


# ---------------------------------------------------------------------------------------------
# Feedback files: one per service, its own rows only
# ---------------------------------------------------------------------------------------------

def test_each_feedback_file_holds_only_its_own_services_rows(built_warehouse, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built_warehouse["warehouse"], copy)
    con = duckdb.connect(str(copy))
    services = dict(con.execute("select fls_code, fls_name from marts.dim_fls").fetchall())
    con.execute("""
        insert into quality.dq_problems
        select 'row rejected', 'invalid_date', fls_code, 'PLANTED-' || fls_code || '.csv', 7,
               '1.09 Date Index Frac Diagnosed', 'planted', 'PLANTED problem of ' || fls_code,
               'Date that is not a real date', 'Correct the date and send the record again.'
        from marts.dim_fls""")
    con.close()
    # the models that count the problems, on the planted ones
    counted = run_dbt(["run", "--select", "dq_check_services", "dq_checks"], copy,
                      built_warehouse["landing"], tmp_path / "target")
    assert counted.returncode == 0, counted.stdout[-3000:]
    out = tmp_path / "quality"
    validate(copy, out, built_warehouse["target"] / "run_results.json", run_gx=False,
             progress=quiet, history=tmp_path / "no-history.duckdb")
    folder = out / "feedback"
    written = {p.stem for p in folder.glob("*.html")}
    assert written == {p.stem for p in folder.glob("*.csv")}
    assert written == set(services), set(services) ^ written          # every service, one each
    con = duckdb.connect(str(copy), read_only=True)
    expected = dict(con.execute("select fls_code, count(*) from quality.dq_problems "
                                "where fls_code is not null group by fls_code").fetchall())
    con.close()
    for code in sorted(written):
        with (folder / f"{code}.csv").open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert {r["fls_code"] for r in rows} == {code}
        assert len(rows) == expected[code]                            # every problem of its own
        assert [r["source_file"] for r in rows if r["source_file"].startswith("PLANTED-")] == \
            [f"PLANTED-{code}.csv"]
        assert all(r["what_to_do"].strip() and r["line_number"] for r in rows)
        html = (folder / f"{code}.html").read_text(encoding="utf-8")
        assert f"PLANTED-{code}.csv" in html and services[code] in html
        for text in (html, (folder / f"{code}.csv").read_text(encoding="utf-8")):
            others = {c for c in services if c != code and re.search(rf"\b{c}\b", text)}
            assert not others, (code, sorted(others)[:5])
            names = {n for c, n in services.items() if c != code and n in text}
            assert not names, (code, sorted(names)[:5])
    # the main report links every service's file
    main = (out / "report.html").read_text(encoding="utf-8")
    assert all(f'href="feedback/{code}.html"' in main for code in written)


def test_feedback_of_a_service_with_no_problem_says_so_and_old_files_go(report, tmp_path):
    from dataclasses import replace

    from flsdb.quality import feedback

    validation = report["validation"]
    code = min(p["fls_code"] for p in validation.facts["problems"] if p["fls_code"])
    folder = tmp_path / "feedback"
    folder.mkdir()
    (folder / "SYN999.html").write_text("last month's file", encoding="utf-8")
    resolved = replace(validation, facts={**validation.facts, "problems": [
        p for p in validation.facts["problems"] if p["fls_code"] != code]})
    written = feedback.write(resolved, folder)
    html = (folder / f"{code}.html").read_text(encoding="utf-8")
    assert "No problem was found in your records." in html
    with (folder / f"{code}.csv").open(newline="", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == []
    assert not (folder / "SYN999.html").exists() and folder / f"{code}.html" in written
