"""Great Expectations suites for the data-quality gate, defined in code.

GX is a second, independent look at the data: the whole-table facts (rejects, warnings,
exclusions, volumes, unknown deprivation, KPI coverage) are dbt models (models/quality/) and dbt
tests; GX validates the small outputs whole (marts.kpi_results, quality.dq_checks,
quality.dq_fls_volumes) and a repeatable random sample of each big table (raw submissions,
episodes, problems) of at most FLSDB_GX_SAMPLE_ROWS rows, so that its cost does not grow with
the data (at 100x, GX over every row took 473 s against a 198 s build).

Each suite validates a pandas DataFrame read from the DuckDB warehouse with plain SQL. (The GX
SQL datasource over duckdb_engine returns no rows in GX 1.24, see DEVELOPERS.md, "Known
problems".) The raw frame is shaped for checking: coded answers are trimmed and lower-cased (the
contract matches them case-insensitively), dates are parsed in both allowed formats, and the
NHS number is reduced to its digit count, so that no identifier reaches GX.

No value from a submission reaches a GX result or the Data Docs: expectations run with no
unexpected-value examples (`partial_unexpected_count` 0), so a hostile cell such as
`<img src=x onerror=...>` is counted, never rendered. The report traces each problem to its file
and line instead (quality.dq_problems).

The KPI list (numbers, which KPIs are ratios to an expected count) is read from the KPI seed in
the warehouse (reference.kpi_definitions), and the FLS list from the registry seed.

Severity: `critical` expectations block publication (`error` in validation.json); `warning`
ones are reported (`warn`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import duckdb
import pandas as pd

from flsdb import contract, settings

CRITICAL, WARNING = "critical", "warning"
def _number(text: str) -> int | float:
    return int(text) if text.lstrip("+-").isdigit() else float(text)


# The raw contract, read from its one home (flsdb.contract: seeds/submission_fields.csv and the
# vars of dbt_project.yml), shaped as the suites use it.
REQUIRED = contract.REQUIRED_COLUMNS
CODED = {f.column_name: f.code_list for f in contract.FIELDS if f.kind == "code"}
NUMBERS = {f.column_name: (_number(f.min_value), _number(f.max_value)) for f in contract.FIELDS
           if f.kind in ("number", "integer")}
# Dates checked against the fracture date: (may not be before it, at most this many days after).
DATES_AFTER_FRACTURE = {f.column_name: f.max_days_after_fracture for f in contract.FIELDS
                        if f.date_rule == "not_before_fracture"}
OTHER_DATES = tuple(f.column_name for f in contract.FIELDS if f.kind == "date" and not f.date_rule
                    and not f.is_required)
KPI_1_KEY_FIELDS = tuple(f.column_name for f in contract.KPI_1_KEY_FIELDS)
# KPI 1's follow-up key fields are measured over the records due: field -> days after the fracture.
KPI_1_DUE_DAYS = {f.column_name: contract.FOLLOW_UP_DUE_DAYS[f.kpi_1_measured_over]
                  for f in contract.KPI_1_KEY_FIELDS if f.kpi_1_measured_over}
LINEAGE = ("_file_sha256", "_source_file", "_line_number", "_load_order", "_loaded_at")
EARLIEST_FRACTURE = dt.date.fromisoformat(contract.EARLIEST_FRACTURE_DATE)
NUMBER_PATTERN = r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$"
POSTCODE_PATTERN = r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$"
# A date as the loader accepts it (every accepted row's dates match; the suite checks it again).
DATE_PATTERN = "^(?:" + "|".join(contract.strict_format_regex(f) for f in contract.DATE_FORMATS) + ")$"
DATE_WORDING = contract.format_wording(contract.DATE_FORMATS)

def _frame(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    """Run `sql` into pandas, with text as categorical columns: GX filters the whole frame for
    every metric of every expectation, and taking rows of (pyarrow or object) strings costs many
    times more than taking integer category codes (a 60 s validation becomes a few seconds)."""
    frame = con.execute(sql).df()
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]) and \
                not pd.api.types.is_datetime64_any_dtype(frame[column]) and \
                not pd.api.types.is_bool_dtype(frame[column]):
            frame[column] = frame[column].astype("category")
    return frame


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _parse_date(expr: str) -> str:
    text = f"nullif(trim({expr}), '')"
    return ("coalesce(" + ", ".join(f"try_strptime({text}, '{fmt}')" for fmt in contract.DATE_FORMATS)
            + ")::date")


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------

def extract_date(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    try:
        row = con.execute("select max(extract_date) from marts.fct_episodes").fetchone()
    except duckdb.CatalogException:  # not built: the suites that need it report it
        return None
    return row[0] if row else None


def raw_submissions_frame(con: duckdb.DuckDBPyConnection, sample_rows: int) -> pd.DataFrame:
    """A repeatable sample of raw.submission_records, shaped for checking (see the module
    docstring)."""
    present = {r[0] for r in con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'submission_records'").fetchall()}
    fracture = _parse_date(_q("1.09 Date Index Frac Diagnosed"))
    select: list[str] = []
    for column in (*contract.COLUMNS, *LINEAGE):
        if column not in present:
            continue
        c = _q(column)
        if column in LINEAGE:
            expr = c
        elif column == "1.01 NHS Number":
            expr = f"nullif(length(regexp_replace({c}, '[^0-9]', '', 'g')), 0)"
        elif column == "1.02 Date of Birth":  # parsed, only its presence is checked
            expr = f"{_parse_date(c)} is not null or null"
        elif column == "1.04 Post Code":
            expr = f"nullif(upper(regexp_replace({c}, '\\s', '', 'g')), '')"
        elif column == "FLS Code":
            expr = f"nullif(upper(trim({c})), '')"
        elif column == "Last Updated":
            expr = ("coalesce(" + ", ".join(f"try_strptime(trim({c}), '{fmt}')"
                                             for fmt in contract.TIMESTAMP_FORMATS) + ")")
        elif column == "1.09 Date Index Frac Diagnosed":
            expr = fracture
        elif column in CODED:
            expr = f"nullif(lower(trim({c})), '')"
        else:
            expr = f"nullif(trim({c}), '')"
        select.append(f"{expr} as {c}")
    for column in NUMBERS:
        if column in present:
            select.append(f"try_cast(nullif(trim({_q(column)}), '') as double) as {_q(column + ' (number)')}")
    for column in DATES_AFTER_FRACTURE:
        if column in present:
            parsed = _parse_date(_q(column))
            select.append(f"date_diff('day', {fracture}, {parsed}) as {_q(column + ' (days after fracture)')}")
    # KPI 1's follow-up fields are measured over the records due (docs/specification/kpi-definitions.md): the value, or
    # 'not due' for a record not yet due, so that a null-rate check counts due records only.
    # (A row_condition on expect_column_values_to_not_be_null is not applied by GX 1.24.)
    due_days = f"date_diff('day', {fracture}, (select max(extract_date) from marts.fct_episodes))"
    for column, days in KPI_1_DUE_DAYS.items():
        if column in present:
            select.append(f"case when {due_days} >= {days} then nullif(lower(trim({_q(column)})), '') "
                          f"else 'not due' end as {_q(column + ' (when due)')}")
    return _frame(con, f"select {', '.join(select)} from {_sample('raw.submission_records', sample_rows)}")


RESULTS_COLUMNS = (  # the contract of docs/specification/kpi-definitions.md / README, in order
    "audit_year", "geography_level", "geography_code", "geography_name", "kpi_number", "kpi_name",
    "breakdown", "breakdown_value", "numerator", "denominator", "value_pct", "denominator_note",
    "ci_lower_pct",
    "ci_upper_pct", "ci_method", "national_value_pct", "target_pct", "rating",
    "funnel_lower_95_pct", "funnel_upper_95_pct", "funnel_lower_998_pct", "funnel_upper_998_pct",
    "is_outlier_alert", "is_outlier_alarm", "outlier_direction",
    "funnel_lower_95_unadjusted_pct", "funnel_upper_95_unadjusted_pct",
    "funnel_lower_998_unadjusted_pct", "funnel_upper_998_unadjusted_pct",
    "overdispersion_phi", "overdispersion_tau2", "is_suppressed",
    "is_synthetic_data",
)
LEVELS = ("national", "country", "region", "fls")
BREAKDOWNS = ("all", "deprivation_quintile", "sex", "age_band", "fracture_site", "care_home")
PROBLEM_KINDS = ("file refused", "row rejected", "newer version rejected", "warning", "exclusion",
                 "unknown deprivation", "withdrawn", "file missing from landing")
# Rows of a big table GX validates: a repeatable random sample (see the module docstring).
SAMPLE_SEED = 20240101
# GX metrics results with no examples of unexpected values: nothing of a submission is rendered.
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 0}


@dataclass(frozen=True)
class Context:
    """What the suites are parameterised by, read from the warehouse (seeds and marts)."""
    extract_date: dt.date | None
    kpi_numbers: tuple[int, ...]
    ratio_kpis: tuple[int, ...]          # KPI value is a ratio to an expected count: not <= 100%
    fls_codes: tuple[str, ...]
    # KPI 1's key_field_threshold_pct as a share: the GX null-rate check on its raw key fields
    key_field_share: float | None = None
    sample_rows: int = 50_000
    # The share of a field's values in the raw sample that its format and range checks pass
    # (`mostly`): 1 - field_warnings' threshold in seeds/dq_thresholds.csv, the share of a
    # service's rows with an unusable value that the data-quality checks allow. None: every row.
    valid_value_share: float | None = None


def read_context(con: duckdb.DuckDBPyConnection, sample_rows: int | None = None) -> Context:
    """The suites' parameters; sample_rows defaults to FLSDB_GX_SAMPLE_ROWS (flsdb.settings)."""
    kpis = con.execute("select kpi_number, value_type, key_field_threshold_pct "
                       "from reference.kpi_definitions order by kpi_number").fetchall()
    thresholds = [pct for _, kind, pct in kpis if kind == "completeness" and pct is not None]
    try:
        unusable = con.execute("select threshold_value from reference.dq_thresholds "
                               "where check_name = 'field_warnings'").fetchall()
    except duckdb.CatalogException:     # the seed was not loaded: every row must pass
        unusable = []
    return Context(
        valid_value_share=1 - float(unusable[0][0]) if unusable and unusable[0][0] else None,
        extract_date=extract_date(con),
        kpi_numbers=tuple(int(k) for k, _, _ in kpis),
        ratio_kpis=tuple(int(k) for k, kind, _ in kpis if kind == "ratio_to_expected"),
        key_field_share=float(thresholds[0]) / 100 if thresholds else None,
        fls_codes=tuple(r[0] for r in con.execute(
            "select fls_code from reference.fls_registry order by 1").fetchall()),
        sample_rows=sample_rows if sample_rows is not None else settings.gx_sample_rows())


