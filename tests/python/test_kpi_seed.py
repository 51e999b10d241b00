"""The KPI seed (seeds/kpi_definitions.csv) drives every KPI list in models/ and macros/ (issue 13).

- No model, macro or model yml writes out a KPI count, a KPI range or a list of KPI numbers: they
  loop over macros/kpi_definitions.sql, which reads the seed. The one exception is the flag logic,
  int_episodes_kpi_flagged, where each KPI's rule is written by hand (its three columns).
- The semantic layer is generated from the seed (python -m flsdb.semantic_layer) and must not drift.
- A new seed row plus its flags reaches the aggregation, the episode mart and the implication test
  with no other edit (compiled on the in-memory lint target: no warehouse needed).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flsdb import paths, semantic_layer

FLAGS_MODEL = "models/intermediate/int_episodes_kpi_flagged.sql"
GENERATED = "models/marts/_marts__semantic_models.yml"

# Each pattern is a way a KPI list or count has been written out by hand before.
WRITTEN_OUT_KPI_LISTS: dict[str, re.Pattern[str]] = {
    "a KPI range (range(4, 12))": re.compile(r"\brange\(\s*\d+\s*,\s*1[0-3]\s*\)"),
    "kpi_number compared with a literal": re.compile(
        r"\bkpi_number\s*(?:not\s+)?(?:in\s*\(\s*\d|between\s+\d|(?:=|!=|<>|<=|>=|<|>)\s*\d)", re.IGNORECASE),
    "a KPI count as a limit (max_value: 11)": re.compile(r"\bmax_value:\s*1[0-2]\b"),
    "a literal list of KPI numbers": re.compile(r"[\[(]\s*(?:[1-9]|1[0-2])\s*(?:,\s*(?:[1-9]|1[0-2])\s*){2,}[\])]"),
}
# Per-KPI columns: only the flags model names them (in SQL; the contract yml documents them).
PER_KPI_COLUMN = re.compile(r"\bkpi_\d+_(?:in_numerator|in_denominator|reason|numerator|denominator)\b")


def scanned_files() -> list[Path]:
    root = paths.PROJECT_DIR
    files = sorted((root / "models").rglob("*.sql")) + sorted((root / "macros").rglob("*.sql"))
    files += [path for path in sorted((root / "models").rglob("*.yml"))
              if path.relative_to(root).as_posix() != GENERATED and "unit_tests" not in path.name]
    return files


def code_lines(path: Path) -> list[tuple[int, str]]:
    """Lines with SQL comments (--) and whole-line Jinja/YAML comments dropped: prose may say "KPIs 4-11"."""
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
    relative = path.relative_to(paths.PROJECT_DIR).as_posix() if path.is_absolute() else str(path)
    problems = []
    for number, line in lines:
        for what, pattern in WRITTEN_OUT_KPI_LISTS.items():
            # A list of small numbers is a KPI list only beside a KPI (deciles and quintiles are not).
            if what == "a literal list of KPI numbers" and "kpi" not in line.lower():
                continue
            if pattern.search(line):
                problems.append(f"{relative}:{number}: {what}: {line.strip()}")
        if path.suffix == ".sql" and relative != FLAGS_MODEL and PER_KPI_COLUMN.search(line):
            problems.append(f"{relative}:{number}: a per-KPI column outside the flags model: {line.strip()}")
    return problems


def test_no_kpi_count_or_range_is_written_out_in_models_or_macros():
    problems = []
    for path in scanned_files():
        problems += written_out_kpi_lists(path, code_lines(path))
    assert problems == [], "loop over macros/kpi_definitions.sql instead:\n" + "\n".join(problems)


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


def test_the_scan_leaves_other_ranges_and_comments_alone():
    for line in ["range(1, 65),", "{%- for group in range(1, 7) %}", "select 1 as field_order"]:
        assert written_out_kpi_lists(Path("macros/cross_engine/example.sql"), [(1, line)]) == []
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


def _copy_project(destination: Path) -> Path:
    root = paths.PROJECT_DIR
    project = destination / "project"
    project.mkdir()
    for name in ["dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "tests", "analyses"]:
        source = root / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("python", "spark", "__pycache__"))
        elif source.exists():
            shutil.copy2(source, project / name)
    return project


def test_a_new_seed_row_and_its_flags_reach_every_kpi_list(tmp_path):
    """Adding KPI 12 the documented way (seed row + three flag columns) and compiling: the aggregation,
    the episode mart, the monthly series and the implication test pick it up with no other edit."""
    project = _copy_project(tmp_path)
    seed = project / "seeds" / "kpi_definitions.csv"
    with seed.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    new_row = dict(next(row for row in rows if row["kpi_number"] == "4"), kpi_number="12",
                   kpi_name="FLS assessment within 60 days", kpi_short_name="Assessment within 60 days")
    with seed.open("a", newline="", encoding="utf-8") as handle:
        csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n").writerow(new_row)
    flags = project / FLAGS_MODEL
    text = flags.read_text(encoding="utf-8")
    anchor = "        end as kpi_4_reason,\n"
    assert anchor in text
    text = text.replace(anchor, anchor + (
        "        true as kpi_12_in_denominator,\n"
        "        coalesce(days_fracture_to_assessment between 0 and 60, false) as kpi_12_in_numerator,\n"
        "        case when not coalesce(days_fracture_to_assessment between 0 and 60, false)"
        " then 'not assessed within 60 days' end as kpi_12_reason,\n"), 1)
    flags.write_text(text, encoding="utf-8")

    env = dict(os.environ, DBT_PROFILES_DIR=str(project), FLSDB_PROJECT_DIR=str(project), DO_NOT_TRACK="1",
               DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    dbt = Path(sys.executable).with_name("dbt")
    result = subprocess.run(
        [str(dbt), "compile", "--target", "lint", "--project-dir", str(project),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs"),
         "--select", "int_kpi_episode_results_aggregated", "fct_episodes", "int_kpi_months_measured",
         "assert_kpi_numerators_within_denominators"],
        env=env, cwd=project, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-5000:]
    compiled = tmp_path / "target" / "compiled" / "flsdb"
    aggregated = (compiled / "models/intermediate/int_kpi_episode_results_aggregated.sql").read_text()
    assert "kpi_12_in_numerator" in aggregated and "12 as kpi_number" in aggregated
    episodes = (compiled / "models/marts/fct_episodes.sql").read_text()
    assert all(f"kpi_flags.kpi_12_{column}" in episodes for column in ["in_denominator", "in_numerator", "reason"])
    monthly = (compiled / "models/intermediate/int_kpi_months_measured.sql").read_text()
    assert "kpi_12_in_numerator" in monthly
    implication = (compiled / "tests/assert_kpi_numerators_within_denominators.sql").read_text()
    assert "kpi_12_in_numerator" in implication
