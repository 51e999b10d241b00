"""The data-quality models end to end on a small hostile landing set (issues 12 and 13):

- docs/specification/submission-format.md, "Versions and duplicates": versions are ranked among accepted rows
  only. When the newest version of a record is rejected, the previous accepted version stands, and the report
  lists the record as "newer version rejected" with the file and line of the rejected row;
- no value from a submission reaches any HTML under output/quality unescaped: a Record ID, a file
  name and coded / numeric cells holding `<img src=x onerror=...>` or `"><script>` are counted or
  shown as text in report.html and never rendered by the GX Data Docs.
"""

from __future__ import annotations

import csv
import sys
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest

import tiny_build
from flsdb import paths
from flsdb.quality.validate import validate
from shared_builds import SharedBuild
from submission_rows import csv_text, good_row

pytestmark = pytest.mark.warehouse       # builds a warehouse of its own

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = '"><script>alert(2)</script>'
SVG_FILE = 'x"><svg onload=alert(3)>.csv'     # a file name: no slash possible
HOSTILE = (IMG, SCRIPT, "<svg onload=alert(3)>", "<img src=x", "alert(2)</script>")


def _make(shared: SharedBuild, root: Path) -> dict:
    """The warehouse (validated by the fixture below)."""
    flsdb = str(Path(sys.executable).with_name("flsdb"))

    def _load(landing: Path, warehouse: Path, build: dict) -> None:
        done = shared.run("load", [flsdb, "load", "--landing", str(landing), "--warehouse", str(warehouse)],
                          tiny_build.dbt_env(warehouse, landing), paths.PROJECT_DIR, root / "steps" / f"load{len(shared.steps)}.log")
        assert done.returncode == 0, done.stdout

    build = {"root": root, "landing": root / "landing", "warehouse": root / "hostile.duckdb",
             "target": root / "target", "logs": root / "logs"}
    generated = shared.run("generate", [flsdb, "generate", "--years", "2024", "--scale", "0.02", "--seed", "11",
                                        "--clean", "--out", str(build["landing"])],
                           tiny_build.dbt_env(build["warehouse"], build["landing"]), paths.PROJECT_DIR,
                           root / "steps" / "generate.log")
    assert generated.returncode == 0, generated.stdout[-5000:]
    with open(paths.PROJECT_DIR / "seeds" / "fls_registry.csv", newline="") as handle:
        fls = next(csv.DictReader(handle))["fls_code"]
    submitted = build["landing"] / "hostile"
    submitted.mkdir()
    first = [
        good_row(1, **{"FLS Code": fls, "Record ID": IMG, "Last Updated": "2024-11-01T10:00:00",
                       "1.09 Date Index Frac Diagnosed": "2024-06-01"}),
        good_row(2, **{"FLS Code": fls, "Record ID": "Q2", "1.03 Gender": SCRIPT,
                       "2.01 Height": IMG, "1.04 Post Code": SCRIPT,
                       "1.09 Date Index Frac Diagnosed": "2024-06-01"}),
    ]
    (submitted / SVG_FILE).write_text(csv_text(first), encoding="utf-8")
    _load(build["landing"], build["warehouse"], build)
    # a later file: a newer version of the first record, rejected (an impossible fracture date)
    newer = [good_row(1, **{"FLS Code": fls, "Record ID": IMG, "Last Updated": "2024-12-01T10:00:00",
                            "1.09 Date Index Frac Diagnosed": "31/02/2024"})]
    (submitted / "later.csv").write_text(csv_text(newer), encoding="utf-8")
    _load(build["landing"], build["warehouse"], build)
    result = shared.run("dbt build", tiny_build.dbt_command(["build"], build["target"], build["logs"]),
                        tiny_build.dbt_env(build["warehouse"], build["landing"]), paths.PROJECT_DIR,
                        root / "steps" / "dbt_build.log")
    tiny_build.assert_built(build, result)
    return {**build, "fls": fls}


