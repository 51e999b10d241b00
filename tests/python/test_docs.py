"""The repository explains itself (issue 24 point 5): its docs link only inside it, and the
specification in docs/specification/ says what the project's own data says.

- README.md, DEVELOPERS.md and every docs/**/*.md link no file outside the repository, and every
  relative link resolves: the file (or folder) exists, and a `#section` names a heading of it.
- Every repository file that a doc, docstring, model or macro names (src/..., models/..., tests/...)
  exists.
- No tracked file cites the specification files that used to live beside the project
  (kpi-spec.md, dataset.md, monitoring-spec.md, ../shared/...): the project's own words are
  docs/specification/.
- The tables of docs/specification/ that restate the project's data are generated from it: the
  raw fields (seeds/submission_fields.csv; the meaning of each field is the one hand-written
  cell, kept from the doc), the code lists (vars of dbt_project.yml, through flsdb.contract) and
  the KPI seed (seeds/kpi_definitions.csv). `python tests/python/test_docs.py --write` rewrites
  them; the test fails when one drifts. The column tables of the marts the specification
  describes are checked against the models' yml, and the reject codes against the loader.

Builds no warehouse: it reads files only.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from flsdb import contract, paths

ROOT = Path(paths.PROJECT_DIR).absolute()
SPEC = ROOT / "docs" / "specification"

# --------------------------------------------------------------------------------------------
# Links
# --------------------------------------------------------------------------------------------


def linked_docs() -> list[Path]:
    """The Markdown a newcomer reads: README.md, DEVELOPERS.md and everything under docs/."""
    return [ROOT / "README.md", ROOT / "DEVELOPERS.md", *sorted((ROOT / "docs").rglob("*.md"))]


_FENCE = re.compile(r"^\s*(```|~~~)")
_INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
_HREF = re.compile(r"""<a\s[^>]*href=["']([^"']+)["']""", re.IGNORECASE)


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append((number, _INLINE_CODE.sub("", line)))
    return lines


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every Markdown link, image, reference definition and <a href>."""
    found = []
    for number, line in prose_lines(text):
        for pattern in (_LINK, _REFERENCE, _HREF):
            found.extend((number, match.group(1)) for match in pattern.finditer(line))
    return found


def heading_slugs(text: str) -> set[str]:
    """The anchors GitHub gives a file's headings (github-slugger: lower case, every character
    but letters, digits, `_`, `-` and spaces dropped, spaces to `-`, repeats numbered), plus
    explicit `<a id=...>` / `<a name=...>` anchors."""
    slugs: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        slugs.update(re.findall(r"""<a\s[^>]*(?:id|name)=["']([^"']+)["']""", line))
        heading = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        title = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))  # links -> their text
        title = title.replace("`", "")
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        if slug in seen:
            seen[slug] += 1
            slug = f"{slug}-{seen[slug]}"
        else:
            seen[slug] = 0
        slugs.add(slug)
    return slugs


