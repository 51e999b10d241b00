"""SQL outside macros/ must run on every engine the project supports (DuckDB and Spark).

Engine-specific SQL lives in the adapter.dispatch macros of macros/cross_engine/ (docs/spark.md).
This test reads every model and every dbt test (models/**/*.sql, tests/*.sql, tests/generic/*.sql)
and fails on any use of a function, type or syntax that exists only on DuckDB, or that means
something different on Spark, naming the file, the line and the macro to use instead. Jinja
(`{{ ... }}`, `{% ... %}`) and comments are skipped: macro calls are where engine SQL belongs.

It also checks that the portable age formula (default__/spark__age_in_years) agrees with DuckDB's
age() on every birthday of a leap-year cycle, so the engines cannot disagree on age bands.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from flsdb import paths

# name -> what to use instead. Matched as a function call: the name followed by "(".
ENGINE_SPECIFIC_FUNCTIONS: dict[str, str] = {
    # dates and times
    "try_strptime": "parse_submission_date / parse_submission_timestamp",
    "strptime": "parse_submission_date / parse_submission_timestamp",
    "strftime": "a dispatch macro in macros/cross_engine/",
    "age": "age_in_years",
    "epoch": "a dispatch macro in macros/cross_engine/",
    "epoch_ms": "a dispatch macro in macros/cross_engine/",
    "epoch_us": "a dispatch macro in macros/cross_engine/",
    "date_diff": "dbt.datediff",
    "datediff": "dbt.datediff",
    "date_sub": "dbt.dateadd",
    "date_add": "dbt.dateadd",
    "today": "a dispatch macro in macros/cross_engine/",
    "make_timestamp": "a dispatch macro in macros/cross_engine/",
    "range": "calendar_days (or another dispatch macro)",
    "generate_series": "calendar_days (or another dispatch macro)",
    # regular expressions
    "regexp_full_match": "regex_full_match",
    "regexp_matches": "regex_full_match",
    "regexp_extract_all": "a dispatch macro in macros/cross_engine/",
    "regexp_split_to_array": "a dispatch macro in macros/cross_engine/",
    # lists, strings, aggregation
    "list_transform": "a dispatch macro in macros/cross_engine/",
    "list_filter": "a dispatch macro in macros/cross_engine/",
    "list_value": "a dispatch macro in macros/cross_engine/",
    "list_aggregate": "a dispatch macro in macros/cross_engine/",
    "list_sort": "a dispatch macro in macros/cross_engine/",
    "list_contains": "a dispatch macro in macros/cross_engine/",
    "list_extract": "a dispatch macro in macros/cross_engine/",
    "list": "a dispatch macro in macros/cross_engine/",
    "array_to_string": "aggregate_strings, or a dispatch macro",
    "string_split": "a dispatch macro in macros/cross_engine/",
    "str_split": "a dispatch macro in macros/cross_engine/",
    "string_agg": "aggregate_strings",
    "group_concat": "aggregate_strings",
    "listagg": "aggregate_strings",
    "strpos": "a dispatch macro in macros/cross_engine/",
    "starts_with": "a dispatch macro in macros/cross_engine/",
    "ends_with": "a dispatch macro in macros/cross_engine/",
    "strip_accents": "a dispatch macro in macros/cross_engine/",
    "printf": "a dispatch macro in macros/cross_engine/",
    "format": "a dispatch macro in macros/cross_engine/",
    # bytes and hashing (the pseudonym)
    "unhex": "pseudonymise",
    "sha256": "pseudonymise",
    "hash": "pseudonymise, or a dispatch macro",
    "xor": "a dispatch macro in macros/cross_engine/",
    # files
    "read_csv": "read_reference_csv",
    "read_csv_auto": "read_reference_csv",
    "read_parquet": "a source (register_external_sources on Spark)",
    "read_json": "a source",
    "read_json_auto": "a source",
    "glob": "a source",
    # other
    "error": "a dispatch macro (Spark: raise_error)",
    "struct_pack": "a dispatch macro in macros/cross_engine/",
    "unnest": "a dispatch macro in macros/cross_engine/",
    "columns": "explicit column lists",
}

# Types: Spark has no blob/hugeint/unsigned types, and needs a length for varchar.
ENGINE_SPECIFIC_TYPES = ("blob", "bytea", "hugeint", "uhugeint", "ubigint", "uinteger", "usmallint",
                         "utinyint", "varchar", "text", "timestamptz")

# Syntax: pattern -> what to do instead.
ENGINE_SPECIFIC_SYNTAX: dict[str, str] = {
    r"::": "cast(... as ...) with dbt.type_*() types",
    r"\binterval\b": "dbt.dateadd / dbt.datediff",
    r"\*\s*(exclude|replace)\s*\(": "an explicit column list",
    r"\bqualify\b": "a window in a CTE and a where clause",
    r"\bilike\b": "lower(...) like ...",
    r"\bsimilar\s+to\b": "regex_full_match",
    r"\b(target\.type|adapter\.type\s*\(\s*\))": "a dispatch macro: models must not know their engine",
}

SCANNED = ["models/**/*.sql", "tests/*.sql", "tests/generic/*.sql"]


def _blank(match: re.Match) -> str:
    """Replace a span by spaces, keeping newlines, so line numbers stay right."""
    return re.sub(r"[^\n]", " ", match.group(0))


def strip_jinja_and_comments(sql: str) -> str:
    sql = re.sub(r"\{#.*?#\}", _blank, sql, flags=re.S)
    sql = re.sub(r"\{\{.*?\}\}", _blank, sql, flags=re.S)
    sql = re.sub(r"\{%.*?%\}", _blank, sql, flags=re.S)
    sql = re.sub(r"/\*.*?\*/", _blank, sql, flags=re.S)
    sql = re.sub(r"--[^\n]*", _blank, sql)
    return sql


def strip_string_literals(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'", _blank, sql)


def findings(text: str) -> list[str]:
    """Every engine-specific construct in one file's SQL, as 'line N: what (use ...)'."""
    jinja_free = strip_jinja_and_comments(text)
    code = strip_string_literals(jinja_free)
    problems: list[tuple[int, str]] = []

    def line_of(position: int) -> int:
        return code.count("\n", 0, position) + 1

    for name, instead in ENGINE_SPECIFIC_FUNCTIONS.items():
        for match in re.finditer(rf"(?<![\w.]){re.escape(name)}\s*\(", code, flags=re.I):
            problems.append((line_of(match.start()), f"{name}() is engine-specific: use {instead}"))
    for type_name in ENGINE_SPECIFIC_TYPES:
        for match in re.finditer(rf"\bas\s+{type_name}\b(?!\s*\()", code, flags=re.I):
            problems.append((line_of(match.start()),
                             f"type {type_name} is engine-specific: use dbt.type_string() and friends"))
    for pattern, instead in ENGINE_SPECIFIC_SYNTAX.items():
        for match in re.finditer(pattern, code, flags=re.I):
            problems.append((line_of(match.start()), f"'{match.group(0).strip()}' is engine-specific: use {instead}"))
    # A double-quoted name is an identifier on DuckDB and a string on Spark: adapter.quote('...').
    for match in re.finditer(r'"[^"\n]*"', code):
        problems.append((line_of(match.start()),
                         f"{match.group(0)} is quoted with double quotes: use {{{{ adapter.quote('...') }}}}"))
    # target.type / adapter.type() inside Jinja: models must not branch on their engine.
    for match in re.finditer(r"\{[{%].*?(target\.type|adapter\.type\s*\(\s*\)).*?[}%]\}", text, flags=re.S):
        problems.append((text.count("\n", 0, match.start()) + 1,
                         f"{match.group(1)} in a model: put engine-specific SQL in a dispatch macro"))
    return [f"line {line}: {message}" for line, message in sorted(set(problems))]