def _sample(table: str, rows: int) -> str:
    """A repeatable reservoir sample of at most `rows` rows of `table` (all rows when fewer)."""
    return f"(select * from {table} using sample reservoir({int(rows)} rows) repeatable ({SAMPLE_SEED}))"


def staged_episodes_frame(con: duckdb.DuckDBPyConnection, sample_rows: int) -> pd.DataFrame:
    """A sample of marts.fct_episodes, without the per-KPI reason columns (not checked here)."""
    columns = [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = 'marts' "
        "and table_name = 'fct_episodes' order by ordinal_position").fetchall()
        if not (r[0].startswith("kpi_") and r[0].endswith("_reason"))]
    if not columns:
        raise duckdb.CatalogException("Table with name fct_episodes does not exist (schema marts)")
    return _frame(con, f"select {', '.join(_q(c) for c in columns)} "
                       f"from {_sample('marts.fct_episodes', sample_rows)}")


def dq_problems_frame(con: duckdb.DuckDBPyConnection, sample_rows: int) -> pd.DataFrame:
    return _frame(con, f"select * from {_sample('quality.dq_problems', sample_rows)}")


def kpi_results_frame(con: duckdb.DuckDBPyConnection, sample_rows: int) -> pd.DataFrame:
    return _frame(con, "select * from marts.kpi_results")