def link_problem(document: Path, target: str) -> str | None:
    """Why a link target is wrong, or None when it resolves inside the repository."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, https:, mailto: ...
        return None
    path_part, _, anchor = target.partition("#")
    if path_part.startswith("/"):
        return "an absolute path: link relative to the file, inside the repository"
    resolved = Path(os.path.normpath(document.parent / path_part)) if path_part else document
    try:
        relative = resolved.relative_to(ROOT)
    except ValueError:
        return "a file outside the repository: the project's own words belong in docs/"
    if not resolved.exists():
        return f"{relative} does not exist"
    if (anchor and resolved.suffix == ".md" and resolved.is_file()
            and anchor not in heading_slugs(resolved.read_text(encoding="utf-8"))):
        return f"{relative} has no section '#{anchor}'"
    return None


def test_readme_and_docs_link_only_inside_the_repository_and_every_link_resolves():
    problems = []
    for document in linked_docs():
        for number, target in links(document.read_text(encoding="utf-8")):
            problem = link_problem(document, target)
            if problem:
                problems.append(f"{document.relative_to(ROOT)}:{number}: ({target}) {problem}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("text, target, wrong", [
    ("[spec](../shared/fls-db/kpi-spec.md)", "../shared/fls-db/kpi-spec.md", "outside"),
    ("see [the primer](/work/shared/fls-db/README.md)", "/work/shared/fls-db/README.md", "absolute"),
    ("[gone](docs/no-such-page.md)", "docs/no-such-page.md", "does not exist"),
    ("[KPIs](docs/specification/kpi-definitions.md#no-such-section)",
     "docs/specification/kpi-definitions.md#no-such-section", "no section"),
    ("[here](#not-a-heading-of-readme)", "#not-a-heading-of-readme", "no section"),
])
def test_the_link_check_finds_a_bad_link(text, target, wrong):
    assert links(text) == [(1, target)]
    assert wrong in (link_problem(ROOT / "README.md", target) or "")


def test_the_link_check_passes_good_links_and_ignores_code():
    good = ("[a](docs/architecture.md) [b](docs/specification/monitoring.md#2-spc-xmr-charts) "
            "[c](https://example.org/x) [d](#the-flsdb-command) [e](seeds/)")
    assert [link_problem(ROOT / "README.md", target) for _, target in links(good)] == [None] * 5
    assert links("`[not a link](../outside.md)`\n```\n[nor](../this.md)\n```\n") == []


def test_heading_slugs_follow_github():
    text = ("# The `flsdb` command\n## New submissions: what a rebuild redoes\n## 2. SPC: XmR charts\n"
            "## Funnel plots (φ, τ²)\n## Terms\n## Terms\n```\n# not a heading\n```\n")
    assert heading_slugs(text) == {"the-flsdb-command", "new-submissions-what-a-rebuild-redoes",
                                   "2-spc-xmr-charts", "funnel-plots-φ-τ²", "terms", "terms-1"}


# --------------------------------------------------------------------------------------------
# No citation of the specification files that lived outside the repository
# --------------------------------------------------------------------------------------------

OUTSIDE_SPECIFICATION = re.compile(
    r"(?<![\w/-])(kpi-spec|monitoring-spec|dataset\.md)(?:\.md)?(?![\w-])|shared/fls-db|fls-db/README\.md"
    r"|shared/reference-data|\.\./shared/")
# Where each one's content now lives, for the failure message.
NOW_IN = {
    "dataset.md": "docs/specification/submission-format.md",
    "kpi-spec": "docs/specification/kpi-definitions.md",
    "monitoring-spec": "docs/specification/monitoring.md (same section numbers)",
}


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    files = [ROOT / name for name in listed.stdout.decode("utf-8").split("\0") if name]
    return [f for f in files if f.suffix in {".md", ".yml", ".yaml", ".sql", ".py", ".csv", ".jinja",
                                               ".html", ".txt", ".toml", ".cfg"}
            and f.is_file() and f.resolve() != Path(__file__).resolve()]


def test_nothing_cites_the_specification_files_that_lived_outside_the_repository():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    problems = []
    for path in tracked_text_files():
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for match in OUTSIDE_SPECIFICATION.finditer(line):
                now = NOW_IN.get(match.group(1) or "", "docs/README.md (the audit in brief) or docs/")
                problems.append(f"{path.relative_to(ROOT)}:{number}: '{match.group(0)}' -> {now}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("line, cited", [
    ("-- (kpi-spec.md, \"Publication and small numbers\")", True),
    ("monitoring-spec.md section 3", True),
    ("The contract is ../shared/fls-db/dataset.md", True),
    ("every dataset.md row-level reject", True),
    ("# (never suppressed: kpi-spec exempts KPI 1)", True),
    ("kpi-spec's windows", True),
    ("docs/specification/kpi-definitions.md", False),
    ("a_dataset.md_like_name", False),
])
def test_the_citation_scan_finds_an_outside_citation(line, cited):
    assert bool(OUTSIDE_SPECIFICATION.search(line)) == cited


# --------------------------------------------------------------------------------------------
# Every file of the repository that the docs, the code and the models name exists
# --------------------------------------------------------------------------------------------

REPOSITORY_PATH = re.compile(
    r"(?<![\w/.-])((?:src|tests|models|macros|seeds|analyses|bench|docs|bi)/[\w/.-]*"
    r"\.(?:py|sql|yml|yaml|csv|md|html|css|toml|txt))(?![\w-])")
# Named on purpose although they do not exist: a placeholder in a command.
NOT_FILES = {
    "tests/python/test_x.py",                     # `pytest tests/python/test_x.py -k ...`
}


def named_paths(text: str) -> list[tuple[int, str]]:
    """(line number, path) of every repository path a text names (src/..., models/..., ...)."""
    return [(number, match.group(1)) for number, line in enumerate(text.splitlines(), 1)
            for match in REPOSITORY_PATH.finditer(line)]


def test_every_repository_file_named_in_docs_code_and_models_exists():
    """A doc, docstring or model comment that names a file sends the reader to it: the file must
    exist (e.g. semantic_layer.py named a test_semantic_layer.py that never did). Test modules
    are left out: they plant example paths on purpose."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    problems = []
    for path in tracked_text_files():
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith("tests/python/") and path.name.startswith("test_"):
            continue
        for number, named in named_paths(path.read_text(encoding="utf-8", errors="replace")):
            if named not in NOT_FILES and not (ROOT / named).exists():
                problems.append(f"{relative}:{number}: {named} does not exist")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("line, paths", [
    ("`tests/python/test_semantic_layer.py` fails when the file drifts", ["tests/python/test_semantic_layer.py"]),
    ("-- (macros/spc_xmr.sql, models/marts/kpi_results.sql)", ["macros/spc_xmr.sql", "models/marts/kpi_results.sql"]),
    ("dbt-duckdb's dbt/include/duckdb/macros/seed.sql", []),
    ("models/**/_*unit_tests.yml and docs/specification/", []),
])
def test_the_path_scan_finds_named_files(line, paths):
    assert [named for _, named in named_paths(line)] == paths