BUILD = SharedBuild("quality problems (2024 at 2%, clean, hostile rows)", _make, fixture="hostile", module=__file__)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """Built once, in the background when the session starts (shared_builds.py); validated here."""
    build = BUILD.get(lambda: tmp_path_factory.mktemp("hostile"))
    out = build["root"] / "quality"
    validation = validate(build["warehouse"], out, build["target"] / "run_results.json",
                          progress=lambda line: None, history=build["root"] / "no-history.duckdb")
    return {**build, "out": out, "validation": validation}


def test_newer_version_rejected_keeps_the_previous_version_and_is_listed(hostile):
    con = duckdb.connect(str(hostile["warehouse"]), read_only=True)
    kept = con.execute("select source_file, line_number, fracture_date from marts.fct_episodes "
                       "where fls_code = ? and record_id = ?", [hostile["fls"], IMG]).fetchall()
    listed = con.execute("select fls_code, source_file, line_number, problem_code, description "
                         "from quality.dq_problems where problem_kind = 'newer version rejected'"
                         ).fetchall()
    rejected = con.execute("select count(*) from quality.dq_problems where problem_kind = 'row rejected' "
                           "and source_file = 'hostile/later.csv' and line_number = 2").fetchone()[0]
    measured = con.execute("select measured_value, passed from quality.dq_checks "
                           "where check_name = 'newer_version_rejected'").fetchone()
    con.close()
    assert [(f, n, str(d)) for f, n, d in kept] == [(f"hostile/{SVG_FILE}", 2, "2024-06-01")]
    assert len(listed) == 1
    fls, source_file, line, code, description = listed[0]
    assert (fls, source_file, line, code) == (hostile["fls"], "hostile/later.csv", 2, "invalid_date")
    assert f"hostile/{SVG_FILE} line 2" in description         # the version that stands
    assert rejected == 1                                         # and the reject itself
    assert measured == (1.0, False)
    problems = (hostile["out"] / "problems.csv").read_text(encoding="utf-8")
    assert "newer version rejected" in problems and "hostile/later.csv" in problems
    assert "Newer versions rejected" in (hostile["out"] / "report.html").read_text(encoding="utf-8")
    feedback = (hostile["out"] / "feedback" / f"{hostile['fls']}.html").read_text(encoding="utf-8")
    assert "Newer version rejected" in feedback and "hostile/later.csv" in feedback


class _Tags(HTMLParser):
    """Every element and event-handler attribute a browser would create from a page."""

    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.handlers: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        # GX's own pages have onclick handlers of their own; a submitted value would carry alert(
        self.handlers += [(tag, name) for name, value in attrs
                          if name.lower().startswith("on") and "alert(" in (value or "")]


def test_no_submitted_value_reaches_any_html_unescaped(hostile):
    pages = sorted(hostile["out"].rglob("*.htm*"))
    assert hostile["out"] / "report.html" in pages and len(pages) > 3   # report + Data Docs
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for value in HOSTILE:
            assert value not in text, (page, value)
        parsed = _Tags()
        parsed.feed(text)
        assert parsed.handlers == [], (page, parsed.handlers)
        assert "svg" not in parsed.tags and "img" not in parsed.tags, page
    # the file name is shown, as text, in the service's feedback file
    feedback = (hostile["out"] / "feedback" / f"{hostile['fls']}.html").read_text(encoding="utf-8")
    assert "x&#34;&gt;&lt;svg onload=alert(3)&gt;.csv" in feedback
    # GX counted the hostile cells of the sample (the raw table is small: sampled whole)...
    checks = {c["name"]: c for c in hostile["validation"].checks}
    gender = checks["gx.raw_submissions.expect_column_values_to_be_in_set[1.03 Gender]"]
    assert gender["unexpected_count"] >= 1
    # ...and its Data Docs name no value of them
    docs = " ".join(p.read_text(encoding="utf-8") for p in (hostile["out"] / "data_docs").rglob("*.html"))
    assert "alert(" not in docs