def dq_checks_frame(con: duckdb.DuckDBPyConnection, sample_rows: int) -> pd.DataFrame:
    # (a row_condition on expect_column_values_to_not_be_null is not applied by GX 1.24)
    return _frame(con, "select *, threshold_value is not null or severity = 'info' "
                       "as has_threshold_or_is_information from quality.dq_checks")


def dq_fls_volumes_frame(con: duckdb.DuckDBPyConnection, sample_rows: int) -> pd.DataFrame:
    return _frame(con, "select * from quality.dq_fls_volumes")


# --------------------------------------------------------------------------------------------
# Suites. `meta["description"]` is what the report shows; without one, describe() words it.
# --------------------------------------------------------------------------------------------

def _said(expectation, text: str):
    expectation.meta = {**(expectation.meta or {}), "description": text}
    return expectation


def _share(allowed: dict) -> str:
    """The end of a said expectation's sentence: how many rows must pass."""
    mostly = allowed.get("mostly")
    return f" in at least {mostly:.0%} of rows." if mostly is not None else " in every row."


def _suite_raw_submissions(gx, c: Context) -> list:
    X = gx.expectations
    e = c.extract_date
    # the format and range checks of single values warn above the share of unusable values that
    # the data-quality checks allow (Context.valid_value_share); the blocking ones allow none
    allowed = {"mostly": c.valid_value_share} if c.valid_value_share is not None else {}
    out = [_said(X.ExpectTableColumnsToMatchSet(column_set=[*contract.COLUMNS, *LINEAGE],
                                                exact_match=False),
                 "Every column of the submission format and the loader's lineage is present.")]
    out.append(X.ExpectTableRowCountToBeBetween(min_value=1))
    for column in REQUIRED:
        out.append(X.ExpectColumnValuesToNotBeNull(column=column, severity=CRITICAL))
    out.append(_said(X.ExpectColumnValuesToBeInSet(column="FLS Code", value_set=list(c.fls_codes),
                                                   severity=CRITICAL),
                     "Every accepted row names a service in the FLS registry."))
    out.append(_said(X.ExpectColumnValuesToBeBetween(column="1.01 NHS Number", min_value=10,
                                                     max_value=10, severity=CRITICAL),
                     "Every accepted NHS number has 10 digits."))
    out.append(_said(X.ExpectColumnValuesToBeBetween(
        column="1.09 Date Index Frac Diagnosed", min_value=pd.Timestamp(EARLIEST_FRACTURE),
        max_value=pd.Timestamp(e) if e else None, severity=CRITICAL),
        f"Every index fracture date is between {EARLIEST_FRACTURE} and the extract date."))
    out.append(_said(X.ExpectColumnValuesToBeBetween(
        column="Last Updated", min_value=pd.Timestamp(EARLIEST_FRACTURE),
        max_value=pd.Timestamp(e) + pd.Timedelta(days=1) if e else None, severity=CRITICAL),
        f"Every Last Updated time is between {EARLIEST_FRACTURE} and the end of the extract date."))
    for column, code_list in CODED.items():
        codes = sorted({code.lower() for code in contract.CODE_LISTS[code_list]})
        blocking = column == "1.11 SiteFirstFrac"
        out.append(X.ExpectColumnValuesToBeInSet(
            column=column, value_set=codes, severity=CRITICAL if blocking else WARNING,
            **({} if blocking else allowed)))
    for column, (low, high) in NUMBERS.items():
        out.append(_said(X.ExpectColumnValuesToMatchRegex(column=column, regex=NUMBER_PATTERN,
                                                          severity=WARNING, **allowed),
                         f"'{column}' is written as a number" + _share(allowed)))
        out.append(X.ExpectColumnValuesToBeBetween(column=column + " (number)", min_value=low,
                                                   max_value=high, severity=WARNING, **allowed))
    out.append(_said(X.ExpectColumnValuesToMatchRegex(column="1.04 Post Code", regex=POSTCODE_PATTERN,
                                                      severity=WARNING, **allowed),
                     "'1.04 Post Code' is a valid UK postcode" + _share(allowed)))
    for column, max_days in DATES_AFTER_FRACTURE.items():
        out.append(_said(X.ExpectColumnValuesToMatchRegex(column=column, regex=DATE_PATTERN,
                                                          severity=WARNING, **allowed),
                         f"'{column}' is a date written {DATE_WORDING}" + _share(allowed)))
        out.append(_said(X.ExpectColumnValuesToBeBetween(
            column=column + " (days after fracture)", min_value=0, max_value=max_days,
            severity=WARNING, **allowed),
            f"'{column}' is not before the fracture"
            + (f" and at most {max_days} days after it" if max_days else "") + _share(allowed)))
    for column in OTHER_DATES:
        out.append(_said(X.ExpectColumnValuesToMatchRegex(column=column, regex=DATE_PATTERN,
                                                          severity=WARNING, **allowed),
                         f"'{column}' is a date written {DATE_WORDING}" + _share(allowed)))
    for column in KPI_1_KEY_FIELDS:
        # As docs/specification/kpi-definitions.md: 6.01 and 6.06 over records due at 16 weeks, 7.01 at 52 weeks.
        out.append(_said(X.ExpectColumnValuesToNotBeNull(
            column=column + " (when due)" if column in KPI_1_DUE_DAYS else column,
            mostly=c.key_field_share, severity=WARNING),
            f"KPI 1 key field '{column}' is recorded in at least {c.key_field_share:.0%} of rows"
            + (" (of the records due)." if column in KPI_1_DUE_DAYS else ".")))
    return out