# --------------------------------------------------------------------------------------------
# Generated tables
# --------------------------------------------------------------------------------------------

BEGIN = "<!-- generated: {name} (python tests/python/test_docs.py --write) -->"
END = "<!-- end generated: {name} -->"


def generated_block(text: str, name: str) -> tuple[int, int]:
    """The character range of a generated block's body (between its two marker lines)."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    assert text.count(begin) == 1 and text.count(end) == 1, f"one '{begin}' and one '{end}'"
    start = text.index(begin) + len(begin) + 1
    return start, text.index(end)


def table_rows(block: str) -> list[list[str]]:
    """The body rows of the first Markdown table of a block, as stripped cells."""
    rows = [line for line in block.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows[2:]]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def field_check(field: contract.Field) -> str:
    """A field's kind and the check it gets, in words."""
    if field.kind == "code":
        return f"code, list `{field.code_list}`"
    if field.kind in ("number", "integer"):
        kind = "number" if field.kind == "number" else "whole number"
        return f"{kind}, {field.min_value} to {field.max_value}"
    if field.kind == "date":
        if field.date_rule == "not_before_fracture":
            words = "date, not before the fracture"
            if field.max_days_after_fracture:
                words += f", at most {field.max_days_after_fracture} days after it"
            return words
        return "date"
    return {
        "text": "text",
        "timestamp": "timestamp",
        "nhs_number": "NHS number: 10 digits, modulus 11",
        "postcode": "UK postcode",
    }[field.kind]


def field_key_use(field: contract.Field) -> str:
    if not field.is_kpi_1_key_field:
        return ""
    if field.kpi_1_measured_over:
        days = contract.FOLLOW_UP_DUE_DAYS[field.kpi_1_measured_over]
        return f"yes, over records due ({days} days)"
    return "yes"


