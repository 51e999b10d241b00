"""The KPI seed (seeds/kpi_definitions.csv) drives every KPI list in models/, macros/ and src/ (issue 13).

- No model, macro, model yml, Python module or site template writes out a KPI count, a KPI range or
  a list of KPI numbers: SQL loops over macros/kpi_definitions.sql, which reads the seed, Python
  and the site read reference.kpi_definitions / publication.published_kpi_definitions. The one
  exception is the flag logic, int_episodes_kpi_flagged, where each KPI's rule is written by hand
  (its three columns).
- The semantic layer is generated from the seed (python -m flsdb.semantic_layer) and must not drift.
- Adding a KPI the documented way (DEVELOPERS.md "Adding or changing a KPI") in a temporary copy of
  the project: it is built, validated, published and reported, and found at every level, in the
  quality report and on the site, while the other KPIs' results are unchanged.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

import tiny_build
from shared_builds import SharedBuild
from flsdb import paths, semantic_layer
from flsdb.publish.kpi_words import kpi_words

FLAGS_MODEL = "models/intermediate/int_episodes_kpi_flagged.sql"
GENERATED = "models/marts/_marts__semantic_models.yml"

# Each pattern is a way a KPI list or count has been written out by hand before.
WRITTEN_OUT_KPI_LISTS: dict[str, re.Pattern[str]] = {
    "a KPI range (range(4, 12))": re.compile(r"\brange\(\s*\d+\s*,\s*1[0-3]\s*\)"),
    "kpi_number compared with a literal": re.compile(
        r"\bkpi_number[\"'\]]*\s*(?:not\s+)?(?:in\s*[(\[]\s*\d|between\s+\d|\.isin\(\s*[\[(]\s*\d"
        r"|(?:==|=|!=|<>|<=|>=|<|>)\s*\d)", re.IGNORECASE),
    "a KPI count as a limit (max_value: 11)": re.compile(r"\bmax_value\s*[:=]\s*1[0-2]\b"),
    "a literal list of KPI numbers": re.compile(r"[\[(]\s*(?:[1-9]|1[0-2])\s*(?:,\s*(?:[1-9]|1[0-2])\s*){2,}[\])]"),
}
# Per-KPI columns: only the flags model names them (in SQL; the contract yml documents them).
PER_KPI_COLUMN = re.compile(r"\bkpi_\d+_(?:in_numerator|in_denominator|reason|numerator|denominator)\b")
# A site template is words on a page: a KPI number in them ("KPI 2 and 3 ...") is a list by hand.
KPI_IN_WORDS = re.compile(r"\bKPIs?\s+\d")
# Python lines where the patterns that need a KPI beside them (a list, a limit) also apply.
NEEDS_A_KPI_BESIDE = ("a literal list of KPI numbers", "a KPI count as a limit (max_value: 11)")


def scanned_files() -> list[Path]:
    root = paths.PROJECT_DIR
    files = sorted((root / "models").rglob("*.sql")) + sorted((root / "macros").rglob("*.sql"))
    files += [path for path in sorted((root / "models").rglob("*.yml"))
              if path.relative_to(root).as_posix() != GENERATED and "unit_tests" not in path.name]
    package = root / "src" / "flsdb"
    files += [path for suffix in ("*.py", "*.sql", "*.html") for path in sorted(package.rglob(suffix))
              if "__pycache__" not in path.parts]
    return files


def code_lines(path: Path) -> list[tuple[int, str]]:
    """Lines with SQL comments (--) and whole-line Jinja/YAML/Python comments dropped: prose may say
    "KPIs 4-11". (A Python docstring is kept: the patterns are code shapes, not words.)"""
    lines = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith(("#", "{#")):
            continue
        if path.suffix == ".sql":
            line = line.split("--", 1)[0]
        lines.append((number, line))
    return lines


def written_out_kpi_lists(path: Path, lines: list[tuple[int, str]]) -> list[str]:
    inside = path.is_absolute() and path.is_relative_to(paths.PROJECT_DIR)
    relative = path.relative_to(paths.PROJECT_DIR).as_posix() if inside else str(path)
    problems = []
    column = ""  # in a yml file: the column the line's test belongs to
    for number, line in lines:
        named = re.match(r"\s*- name:\s*(\S+)", line)
        if named:
            column = named.group(1)
        for what, pattern in WRITTEN_OUT_KPI_LISTS.items():
            # A list of small numbers is a KPI list only beside a KPI (deciles and quintiles are not).
            if what == "a literal list of KPI numbers" and "kpi" not in line.lower():
                continue
            # In Python, max_value=10 is also the length of an NHS number: a KPI limit only beside a KPI.
            if path.suffix == ".py" and what in NEEDS_A_KPI_BESIDE and "kpi" not in line.lower():
                continue
            # In a yml file, a range test is a KPI limit only on a KPI column (month_of_year: 1-12).
            if path.suffix == ".yml" and what in NEEDS_A_KPI_BESIDE and "kpi" not in column.lower():
                continue
            if pattern.search(line):
                problems.append(f"{relative}:{number}: {what}: {line.strip()}")
        if path.suffix in (".sql", ".py") and relative != FLAGS_MODEL and PER_KPI_COLUMN.search(line):
            problems.append(f"{relative}:{number}: a per-KPI column outside the flags model: {line.strip()}")
        if path.suffix == ".html" and KPI_IN_WORDS.search(re.sub(r"{[{%#].*?[}%#]}", "", line)):
            problems.append(f"{relative}:{number}: a KPI number in a page's words: {line.strip()}")
    return problems


def test_no_kpi_count_or_range_is_written_out_in_models_macros_or_src():
    files = scanned_files()
    assert any(path.suffix == ".html" for path in files) and any(path.suffix == ".py" for path in files)
    problems = []
    for path in files:
        problems += written_out_kpi_lists(path, code_lines(path))
    assert problems == [], ("loop over macros/kpi_definitions.sql (SQL) or read the KPI definitions "
                            "(Python, templates) instead:\n" + "\n".join(problems))


@pytest.mark.parametrize("line", [
    "{%- set kpi_numbers = range(4, 12) %}",
    "{%- for kpi_number in range(1, 12) %}",
    "where kpi_number between 2 and 11",
    "expression: denominator_note is null or kpi_number in (2, 3)",
    "where kpi_number = 4",
    "max_value: 11",
    "{{ unpivot_kpis('aggregated', [4, 5, 6, 7, 8, 9, 10, 11]) }}",
    "sum(case when kpi_2_in_numerator then 1 else 0 end) as kpi_2_numerator,",
])
def test_the_scan_finds_a_written_out_kpi_list(line):
    assert written_out_kpi_lists(Path("models/marts/example.sql"), [(1, line)])


def test_the_scan_reads_a_yml_range_test_by_its_column():
    lines = ["      - name: kpi_number", "          - accepted_range:", "                max_value: 11",
             "      - name: month_of_year", "          - accepted_range:", "                max_value: 12"]
    found = written_out_kpi_lists(Path("models/marts/_example.yml"), list(enumerate(lines, 1)))
    assert [problem.split(":")[1] for problem in found] == ["3"]


@pytest.mark.parametrize("path, line", [
    ("src/flsdb/publish/report.py", "    for kpi in range(1, 12):"),
    ("src/flsdb/publish/site.py", '        ratios = results.loc[results["kpi_number"].isin([2, 3])]'),
    ("src/flsdb/publish/site.py", '        if row["kpi_number"] == 1:'),
    ("src/flsdb/quality/expectations.py", 'X.ExpectColumnValuesToBeBetween(column="kpi_number", min_value=1, max_value=11)'),
    ("src/flsdb/publish/templates/base.html", "(KPI 1 counts fields; for KPI 2 and 3 the numerator rule applies)"),
])
def test_the_scan_finds_a_written_out_kpi_list_in_src(path, line):
    assert written_out_kpi_lists(Path(path), [(1, line)])


def test_the_scan_of_src_fails_on_a_planted_copy(tmp_path):
    """The scan of src/ can fail: a copy of a real template and module with a KPI list planted."""
    template = paths.PROJECT_DIR / "src/flsdb/publish/templates/base.html"
    module = paths.PROJECT_DIR / "src/flsdb/publish/site.py"
    for original, planted_line in [(template, "<p>KPI 2 and 3 can exceed 100%.</p>"),
                                   (module, "        expected_kpis = [k for k in self.kpis if k in (2, 3, 4)]")]:
        copy = tmp_path / original.name
        copy.write_text(original.read_text(encoding="utf-8") + planted_line + "\n", encoding="utf-8")
        found = written_out_kpi_lists(copy, code_lines(copy))
        assert len(found) == 1 and planted_line.strip() in found[0]
        assert written_out_kpi_lists(original, code_lines(original)) == []


def test_the_scan_leaves_other_ranges_and_comments_alone():
    for line in ["range(1, 65),", "{%- for group in range(1, 7) %}", "select 1 as field_order"]:
        assert written_out_kpi_lists(Path("macros/cross_engine/example.sql"), [(1, line)]) == []
    for line in ['column="1.01 NHS Number", min_value=10, max_value=10,', 'mine = register.loc[register["kpi_number"] == kpi]']:
        assert written_out_kpi_lists(Path("src/flsdb/quality/example.py"), [(1, line)]) == []
    assert written_out_kpi_lists(Path("src/flsdb/publish/templates/x.html"), [(1, "<h2>KPI {{ f.kpi }}</h2>")]) == []
    assert code_lines_of("-- KPIs 4-11: kpi_number between 4 and 11") == []


def code_lines_of(text: str) -> list[str]:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / "flsdb_kpi_seed_scan.sql"
    path.write_text(text, encoding="utf-8")
    try:
        return [line for _, line in code_lines(path) if line.strip()]
    finally:
        path.unlink()


def test_semantic_layer_is_generated_from_the_seed():
    committed = (paths.PROJECT_DIR / GENERATED).read_text(encoding="utf-8")
    assert committed == semantic_layer.render(), (
        f"{GENERATED} is out of step with seeds/kpi_definitions.csv: run python -m flsdb.semantic_layer")


def test_semantic_layer_follows_a_new_seed_row():
    kpis = semantic_layer.read_kpi_definitions()
    new_kpi = dict(kpis[-1], kpi_number="12", kpi_name="A new KPI", kpi_short_name="New KPI", grain="episode")
    rendered = semantic_layer.render(kpis + [new_kpi])
    assert rendered != semantic_layer.render(kpis)
    for name in ["kpi_12_numerator", "kpi_12_denominator", "kpi_12_new_kpi", "kpi_12_in_numerator"]:
        assert name in rendered


def test_every_kpi_row_has_a_known_grain_and_one_completeness_kpi():
    with (paths.seeds_dir() / "kpi_definitions.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["grain"] for row in rows} <= {"episode", "expected_caseload", "completeness"}
    assert [row["kpi_number"] for row in rows if row["grain"] == "completeness"] == ["1"]
    kpi_1 = next(row for row in rows if row["kpi_number"] == "1")
    assert (kpi_1["key_field_threshold_pct"], kpi_1["max_key_fields_below_threshold"]) == ("80", "4")


# ---------------------------------------------------------------------------------------------
# Adding a KPI, end to end (issue 13): the executable version of DEVELOPERS.md "Adding or changing
# a KPI". In a temporary copy of the project, a new KPI is added by exactly the documented steps;
# then a small synthetic landing set is loaded, `flsdb build` (dbt build: seeds, models and data
# tests; the unit tests with `dbt test`, as `make test` runs them), `flsdb validate`, `flsdb
# publish` and `flsdb report` run on the copy, and the KPI is looked for at every level, in the
# monthly series, in the published tier, in the quality report and on the site. The project's own
# models build the same landing set beside it, and the existing KPIs' results must be unchanged by
# the addition. One build for the whole module.
# ---------------------------------------------------------------------------------------------

NEW_KPI_NAME = "FLS assessment within 60 days"
NEW_KPI_SHORT_NAME = "Assessment within 60 days"
NEW_KPI_THRESHOLDS = ("70", "40")  # green, amber: its own, so the site's rating sentence must name it
LEVELS = ("national", "country", "region", "fls")
AUDIT_YEAR = 2024
RESULT_KEY = ["audit_year", "geography_level", "geography_code", "kpi_number", "breakdown", "breakdown_value"]


def test_the_site_words_its_kpi_groups_and_ratings_from_the_kpi_definitions():
    kpis = pd.read_csv(paths.seeds_dir() / "kpi_definitions.csv")
    words = kpi_words(kpis)
    assert (words["completeness"], words["expected"]) == ("KPI 1", "KPI 2 and 3")
    assert words["key_field_threshold"] == "80%"
    assert kpi_words(kpis.assign(key_field_threshold_pct=75.0))["key_field_threshold"] == "75%"
    assert words["ratings"] == "green at 80% or more, amber 50–79%, red below 50%; KPI 7 green at 50% or more"
    new = dict(kpis.iloc[-1], kpi_number=12, value_type="ratio_to_expected", green_threshold_pct=70.0,
               amber_threshold_pct=40.0, rating_rule="green_amber_red")
    words = kpi_words(pd.concat([kpis, pd.DataFrame([new])]))
    assert words["expected"] == "KPI 2, 3 and 12"
    assert words["ratings"].endswith("; KPI 7 green at 50% or more; KPI 12 green at 70% or more, amber 40–69%, "
                                     "red below 40%")


def _copy_project(destination: Path) -> Path:
    """The dbt project as a developer would check it out (no tests/python, no warehouse)."""
    return tiny_build.copy_dbt_project(destination)


def _insert_after(path: Path, anchor: str | re.Pattern[str], text: str) -> None:
    content = path.read_text(encoding="utf-8")
    match = re.search(anchor, content) if isinstance(anchor, re.Pattern) else None
    end = match.end() if match else content.index(anchor) + len(anchor)
    path.write_text(content[:end] + text + content[end:], encoding="utf-8")


def add_a_kpi(project: Path, env: dict[str, str]) -> int:
    """DEVELOPERS.md "Adding or changing a KPI", steps 1-5, on the copy: the new KPI's number."""
    # 1. Its row in the seed: an episode KPI (assessment within 60 days), next number.
    seed = project / "seeds" / "kpi_definitions.csv"
    with seed.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    number = max(int(row["kpi_number"]) for row in rows) + 1
    model_row = next(row for row in rows if row["kpi_number"] == "4")
    new_row = dict(model_row, kpi_number=str(number), kpi_name=NEW_KPI_NAME, kpi_short_name=NEW_KPI_SHORT_NAME,
                   numerator_definition="Assessment dated 0 to 60 days after the fracture",
                   green_threshold_pct=NEW_KPI_THRESHOLDS[0], amber_threshold_pct=NEW_KPI_THRESHOLDS[1],
                   target_pct=NEW_KPI_THRESHOLDS[0], completeness_lag_days="60", grain="episode")
    with seed.open("a", newline="", encoding="utf-8") as handle:
        csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n").writerow(new_row)

    # 2. Its three columns in the flags model.
    _insert_after(project / FLAGS_MODEL, "        end as kpi_4_reason,\n", (
        f"\n        -- KPI {number}: FLS assessment within 60 days.\n"
        f"        true as kpi_{number}_in_denominator,\n"
        f"        coalesce(days_fracture_to_assessment between 0 and 60, false) as kpi_{number}_in_numerator,\n"
        "        case\n"
        "            when fls_assessment_date is null then 'no FLS assessment date recorded'\n"
        "            when days_fracture_to_assessment > 60 then 'assessed more than 60 days after the fracture'\n"
        f"        end as kpi_{number}_reason,\n"))

    # 3. Its unit test: the boundaries of its rule (day 60 counts, day 61 does not).
    unit_tests = project / "models" / "intermediate" / "_intermediate__unit_tests.yml"
    given = "is_in_cohort: true, fracture_site: Wrist, fracture_date: 2024-01-01, extract_date: 2025-06-30"
    with unit_tests.open("a", encoding="utf-8") as handle:
        handle.write(
            f"\n  - name: kpi_{number}_assessment_on_day_60_counts_and_day_61_does_not\n"
            "    model: int_episodes_kpi_flagged\n"
            "    given:\n"
            "      - input: ref('int_episodes_scoped')\n"
            "        rows:\n"
            f"          - {{record_id: day-60, {given}, fls_assessment_date: 2024-03-01}}\n"
            f"          - {{record_id: day-61, {given}, fls_assessment_date: 2024-03-02}}\n"
            f"          - {{record_id: none, {given}}}\n"
            "    expect:\n"
            "      rows:\n"
            f"        - {{record_id: day-60, kpi_{number}_in_denominator: true, kpi_{number}_in_numerator: true,"
            f" kpi_{number}_reason: null}}\n"
            f"        - {{record_id: day-61, kpi_{number}_in_denominator: true, kpi_{number}_in_numerator: false,"
            f" kpi_{number}_reason: assessed more than 60 days after the fracture}}\n"
            f"        - {{record_id: none, kpi_{number}_in_denominator: true, kpi_{number}_in_numerator: false,"
            f" kpi_{number}_reason: no FLS assessment date recorded}}\n")

    # 4. Contract columns: fct_episodes selects every KPI's flags from the seed, and its contract is
    #    enforced, so the three columns are listed after the last KPI's.
    last_episode_kpi = max(int(row["kpi_number"]) for row in rows if row["grain"] == "episode")
    _insert_after(project / "models" / "marts" / "_marts__models.yml",
                  re.compile(rf"      - name: kpi_{last_episode_kpi}_reason\n(?:        .*\n)+"), "".join(
                      f"      - name: kpi_{number}_{column}\n        data_type: {data_type}\n"
                      f"        description: {words}\n"
                      for column, data_type, words in [
                          ("in_denominator", "boolean", f"In KPI {number}'s denominator (null outside the cohort)."),
                          ("in_numerator", "boolean", f"In KPI {number}'s numerator (null outside the cohort)."),
                          ("reason", "string", (f"Why the episode is not in KPI {number}'s numerator; null when "
                                                "it is in the numerator."))]))

    # 5. The semantic layer, regenerated from the seed (never edited by hand).
    result = subprocess.run([sys.executable, "-m", "flsdb.semantic_layer"], env=env, cwd=project,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"kpi_{number}_" in (project / GENERATED).read_text(encoding="utf-8")
    return number


def _make_added(shared: SharedBuild, root: Path) -> dict:
    """The copy with a new KPI, loaded, built, validated, published and reported; and the project's
    own build of the same landing set (the session's tiny build: 2024 at 2%, seed 7, its pseudonym
    key), for the comparison of the existing KPIs."""
    started = time.monotonic()
    stages: dict[str, float] = {}
    tiny = tiny_build.BUILD.get(lambda: root / "tiny")

    def stage(name: str) -> None:
        stages[name] = round(time.monotonic() - started - sum(stages.values()), 1)

    def _flsdb(args: list[str], env: dict[str, str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
        result = shared.run(args[0], [str(Path(sys.executable).with_name("flsdb")), *args], env, cwd,
                            root / "steps" / f"{args[0]}.log")
        assert result.returncode == 0 or not check, f"flsdb {' '.join(args)} exited {result.returncode}:\n" \
                                                    f"{result.stdout[-8000:]}"
        return result

    landing = tiny["landing"]                 # AUDIT_YEAR at 2%, read only
    project = _copy_project(root)
    warehouse, output = root / "with_new_kpi.duckdb", root / "output"
    env = tiny_build.dbt_env(warehouse, landing)
    env.update({"DBT_PROFILES_DIR": str(project), "FLSDB_PROJECT_DIR": str(project),
                "FLSDB_WAREHOUSE": str(warehouse), "FLSDB_LANDING": str(landing), "FLSDB_OUTPUT": str(output),
                "FLSDB_HISTORY": str(root / "history.duckdb"), "DBT_TARGET_PATH": str(root / "target"),
                "DBT_LOG_PATH": str(root / "logs")})
    number = add_a_kpi(project, env)
    stage("copy and add the KPI")

    _flsdb(["load"], env, project)
    build = _flsdb(["build"], env, project, check=False)
    # `flsdb build` is the production build, without dbt's unit tests (issue 21); `make test` and
    # CI run them: here with dbt itself, results kept apart from the build's
    unit_tests = shared.run("unit tests", [str(Path(sys.executable).with_name("dbt")), "test", "--select",
                                           "resource_type:unit_test", "--project-dir", str(project),
                                           "--target-path", str(root / "unit_test_target")],
                            env, project, root / "steps" / "unit_tests.log")
    stage("load and build the copy, and its unit tests")
    validate = _flsdb(["validate"], env, project)
    stage("validate")
    _flsdb(["approve", "--reviewer", "KPI seed test (synthetic data)", "--yes"], env, project)
    _flsdb(["publish"], env, project)
    stage("publish")
    _flsdb(["report"], env, project)
    stage("report")
    return {"stages": stages, "number": number, "project": project, "root": root, "warehouse": warehouse, "output": output,
            "build": build, "unit_tests": unit_tests, "validate": validate, "base_warehouse": tiny["warehouse"],
            "seconds": time.monotonic() - started}


BUILD = SharedBuild("add a KPI (a copy of the project, 2024 at 2%)", _make_added, fixture="added", module=__file__)


@pytest.fixture(scope="module")
def added(tmp_path_factory, tiny) -> dict:
    """Made once, in the background when the session starts (shared_builds.py)."""
    return BUILD.get(lambda: tmp_path_factory.mktemp("add_a_kpi"))


def _rows(database: Path, sql: str, *parameters) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql, list(parameters)).fetchall()


def test_the_new_kpi_builds_with_every_unit_and_data_test(added):
    build = added["build"]
    assert build.returncode == 0, build.stdout[-5000:]
    results = json.loads((added["root"] / "target" / "run_results.json").read_text())["results"]
    broken = [(r["unique_id"], r["status"]) for r in results
              if r["status"] not in ("success", "pass", "warn", "no-op")]  # no-op: the exposures
    assert broken == [], build.stdout[-5000:]
    unit_test = f"kpi_{added['number']}_assessment_on_day_60_counts_and_day_61_does_not"
    assert added["unit_tests"].returncode == 0, added["unit_tests"].stdout[-5000:]
    unit_results = json.loads((added["root"] / "unit_test_target" / "run_results.json").read_text())["results"]
    assert [r["status"] for r in unit_results if r["unique_id"].endswith("." + unit_test)] == ["pass"]
    assert not [r for r in results if r["unique_id"].startswith("unit_test.")]   # production build
    implication = [r["status"] for r in results if ".assert_kpi_numerators_within_denominators" in r["unique_id"]]
    assert implication == ["pass"]
    print(f"\nadd-a-KPI end to end: {added['seconds']:.0f} s; by stage (s): {added['stages']}")


def test_the_new_kpi_is_in_kpi_results_at_every_level(added):
    number = added["number"]
    levels = _rows(added["warehouse"], """
        select geography_level, count(*), sum(numerator), sum(denominator)
        from marts.kpi_results
        where kpi_number = ? and audit_year = ? and breakdown = 'all'
        group by geography_level""", number, AUDIT_YEAR)
    assert {level for level, *_ in levels} == set(LEVELS)
    # Its denominator is every cohort record, as KPI 4's; its numerator (within 60 days) is part of
    # KPI 4's (within 90 days), at every geography.
    compared = _rows(added["warehouse"], """
        select new.geography_level, new.geography_code, new.numerator, new.denominator,
               kpi_4.numerator, kpi_4.denominator
        from marts.kpi_results as new
        inner join marts.kpi_results as kpi_4
            on new.audit_year = kpi_4.audit_year and new.geography_code = kpi_4.geography_code
            and new.geography_level = kpi_4.geography_level and new.breakdown = kpi_4.breakdown
            and new.breakdown_value = kpi_4.breakdown_value
        where new.kpi_number = ? and kpi_4.kpi_number = 4 and new.breakdown = 'all'""", number)
    assert len(compared) == sum(count for _, count, *_ in levels)
    assert all(den == den_4 and num <= num_4 for _, _, num, den, num_4, den_4 in compared)
    assert any(num < num_4 for _, _, num, _, num_4, _ in compared if num_4)
    national = [row for row in compared if row[0] == "national"]
    assert len(national) == 1 and national[0][3] > 0
    # and the episode mart carries its flags
    flagged = _rows(added["warehouse"], f"select count(*) filter (where kpi_{number}_in_numerator) "
                                        "from marts.fct_episodes where audit_year = ?", AUDIT_YEAR)
    assert flagged[0][0] == national[0][2]


def test_the_new_kpi_has_a_monthly_series_when_the_seed_gives_it_one(added):
    number = added["number"]
    with (added["project"] / "seeds" / "kpi_definitions.csv").open(newline="", encoding="utf-8") as handle:
        row = next(r for r in csv.DictReader(handle) if r["kpi_number"] == str(number))
    monthly = row["value_type"] != "completeness"  # macros/kpi_monthly_series.sql
    assert monthly
    for table in ["marts.kpi_monthly", "marts.kpi_spc_summary"]:
        levels = {level for (level,) in _rows(added["warehouse"],
                                              f"select distinct geography_level from {table} where kpi_number = ?",
                                              number)}
        assert levels == set(LEVELS), table


def test_the_new_kpi_is_published(added):
    number = added["number"]
    published = added["output"] / "published" / "flsdb_published.duckdb"
    levels = {level for (level,) in _rows(published, "select distinct geography_level from "
                                                     "publication.published_kpi_results where kpi_number = ?", number)}
    assert levels == set(LEVELS)
    names = _rows(published, "select kpi_name from publication.published_kpi_definitions where kpi_number = ?",
                  number)
    assert names == [(NEW_KPI_NAME,)]
    assert _rows(published, "select count(*) from publication.published_kpi_monthly where kpi_number = ?",
                 number)[0][0] > 0


def test_the_new_kpi_is_in_the_quality_report(added):
    quality = added["output"] / "quality"
    validation = json.loads((quality / "validation.json").read_text(encoding="utf-8"))
    assert validation["verdict"] != "FAIL"
    checks = {check["name"]: check for check in validation["checks"]}
    # The check that every KPI of the seed has results at every level (now one more KPI) passed.
    every_kpi = [c for name, c in checks.items() if name.endswith("kpi_results_every_kpi")]
    assert [c["status"] for c in every_kpi] == ["pass"]
    # its data tests are checks of the build; its unit test is not (unit tests run in development
    # and CI, not in the production build: test_the_new_kpi_builds_with_every_unit_and_data_test)
    report = (quality / "checks.html").read_text(encoding="utf-8")    # every check, by name
    assert "kpi_numerators_within_denominators" in report
    assert not [name for name in checks if "assessment_on_day_60_counts" in name]
    # Great Expectations' KPI list comes from the seed: one more KPI, and the new KPI's results pass.
    with (added["project"] / "seeds" / "kpi_definitions.csv").open(newline="", encoding="utf-8") as handle:
        kpis = sum(1 for _ in csv.DictReader(handle))
    in_set = checks["gx.kpi_results.expect_column_values_to_be_in_set[kpi_number]"]
    assert in_set["status"] == "pass" and f"value_set=[{kpis} values]" in in_set["detail"]
    gx_kpi_results = [c for name, c in checks.items() if name.startswith("gx.kpi_results.")]
    assert gx_kpi_results and all(c["status"] == "pass" for c in gx_kpi_results)


def test_the_new_kpi_is_on_the_site(added):
    number = added["number"]
    site = added["output"] / "site"
    label = f"KPI {number}: {NEW_KPI_SHORT_NAME}"
    glance = (site / "index.html").read_text(encoding="utf-8")
    assert f'data-kpi="{number}"' in glance and NEW_KPI_NAME in glance
    assert label in (site / "national-geography.html").read_text(encoding="utf-8")
    assert label in (site / "national-trends.html").read_text(encoding="utf-8") or \
        NEW_KPI_NAME in (site / "national-trends.html").read_text(encoding="utf-8")
    # The footer's rating sentence is worded from the KPI definitions, the new KPI's thresholds included.
    assert f"KPI {number} green at 70% or more, amber 40–69%, red below 40%" in glance
    fls_code = _rows(added["warehouse"], "select min(geography_code) from marts.kpi_results where kpi_number = ? "
                                         "and geography_level = 'fls' and not is_suppressed", number)[0][0]
    fls_page = (site / "fls" / f"{fls_code}.html").read_text(encoding="utf-8")
    assert f'data-kpi="{number}"' in fls_page and NEW_KPI_NAME in fls_page
    # its monthly SPC chart on the national page of monthly/ (England and Wales)
    national = _rows(added["warehouse"], "select distinct geography_code from marts.kpi_results "
                                         "where geography_level = 'national'")[0][0]
    assert f'data-kpi="{number}"' in (site / "monthly" / f"{national}.html").read_text(encoding="utf-8")


def test_the_existing_kpis_are_unchanged_by_the_addition(added):
    columns = [column for (column,) in _rows(added["base_warehouse"], """
        select column_name from information_schema.columns
        where table_schema = 'marts' and table_name = 'kpi_results' order by ordinal_position""")]
    order = ", ".join(RESULT_KEY)

    def results(database: Path) -> pd.DataFrame:
        with duckdb.connect(str(database), read_only=True) as con:
            return con.execute(f"select {', '.join(columns)} from marts.kpi_results where kpi_number != ? "
                               f"order by {order}", [added["number"]]).df()

    before, after = results(added["base_warehouse"]), results(added["warehouse"])
    assert len(before) > 0
    # Two builds of the same data may differ in the last bit of a sum of doubles (DEVELOPERS.md).
    pd.testing.assert_frame_equal(before, after, check_exact=False, rtol=1e-9)