def _suite_staged_episodes(gx, c: Context) -> list:
    X = gx.expectations
    e = c.extract_date
    cohort = {"row_condition": "is_in_cohort == True", "condition_parser": "pandas"}
    out = [
        X.ExpectTableRowCountToBeBetween(min_value=1),
        X.ExpectCompoundColumnsToBeUnique(column_list=["fls_code", "record_id"]),
        _said(X.ExpectColumnValuesToMatchRegex(column="patient_pseudonym", regex=r"^[0-9a-f]{64}$"),
              "Every patient is a 64-character pseudonym, never an NHS number."),
        _said(X.ExpectColumnValuesToBeInSet(column="fls_code", value_set=list(c.fls_codes)),
              "Every episode belongs to a service in the FLS registry."),
        _said(X.ExpectColumnValuesToBeBetween(column="age_at_fracture", min_value=50, max_value=110,
                                              **cohort),
              "Every cohort patient was aged 50 to 110 at the fracture."),
        _said(X.ExpectColumnValuesToBeBetween(column="fracture_date",
                                              min_value=pd.Timestamp(EARLIEST_FRACTURE),
                                              max_value=pd.Timestamp(e) if e else None, **cohort),
              f"Every cohort fracture is dated between {EARLIEST_FRACTURE} and the extract date."),
        X.ExpectColumnValuesToBeInSet(column="fracture_site",
                                      value_set=list(contract.CODE_LISTS["fracture_site"])),
        X.ExpectColumnValuesToBeInSet(column="sex", value_set=list(contract.CODE_LISTS["gender"])),
        X.ExpectColumnValuesToBeInSet(column="deprivation_quintile",
                                      value_set=["1", "2", "3", "4", "5", "unknown"]),
        X.ExpectColumnValuesToBeInSet(column="exclusion_reason", value_set=[
            f"aged under {contract.MIN_AGE_YEARS} at the fracture", "duplicate episode",
            "fracture after the extract date"]),
        X.ExpectColumnValuesToBeInSet(column="postcode_match_status", value_set=[
            "matched", "postcode not in lookup", "invalid postcode", "not recorded"]),
        _said(X.ExpectColumnValuesToBeBetween(column="days_fracture_to_assessment", min_value=0),
              "No FLS assessment is dated before the fracture."),
        _said(X.ExpectColumnValuesToBeBetween(column="days_fracture_to_dxa", min_value=0),
              "No DXA scan is dated before the fracture."),
        _said(X.ExpectColumnValuesToNotBeNull(column="source_file"),
              "Every episode names the file it came from."),
        _said(X.ExpectColumnValuesToBeBetween(column="line_number", min_value=2),
              "Every episode names its line in that file (after the header)."),
    ]
    for expectation in out:
        if expectation.severity is None:
            expectation.severity = CRITICAL
    return out