FIELD_HEADER = ["#", "column", "meaning", "kind and check", "required", "identifier",
                "KPI 1 key field", "staged as"]


def field_meanings(text: str) -> dict[str, str]:
    """The hand-written meaning of each field, from the doc as it is."""
    start, end = generated_block(text, "submission-fields")
    return {row[1].strip("`"): row[2] for row in table_rows(text[start:end]) if len(row) > 2}


def submission_fields_table(meanings: dict[str, str]) -> str:
    rows = [[str(field.number), f"`{field.column_name}`",
             meanings.get(field.column_name, "") or "TODO: what this field means",
             field_check(field), "yes" if field.is_required else "",
             "yes: raw schema only" if field.is_identifier else "", field_key_use(field),
             f"`{field.staged_name}`"] for field in contract.FIELDS]
    return markdown_table(FIELD_HEADER, rows)


def code_lists_table() -> str:
    drugs = list(contract.DRUGS)
    used_by: dict[str, list[str]] = {}
    for field in contract.FIELDS:
        if field.code_list:
            used_by.setdefault(field.code_list, []).append(f"`{field.column_name.split(' ')[0]}`")
    rows = []
    for name, codes in contract.CODE_LISTS.items():
        codes = list(codes)
        words = ["the named drugs", *codes[len(drugs):]] if codes[:len(drugs)] == drugs else codes
        also = []
        for wording, code in contract.code_wordings(name).items():
            if code in drugs and wording.startswith(code + " "):  # a drug with the list's suffix
                suffix = f"a named drug followed by {wording[len(code) + 1:]}"
                if suffix not in also:
                    also.append(suffix)
            else:
                also.append(wording)
        rows.append([f"`{name}`", ", ".join(words), "; ".join(also), ", ".join(used_by.get(name, []))])
    rows.append(["`named_drugs`", ", ".join(drugs), "",
                 "KPI 7, 10 and 11 (a named drug counts as bone therapy)"])
    return markdown_table(["list", "codes, in their stored spelling", "also accepted as the code",
                           "fields"], rows)


def kpi_seed_table() -> str:
    with open(ROOT / "seeds" / "kpi_definitions.csv", encoding="utf-8", newline="") as handle:
        kpis = list(csv.DictReader(handle))

    def rating(kpi: dict[str, str]) -> str:
        rule = kpi["rating_rule"]
        if rule == "green_amber_red":
            return (f"green ≥ {kpi['green_threshold_pct']}%, amber ≥ {kpi['amber_threshold_pct']}%, "
                    "red below")
        if rule == "green_red":
            return f"green ≥ {kpi['green_threshold_pct']}%, red below"
        if rule == "met_not_met":
            return (f"FLS level: met when at most {kpi['max_key_fields_below_threshold']} key fields are "
                    f"below {kpi['key_field_threshold_pct']}% complete")
        return "none (reported only)"

    rows = [[kpi["kpi_number"], kpi["kpi_name"], kpi["numerator_definition"], kpi["denominator_definition"],
             f"`{kpi['value_type']}`", f"`{kpi['grain']}`", rating(kpi),
             f"{kpi['target_pct']}%" if kpi["target_pct"] else "",
             kpi["completeness_lag_days"]] for kpi in kpis]
    return markdown_table(["KPI", "name", "numerator", "denominator", "value type", "grain", "rating",
                           "target", "monthly lag (days)"], rows)


GENERATED = {
    # name: (document, rendering from the document as it is)
    "submission-fields": (SPEC / "submission-format.md",
                          lambda text: submission_fields_table(field_meanings(text))),
    "code-lists": (SPEC / "submission-format.md", lambda text: code_lists_table()),
    "kpi-seed": (SPEC / "kpi-definitions.md", lambda text: kpi_seed_table()),
}