def sql_files() -> list[Path]:
    files = sorted({path for pattern in SCANNED for path in paths.PROJECT_DIR.glob(pattern)})
    return [path for path in files if "macros" not in path.relative_to(paths.PROJECT_DIR).parts]


def test_there_are_files_to_scan():
    assert len(sql_files()) > 20


@pytest.mark.parametrize("path", sql_files(), ids=lambda path: str(path.relative_to(paths.PROJECT_DIR)))
def test_sql_outside_macros_is_portable(path: Path):
    problems = findings(path.read_text(encoding="utf-8"))
    assert not problems, f"{path.relative_to(paths.PROJECT_DIR)}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("sql, expected", [
    ("select try_strptime(x, '%Y') from t", "try_strptime()"),
    ("select regexp_full_match(x, 'a') from t", "regexp_full_match()"),
    ("select list_transform(range(1, 3), i -> i) from t", "list_transform()"),
    ("select strftime(d, '%Y') from t", "strftime()"),
    ("select date_part('year', age(a, b)) from t", "age()"),
    ("select epoch(ts) from t", "epoch()"),
    ("select * from read_csv('x.csv')", "read_csv()"),
    ("select unhex(printf('%02x', 1)) from t", "unhex()"),
    ("select x::integer from t", "'::'"),
    ("select d + interval 1 day from t", "'interval'"),
    ('select "1.01 NHS Number" from t', "double quotes"),
    ("select cast(x as varchar) from t", "type varchar"),
    ("select * exclude (a) from t", "exclude"),
    ("{% if target.type == 'duckdb' %}select 1{% endif %}", "target.type"),
])
def test_the_checker_catches_engine_specific_sql(sql, expected):
    assert any(expected in problem for problem in findings(sql)), findings(sql)


@pytest.mark.parametrize("sql", [
    "select {{ parse_submission_date('x') }} as d from t",
    "select cast(x as {{ dbt.type_string() }}) as s from t",
    "-- regexp_full_match( in a comment\nselect 1 as a",
    "select 'read_csv(' as not_a_call",
    "select {{ adapter.quote('1.01 NHS Number') }} as n from t",
    "select coalesce(a, b) as c, sum(x) as s, extract(year from d) as y from t",
])
def test_the_checker_passes_portable_sql(sql):
    assert findings(sql) == []


def test_portable_age_formula_agrees_with_duckdb_age():
    """default__/spark__age_in_years against DuckDB's age() (duckdb__age_in_years), for every
    birth date over four years (a leap day included) on every day of the next four years' span."""
    con = duckdb.connect()
    disagreements = con.execute("""
        with births as (
            select cast(b as date) as birth_date
            from range(date '1951-01-01', date '1955-01-01', interval 1 day) as r (b)
        ),
        days as (
            select cast(d as date) as on_date
            from range(date '2023-01-01', date '2025-01-01', interval 1 day) as r (d)
        )
        select count(*) from births cross join days
        where cast(date_part('year', age(on_date, birth_date)) as integer)
            != cast(
                extract(year from on_date) - extract(year from birth_date)
                - case when extract(month from on_date) * 100 + extract(day from on_date)
                    < extract(month from birth_date) * 100 + extract(day from birth_date) then 1 else 0 end
                as integer)
    """).fetchone()[0]
    con.close()
    assert disagreements == 0