def _suite_kpi_results(gx, c: Context) -> list:
    X = gx.expectations
    ratios = list(c.ratio_kpis)
    bounded = {"row_condition": f"kpi_number not in {ratios}", "condition_parser": "pandas"}
    return [
        _said(X.ExpectTableColumnsToMatchOrderedList(column_list=list(RESULTS_COLUMNS)),
              "The results table has exactly the columns of the published contract, in order."),
        X.ExpectTableRowCountToBeBetween(min_value=1),
        _said(X.ExpectCompoundColumnsToBeUnique(column_list=[
            "audit_year", "geography_level", "geography_code", "kpi_number", "breakdown",
            "breakdown_value"]),
            "Each KPI result appears once per year, geography and breakdown."),
        X.ExpectColumnValuesToBeInTypeList(column="audit_year", type_list=["int32", "int64", "Int32", "Int64"]),
        X.ExpectColumnValuesToBeInTypeList(column="numerator", type_list=["float64", "Float64"]),
        X.ExpectColumnValuesToBeInTypeList(column="denominator", type_list=["float64", "Float64"]),
        X.ExpectColumnValuesToBeInTypeList(column="value_pct", type_list=["float64", "Float64"]),
        X.ExpectColumnValuesToBeInSet(column="geography_level", value_set=list(LEVELS)),
        X.ExpectColumnValuesToBeInSet(column="breakdown", value_set=list(BREAKDOWNS)),
        _said(X.ExpectColumnValuesToBeInSet(column="kpi_number", value_set=list(c.kpi_numbers)),
              "Every result is for a KPI of the KPI definitions."),
        X.ExpectColumnValuesToNotBeNull(column="numerator"),
        X.ExpectColumnValuesToNotBeNull(column="denominator"),
        X.ExpectColumnValuesToBeBetween(column="numerator", min_value=0),
        X.ExpectColumnValuesToBeBetween(column="denominator", min_value=0),
        X.ExpectColumnValuesToBeBetween(column="value_pct", min_value=0),
        _said(X.ExpectColumnValuesToBeBetween(column="value_pct", min_value=0, max_value=100, **bounded),
              "Every percentage KPI is between 0% and 100% (KPIs measured against an expected "
              "count may exceed 100%)."),
        _said(X.ExpectColumnPairValuesAToBeGreaterThanB(column_A="denominator", column_B="numerator",
                                                        or_equal=True, **bounded),
              "No numerator exceeds its denominator (KPIs measured against an expected count "
              "excepted)."),
        X.ExpectColumnValuesToBeInSet(column="is_synthetic_data", value_set=[True, False]),
    ]