def rewrite(document: Path, name: str, render) -> bool:
    """Write a generated block afresh; True when it changed."""
    text = document.read_text(encoding="utf-8")
    start, end = generated_block(text, name)
    new = text[:start] + render(text) + text[end:]
    if new != text:
        document.write_text(new, encoding="utf-8")
    return new != text


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_tables_say_what_the_project_data_says(name):
    document, render = GENERATED[name]
    text = document.read_text(encoding="utf-8")
    start, end = generated_block(text, name)
    assert text[start:end] == render(text), (
        f"{document.relative_to(ROOT)}: the table '{name}' has drifted from the data it restates; "
        "run `python tests/python/test_docs.py --write` and read the diff")


def test_every_raw_field_has_a_meaning_written_by_hand():
    meanings = field_meanings((SPEC / "submission-format.md").read_text(encoding="utf-8"))
    missing = [field.column_name for field in contract.FIELDS
               if not meanings.get(field.column_name) or meanings[field.column_name].startswith("TODO")]
    assert not missing, f"docs/specification/submission-format.md: no meaning for {missing}"


def test_the_field_table_fails_when_the_seed_gains_a_field(monkeypatch):
    text = (SPEC / "submission-format.md").read_text(encoding="utf-8")
    start, end = generated_block(text, "submission-fields")
    extra = contract.Field(number=49, column_name="8.01 NewField", staged_name="new_field", kind="date",
                           code_list=None, min_value=None, max_value=None, date_rule=None,
                           max_days_after_fracture=None, is_required=False, is_identifier=False,
                           is_kpi_1_key_field=False, kpi_1_recorded_when=None, kpi_1_measured_over=None)
    monkeypatch.setattr(contract, "FIELDS", (*contract.FIELDS, extra))
    rendered = submission_fields_table(field_meanings(text))
    assert rendered != text[start:end] and "`8.01 NewField` | TODO" in rendered


# --------------------------------------------------------------------------------------------
# Checked tables: the marts' columns, the loader's reject codes
# --------------------------------------------------------------------------------------------

CHECKED_COLUMNS = "<!-- columns of {model}: checked against its yml by tests/python/test_docs.py -->"


def model_columns(model: str) -> list[str]:
    for path in (ROOT / "models").rglob("_*__models.yml"):
        for node in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("models", []):
            if node["name"] == model:
                return [column["name"] for column in node.get("columns", [])]
    raise AssertionError(f"no model {model} in models/**/_*__models.yml")


def table_after(text: str, marker: str) -> list[list[str]]:
    """The body rows of the table that follows a marker comment (blank lines between allowed)."""
    assert marker in text, f"no '{marker}' before its table"
    table = []
    for line in text[text.index(marker) + len(marker):].lstrip("\n").splitlines():
        if not line.startswith("|"):
            break
        table.append(line)
    return table_rows("\n".join(table))


def first_code_span(row: list[str]) -> str:
    spans = re.findall(r"`([^`]+)`", row[0])
    return spans[0] if spans else row[0]


@pytest.mark.parametrize("document, model", [
    ("kpi-definitions.md", "kpi_results"),
    ("monitoring.md", "kpi_monthly"),
    ("monitoring.md", "kpi_spc_summary"),
    ("monitoring.md", "outlier_register"),
])
def test_documented_mart_columns_are_the_models_columns_in_order(document, model):
    text = (SPEC / document).read_text(encoding="utf-8")
    rows = table_after(text, CHECKED_COLUMNS.format(model=model))
    assert [first_code_span(row) for row in rows] == model_columns(model)


def test_documented_reject_codes_are_the_loaders_in_rule_order():
    from flsdb.ingest.row_checks import REJECT_CODES

    text = (SPEC / "submission-format.md").read_text(encoding="utf-8")
    rows = table_after(text, "<!-- reject codes: checked against flsdb.ingest.row_checks.REJECT_CODES -->")
    assert [first_code_span(row) for row in rows] == list(REJECT_CODES)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/python/test_docs.py --write   (rewrites the generated tables)")
    for block, (path, renderer) in GENERATED.items():
        changed = rewrite(path, block, renderer)
        print(f"{path.relative_to(ROOT)}: {block} {'rewritten' if changed else 'unchanged'}")