def _suite_dq_checks(gx, c: Context) -> list:
    X = gx.expectations
    return [
        _said(X.ExpectTableRowCountToBeBetween(min_value=1), "The data-quality checks were computed."),
        X.ExpectColumnValuesToBeUnique(column="check_name"),
        X.ExpectColumnValuesToBeInSet(column="severity", value_set=["error", "warn", "info"]),
        X.ExpectColumnValuesToNotBeNull(column="description"),
        _said(X.ExpectColumnValuesToBeInSet(column="has_threshold_or_is_information", value_set=[True]),
              "Every check that can warn or block has a threshold (information needs none)."),
        X.ExpectColumnValuesToBeInSet(column="passed", value_set=[True, False]),
    ]


def _suite_dq_fls_volumes(gx, c: Context) -> list:
    X = gx.expectations
    return [
        X.ExpectCompoundColumnsToBeUnique(column_list=["fls_code", "audit_year"]),
        X.ExpectColumnValuesToBeInSet(column="fls_code", value_set=list(c.fls_codes)),
        X.ExpectColumnValuesToBeBetween(column="records", min_value=0),
        X.ExpectColumnValuesToBeBetween(column="unknown_deprivation_share", min_value=0, max_value=1),
        _said(X.ExpectColumnValuesToBeBetween(column="cohort_change_share", min_value=-1),
              "No service's cohort fell by more than all of it (a change of at least -100%)."),
        _said(X.ExpectColumnPairValuesAToBeGreaterThanB(column_A="records", column_B="cohort_records",
                                                        or_equal=True),
              "No service has more cohort records than records."),
    ]


def _suite_dq_problems(gx, c: Context) -> list:
    X = gx.expectations
    return [
        X.ExpectColumnValuesToBeInSet(column="problem_kind", value_set=list(PROBLEM_KINDS)),
        _said(X.ExpectColumnValuesToNotBeNull(column="source_file"),
              "Every problem names the file it was found in."),
        _said(X.ExpectColumnValuesToBeBetween(column="line_number", min_value=2),
              "Every problem of a row names its line in the file (after the header)."),
        _said(X.ExpectColumnValuesToNotBeNull(column="description"),
              "Every problem is described in words."),
    ]


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    frame: Callable
    expectations: Callable
    sampled: bool = False


SUITES = (
    Suite("raw_submissions", "raw.submission_records (accepted rows as sent)",
          raw_submissions_frame, _suite_raw_submissions, sampled=True),
    Suite("staged_episodes", "marts.fct_episodes (staged, versioned, pseudonymised episodes)",
          staged_episodes_frame, _suite_staged_episodes, sampled=True),
    Suite("dq_problems", "quality.dq_problems (every problem with its file and line)",
          dq_problems_frame, _suite_dq_problems, sampled=True),
    Suite("kpi_results", "marts.kpi_results (the results table)", kpi_results_frame,
          _suite_kpi_results),
    Suite("dq_checks", "quality.dq_checks (the data-quality checks)", dq_checks_frame,
          _suite_dq_checks),
    Suite("dq_fls_volumes", "quality.dq_fls_volumes (each service's volumes by year)",
          dq_fls_volumes_frame, _suite_dq_fls_volumes),
)
