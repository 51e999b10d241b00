"""Great Expectations suites for the data-quality gate, defined in code.

Each suite validates a pandas DataFrame read from the DuckDB warehouse with plain SQL. (The GX
SQL datasource over duckdb_engine returns no rows in GX 1.24, see DEVELOPERS.md, "Known
problems".) The frames are shaped for checking: coded answers are trimmed and lower-cased (the
contract matches them case-insensitively), dates are parsed in both allowed formats, and the
NHS number is reduced to its digit count, so that no identifier is listed in a GX result.

Severity: `critical` expectations block publication (`error` in validation.json); `warning`
ones are reported (`warn`).

Suites:
- `raw_submissions`: raw.submission_records, per column: types, code lists, date ranges, and
  the null-rate thresholds of KPI 1's key fields;
- `staged_episodes`: marts.fct_episodes (one row per record's current version, pseudonymised);
- `kpi_results`: marts.kpi_results: schema, value ranges, numerator <= denominator;
- `kpi_results_row_counts`: rows, geographies and KPIs per audit year and geography level;
- `fls_volume_change`: year-on-year change of each FLS's cohort (KPI 4 denominator), flagging
  a drop of more than 30%.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from flsdb import contract

CRITICAL, WARNING = "critical", "warning"
VOLUME_DROP_LIMIT_PCT = 30.0
KPI_1_DUE_DAYS = {"6.01 FollowUp12_16": 112, "6.06 StartStrenBalExe": 112, "7.01 FollowUp48_56": 392}
KPI_1_NULL_RATE_MOSTLY = 0.80  # a KPI 1 key field must be recorded in at least 80% of rows

KPI_1_KEY_FIELDS = (
    "1.02 Date of Birth", "1.03 Gender", "1.04 Post Code", "1.05 CareRes", "1.06 DateFLSContact",
    "1.07 DateFLSAssess", "1.08 AdmitHosp", "1.09 Date Index Frac Diagnosed", "1.11 SiteFirstFrac",
    "2.03 PrevFracHist", "3.01 DXA", "4.01 BoneTherapy", "4.02 CalciumVitDRec",
    "5.01 RiskAssesByFLS", "6.01 FollowUp12_16", "6.06 StartStrenBalExe", "7.01 FollowUp48_56",
)
REQUIRED = ("FLS Code", "Record ID", "Last Updated", "1.01 NHS Number", "1.02 Date of Birth",
            "1.09 Date Index Frac Diagnosed", "1.11 SiteFirstFrac")
# Coded columns -> code list (dbt_project.yml vars, read by flsdb.contract).
CODED = {
    "1.03 Gender": "gender", "1.05 CareRes": "yes_no_not_known", "1.08 AdmitHosp": "yes_no_not_known",
    "1.10 TypeOfFracture": "fracture_type", "1.11 SiteFirstFrac": "fracture_site",
    "1.12 SiteSecFrac": "fracture_site", "1.13 SiteThirdFrac": "fracture_site",
    "2.03 PrevFracHist": "yes_no_not_known", "2.04 FamHipFracHist": "yes_no_not_known",
    "2.05 Smoker": "yes_no_not_known", "2.06 BoneSpareTherapy": "yes_no_not_known",
    "3.01 DXA": "dxa", "3.02 DXANotOrdered": "dxa_not_ordered",
    "4.01 BoneTherapy": "bone_therapy_recommended", "4.02 CalciumVitDRec": "yes_no_not_known",
    "5.01 RiskAssesByFLS": "yes_no", "5.02 TwoFalls": "yes_no_not_known",
    "5.03 FearOfFalling": "yes_no_not_known", "5.04 MedsIncRiskFall": "yes_no_not_known",
    "5.05 PreFracMob": "yes_no_not_known", "5.06 Vision": "yes_no_not_known",
    "5.07 Toileting": "yes_no_not_known", "5.08 AbnormalCardAssess": "yes_no_not_known",
    "5.09 CognitiveImpairment": "yes_no_not_known", "5.10 Referrals": "referrals",
    "6.01 FollowUp12_16": "follow_up", "6.05 BoneTherapy1216": "bone_therapy_16_weeks",
    "6.06 StartStrenBalExe": "strength_and_balance", "7.01 FollowUp48_56": "follow_up",
    "7.05 BoneTherapy4856": "bone_therapy_52_weeks",
}
NUMBERS = {"2.01 Height": (100, 230), "2.02 Weight": (25, 250), "3.04 TScore": (-6, 4),
           "3.05 RiskOfFracture": (0, 100), "7.06 NumReFracSinceIndex": (0, 20)}
# Dates checked against the fracture date: (may not be before it, at most this many days after).
DATES_AFTER_FRACTURE = {"1.07 DateFLSAssess": None, "3.03 DateofDXA": None,
                        "6.02 Dateof16WeekAss": 730, "7.02 Dateof52WeekAss": 730,
                        "Date of Death": None}
OTHER_DATES = ("1.06 DateFLSContact",)
LINEAGE = ("_file_sha256", "_source_file", "_line_number", "_load_order", "_loaded_at")
EARLIEST_FRACTURE = dt.date(2016, 1, 1)
NUMBER_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$"
POSTCODE_PATTERN = r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$"
DATE_PATTERN = r"^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{1,2}/[0-9]{1,2}/[0-9]{4})$"

RESULTS_COLUMNS = (  # the contract of kpi-spec.md / README, in order
    "audit_year", "geography_level", "geography_code", "geography_name", "kpi_number", "kpi_name",
    "breakdown", "breakdown_value", "numerator", "denominator", "value_pct", "denominator_note", "ci_lower_pct",
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
UNBOUNDED_KPIS = (2, 3)


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
    return (f"coalesce(try_strptime({text}, '%Y-%m-%d'), try_strptime({text}, '%d/%m/%Y'))"
            "::date")


# --------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------

def extract_date(con: duckdb.DuckDBPyConnection) -> dt.date | None:
    row = con.execute("select max(extract_date) from marts.fct_episodes").fetchone()
    return row[0] if row else None


def raw_submissions_frame(con: duckdb.DuckDBPyConnection, where: str = "true") -> pd.DataFrame:
    """raw.submission_records shaped for checking (see the module docstring)."""
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
            expr = (f"coalesce(try_strptime(trim({c}), '%Y-%m-%dT%H:%M:%S'), "
                    f"try_strptime(trim({c}), '%Y-%m-%d %H:%M:%S'))")
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
    # KPI 1's follow-up fields are measured over the records due (kpi-spec.md): the value, or
    # 'not due' for a record not yet due, so that a null-rate check counts due records only.
    # (A row_condition on expect_column_values_to_not_be_null is not applied by GX 1.24.)
    due_days = f"date_diff('day', {fracture}, (select max(extract_date) from marts.fct_episodes))"
    for column, days in KPI_1_DUE_DAYS.items():
        if column in present:
            select.append(f"case when {due_days} >= {days} then nullif(lower(trim({_q(column)})), '') "
                          f"else 'not due' end as {_q(column + ' (when due)')}")
    return _frame(con, f"select {', '.join(select)} from raw.submission_records where {where}")


def staged_episodes_frame(con: duckdb.DuckDBPyConnection, where: str = "true") -> pd.DataFrame:
    return _frame(con, "select * exclude (kpi_4_reason, kpi_5_reason, kpi_6_reason, kpi_7_reason, "
                       "kpi_8_reason, kpi_9_reason, kpi_10_reason, kpi_11_reason) "
                       f"from marts.fct_episodes where {where}")


def kpi_results_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return _frame(con, "select * from marts.kpi_results")


def kpi_results_row_counts_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Rows, geographies and KPIs per audit year x geography level, against the national grid."""
    return con.execute("""
        with per_geography as (
            select audit_year, geography_level, geography_code, count(*) as row_count
            from marts.kpi_results group by all
        ),
        national as (
            select audit_year, max(row_count) as national_rows
            from per_geography where geography_level = 'national' group by all
        )
        select
            r.audit_year, r.geography_level,
            count(distinct r.geography_code) as geographies,
            count(distinct r.kpi_number) as kpis,
            count(*) as row_count,
            (select max(p.row_count) from per_geography p
             where p.audit_year = r.audit_year and p.geography_level = r.geography_level)
                / any_value(n.national_rows) as max_rows_per_geography_vs_national
        from marts.kpi_results r
        left join national n on n.audit_year = r.audit_year
        group by r.audit_year, r.geography_level
        order by 1, 2
    """).df()


def fls_volume_change_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Each FLS's cohort (KPI 4 denominator) in each year against the year before; an FLS that
    has records in the previous year but none now shows a change of -100%."""
    return con.execute("""
        with volumes as (
            select audit_year, geography_code as fls_code, denominator as cohort_records
            from marts.kpi_results
            where kpi_number = 4 and geography_level = 'fls' and breakdown = 'all'
        ),
        years as (select distinct audit_year from volumes)
        select
            y.audit_year,
            prev.fls_code,
            prev.cohort_records as previous_year_records,
            coalesce(cur.cohort_records, 0) as records,
            round(100.0 * (coalesce(cur.cohort_records, 0) - prev.cohort_records)
                  / nullif(prev.cohort_records, 0), 1) as change_pct
        from years y
        join volumes prev on prev.audit_year = y.audit_year - 1
        left join volumes cur on cur.audit_year = y.audit_year and cur.fls_code = prev.fls_code
        left join marts.dim_fls fls on fls.fls_code = prev.fls_code
        -- an FLS that has left the audit (registry last_audit_year) is not a drop
        where fls.last_audit_year is null or fls.last_audit_year >= y.audit_year
        order by 1, 2
    """).df()


# --------------------------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------------------------

def _suite_raw_submissions(gx, e: dt.date | None) -> list:
    X = gx.expectations
    out = [X.ExpectTableColumnsToMatchSet(
        column_set=[*contract.COLUMNS, *LINEAGE], exact_match=False,
        meta={"notes": "Every contract column of dataset.md and the loader's lineage is present."})]
    out.append(X.ExpectTableRowCountToBeBetween(min_value=1))
    for column in REQUIRED:
        out.append(X.ExpectColumnValuesToNotBeNull(column=column, severity=CRITICAL))
    out.append(X.ExpectColumnValuesToBeInSet(column="FLS Code", value_set=sorted(_registry_codes()),
                                             severity=CRITICAL))
    out.append(X.ExpectColumnValuesToBeBetween(column="1.01 NHS Number", min_value=10, max_value=10,
                                               severity=CRITICAL))
    out.append(X.ExpectColumnValuesToBeBetween(
        column="1.09 Date Index Frac Diagnosed", min_value=pd.Timestamp(EARLIEST_FRACTURE),
        max_value=pd.Timestamp(e) if e else None, severity=CRITICAL))
    out.append(X.ExpectColumnValuesToBeBetween(
        column="Last Updated", min_value=pd.Timestamp(EARLIEST_FRACTURE),
        max_value=pd.Timestamp(e) + pd.Timedelta(days=1) if e else None, severity=CRITICAL))
    for column, code_list in CODED.items():
        codes = sorted({c.lower() for c in contract.CODE_LISTS[code_list]})
        out.append(X.ExpectColumnValuesToBeInSet(
            column=column, value_set=codes,
            severity=CRITICAL if column == "1.11 SiteFirstFrac" else WARNING))
    for column, (low, high) in NUMBERS.items():
        out.append(X.ExpectColumnValuesToMatchRegex(column=column, regex=NUMBER_PATTERN,
                                                    severity=WARNING))
        out.append(X.ExpectColumnValuesToBeBetween(column=column + " (number)", min_value=low,
                                                   max_value=high, severity=WARNING))
    out.append(X.ExpectColumnValuesToMatchRegex(column="1.04 Post Code", regex=POSTCODE_PATTERN,
                                                severity=WARNING))
    for column, max_days in DATES_AFTER_FRACTURE.items():
        out.append(X.ExpectColumnValuesToMatchRegex(column=column, regex=DATE_PATTERN,
                                                    severity=WARNING))
        out.append(X.ExpectColumnValuesToBeBetween(
            column=column + " (days after fracture)", min_value=0, max_value=max_days,
            severity=WARNING))
    for column in OTHER_DATES:
        out.append(X.ExpectColumnValuesToMatchRegex(column=column, regex=DATE_PATTERN,
                                                    severity=WARNING))
    for column in KPI_1_KEY_FIELDS:
        # As kpi-spec.md: 6.01 and 6.06 over records due at 16 weeks, 7.01 at 52 weeks.
        out.append(X.ExpectColumnValuesToNotBeNull(
            column=column + " (when due)" if column in KPI_1_DUE_DAYS else column,
            mostly=KPI_1_NULL_RATE_MOSTLY, severity=WARNING,
            meta={"notes": "KPI 1 key field: null-rate threshold (at least 80% recorded)."}))
    return out


def _suite_staged_episodes(gx, e: dt.date | None) -> list:
    X = gx.expectations
    cohort = {"row_condition": "is_in_cohort == True", "condition_parser": "pandas"}
    out = [
        X.ExpectTableRowCountToBeBetween(min_value=1),
        X.ExpectCompoundColumnsToBeUnique(column_list=["fls_code", "record_id"]),
        X.ExpectColumnValuesToMatchRegex(column="patient_pseudonym", regex=r"^[0-9a-f]{64}$"),
        X.ExpectColumnValuesToBeInSet(column="fls_code", value_set=sorted(_registry_codes())),
        X.ExpectColumnValuesToBeBetween(column="age_at_fracture", min_value=50, max_value=110,
                                        **cohort),
        X.ExpectColumnValuesToBeBetween(column="fracture_date",
                                        min_value=pd.Timestamp(EARLIEST_FRACTURE),
                                        max_value=pd.Timestamp(e) if e else None, **cohort),
        X.ExpectColumnValuesToBeInSet(column="fracture_site",
                                      value_set=list(contract.CODE_LISTS["fracture_site"])),
        X.ExpectColumnValuesToBeInSet(column="sex", value_set=list(contract.CODE_LISTS["gender"])),
        X.ExpectColumnValuesToBeInSet(column="deprivation_quintile",
                                      value_set=["1", "2", "3", "4", "5", "unknown"]),
        X.ExpectColumnValuesToBeInSet(column="exclusion_reason", value_set=[
            "aged under 50 at the fracture", "duplicate episode", "fracture after the extract date"]),
        X.ExpectColumnValuesToBeInSet(column="postcode_match_status", value_set=[
            "matched", "postcode not in lookup", "invalid postcode", "not recorded"]),
        X.ExpectColumnValuesToBeBetween(column="days_fracture_to_assessment", min_value=0),
        X.ExpectColumnValuesToBeBetween(column="days_fracture_to_dxa", min_value=0),
        X.ExpectColumnValuesToNotBeNull(column="source_file"),
        X.ExpectColumnValuesToNotBeNull(column="line_number"),
        X.ExpectColumnValuesToBeBetween(column="line_number", min_value=2),
        # Reported, not blocking: a known deprivation quintile for at least 90% of the cohort.
        X.ExpectColumnValuesToNotBeInSet(column="deprivation_quintile", value_set=["unknown"],
                                         mostly=0.90, severity=WARNING, **cohort),
        # Reported, not blocking: records outside the cohort (under 50, duplicates) are rare.
        X.ExpectColumnValuesToBeInSet(column="is_in_cohort", value_set=[True], mostly=0.98,
                                      severity=WARNING),
    ]
    for expectation in out:
        if expectation.severity is None:
            expectation.severity = CRITICAL
    return out


def _suite_kpi_results(gx, e: dt.date | None) -> list:
    X = gx.expectations
    bounded = {"row_condition": f"kpi_number not in {list(UNBOUNDED_KPIS)}",
               "condition_parser": "pandas"}
    return [
        X.ExpectTableColumnsToMatchOrderedList(column_list=list(RESULTS_COLUMNS)),
        X.ExpectTableRowCountToBeBetween(min_value=1),
        X.ExpectCompoundColumnsToBeUnique(column_list=[
            "audit_year", "geography_level", "geography_code", "kpi_number", "breakdown",
            "breakdown_value"]),
        X.ExpectColumnValuesToBeInTypeList(column="audit_year", type_list=["int32", "int64", "Int32", "Int64"]),
        X.ExpectColumnValuesToBeInTypeList(column="numerator", type_list=["float64", "Float64"]),
        X.ExpectColumnValuesToBeInTypeList(column="denominator", type_list=["float64", "Float64"]),
        X.ExpectColumnValuesToBeInTypeList(column="value_pct", type_list=["float64", "Float64"]),
        X.ExpectColumnValuesToBeInSet(column="geography_level", value_set=list(LEVELS)),
        X.ExpectColumnValuesToBeInSet(column="breakdown", value_set=list(BREAKDOWNS)),
        X.ExpectColumnValuesToBeBetween(column="kpi_number", min_value=1, max_value=11),
        X.ExpectColumnValuesToNotBeNull(column="numerator"),
        X.ExpectColumnValuesToNotBeNull(column="denominator"),
        X.ExpectColumnValuesToBeBetween(column="numerator", min_value=0),
        X.ExpectColumnValuesToBeBetween(column="denominator", min_value=0),
        X.ExpectColumnValuesToBeBetween(column="value_pct", min_value=0),
        X.ExpectColumnValuesToBeBetween(column="value_pct", min_value=0, max_value=100, **bounded),
        X.ExpectColumnPairValuesAToBeGreaterThanB(column_A="denominator", column_B="numerator",
                                                  or_equal=True, **bounded),
        X.ExpectColumnValuesToBeInSet(column="is_synthetic_data", value_set=[True, False]),
    ]


def _suite_kpi_results_row_counts(gx, e: dt.date | None) -> list:
    X = gx.expectations

    def level(name: str) -> dict:
        return {"row_condition": f'geography_level == "{name}"', "condition_parser": "pandas"}

    n_fls = len(_registry_codes())
    return [
        X.ExpectColumnDistinctValuesToEqualSet(column="geography_level", value_set=list(LEVELS)),
        X.ExpectColumnValuesToBeBetween(column="kpis", min_value=11, max_value=11),
        X.ExpectColumnValuesToBeBetween(column="geographies", min_value=1, max_value=1, **level("national")),
        X.ExpectColumnValuesToBeBetween(column="geographies", min_value=1, max_value=2, **level("country")),
        X.ExpectColumnValuesToBeBetween(column="geographies", min_value=1, max_value=8, **level("region")),
        X.ExpectColumnValuesToBeBetween(column="geographies", min_value=1, max_value=n_fls, **level("fls")),
        X.ExpectColumnValuesToBeBetween(column="max_rows_per_geography_vs_national", min_value=0,
                                        max_value=1),
    ]


def _suite_fls_volume_change(gx, e: dt.date | None) -> list:
    X = gx.expectations
    return [X.ExpectColumnValuesToBeBetween(
        column="change_pct", min_value=-VOLUME_DROP_LIMIT_PCT, severity=WARNING,
        meta={"notes": "An FLS whose cohort dropped by more than 30% against the previous year."})]


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    frame: object
    expectations: object
    # A big table is validated in batches of at most BATCH_ROWS rows, split on ranges of one
    # column (table, column); None: one frame. See plan_batches and combine_batch_results.
    batch_by: tuple[str, str] | None = None


SUITES = (
    # raw rows in load order: a file's rows are stored together, so a load_order range is cheap
    # to read; no expectation of this suite compares rows with each other.
    Suite("raw_submissions", "raw.submission_records (accepted rows as sent)",
          raw_submissions_frame, _suite_raw_submissions,
          batch_by=("raw.submission_records", "_load_order")),
    # by FLS: the one cross-row expectation, (fls_code, record_id) unique, holds across batches
    # exactly when it holds in each.
    Suite("staged_episodes", "marts.fct_episodes (staged, versioned, pseudonymised episodes)",
          staged_episodes_frame, _suite_staged_episodes, batch_by=("marts.fct_episodes", "fls_code")),
    Suite("kpi_results", "marts.kpi_results (the results table)", kpi_results_frame,
          _suite_kpi_results),
    Suite("kpi_results_row_counts", "marts.kpi_results: rows per audit year and level",
          kpi_results_row_counts_frame, _suite_kpi_results_row_counts),
    Suite("fls_volume_change", "marts.kpi_results: each FLS's cohort against the year before",
          fls_volume_change_frame, _suite_fls_volume_change),
)


def _registry_codes() -> set[str]:
    return set(pd.read_csv(Path(__file__).resolve().parents[3] / "seeds" / "fls_registry.csv",
                           usecols=["fls_code"])["fls_code"].astype(str))


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------

def _describe(config) -> str:
    kwargs = {k: v for k, v in config.kwargs.items()
              if k not in ("batch_id", "value_set", "column_set", "column_list", "row_condition",
                           "condition_parser") and v is not None}
    for key in ("value_set", "column_set", "column_list"):
        if key in config.kwargs:
            kwargs[key] = f"[{len(config.kwargs[key])} values]"
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


# Rows per validated frame: GX holds a frame several times over while it validates (about 4 KB a
# row of raw submissions), so a big table is validated in batches of at most this many rows.
BATCH_ROWS = int(os.environ.get("FLSDB_GX_BATCH_ROWS", "500000"))


def _literal(value) -> str:
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def plan_batches(con: duckdb.DuckDBPyConnection, table: str, column: str,
                 budget: int = BATCH_ROWS) -> list[str]:
    """Row filters that split `table` on consecutive ranges of `column` into batches of at most
    `budget` rows (a single value with more rows is a batch of its own). One batch: ['true']."""
    counts = con.execute(f"select {column}, count(*) from {table} group by 1 order by 1 nulls last").fetchall()
    if sum(n for _, n in counts) <= budget:
        return ["true"]
    ranges: list[tuple] = []
    low = high = None
    rows = 0
    for key, n in counts:
        if key is None:
            continue
        if low is not None and rows + n > budget:
            ranges.append((low, high))
            low = None
        if low is None:
            low, rows = key, 0
        high, rows = key, rows + n
    if low is not None:
        ranges.append((low, high))
    filters = [f"{column} between {_literal(a)} and {_literal(b)}" for a, b in ranges]
    if any(key is None for key, _ in counts):
        filters.append(f"{column} is null")
    return filters


def _outcome(r) -> dict:
    """One expectation's result on one batch, as plain values."""
    res = r.result or {}
    raised = bool(r.exception_info and r.exception_info.get("raised_exception"))
    return {
        "config": r.expectation_config, "success": bool(r.success), "raised": raised,
        "exception": str(r.exception_info.get("exception_message", ""))[:300] if raised else "",
        "element_count": res.get("element_count"), "unexpected_count": res.get("unexpected_count"),
        "missing_count": res.get("missing_count"), "observed_value": res.get("observed_value"),
        "examples": [str(v) for v in (res.get("partial_unexpected_list") or [])[:5]],
    }


def combine_batch_results(outcomes: list[dict]) -> dict:
    """One expectation's outcomes on every batch of a table, combined into the outcome for the
    whole table: counts are summed and success is decided again on the totals (a `mostly`
    threshold over all rows, the row-count bounds over all rows); any other expectation holds
    for the table when it holds in every batch (the batches split the rows, and the one
    cross-row expectation, a compound key that includes the batch column, holds exactly then)."""
    if len(outcomes) == 1:
        return outcomes[0]

    def total(key: str):
        values = [o[key] for o in outcomes if o[key] is not None]
        return sum(values) if values else None

    config = outcomes[0]["config"]
    combined = {
        **outcomes[0],
        "element_count": total("element_count"), "unexpected_count": total("unexpected_count"),
        "missing_count": total("missing_count"),
        "raised": any(o["raised"] for o in outcomes),
        "exception": next((o["exception"] for o in outcomes if o["exception"]), ""),
        "examples": [v for o in outcomes for v in o["examples"]][:5],
    }
    mostly = config.kwargs.get("mostly")
    elements, unexpected = combined["element_count"], combined["unexpected_count"]
    if config.type == "expect_table_row_count_to_be_between":
        rows = total("observed_value") or 0
        low, high = config.kwargs.get("min_value"), config.kwargs.get("max_value")
        combined["observed_value"] = rows
        combined["success"] = (low is None or rows >= low) and (high is None or rows <= high)
    elif mostly is not None and elements is not None and unexpected is not None:
        # as GX: the share of non-missing values that are expected (for not-null, of all rows)
        considered = elements
        if config.type != "expect_column_values_to_not_be_null":
            considered -= combined["missing_count"] or 0
        combined["success"] = considered == 0 or (considered - unexpected) / considered >= mostly
    else:
        combined["success"] = all(o["success"] for o in outcomes)
    return combined


def run_suites(con: duckdb.DuckDBPyConnection, gx_dir: Path, docs_dir: Path,
               e: dt.date | None = None, only: set[str] | None = None) -> list[dict]:
    """Run every suite on frames read through `con`; build Data Docs into `docs_dir`.

    The GX project lives in `gx_dir` (recreated on every run, so that Data Docs show this
    validation only). Returns one check per expectation, in the validation.json shape, plus
    the GX-specific fields `suite`, `unexpected_count`, `element_count`, `examples`. `only`
    restricts the run to the named suites (a validation with a subset cannot approve anything
    more than it checked: the gate reads whatever checks ran). A suite over a big table runs
    once per batch (plan_batches; Data Docs show each batch) and its results are combined
    (combine_batch_results).
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import gc

    import great_expectations as gx

    for folder in (gx_dir, docs_dir):
        shutil.rmtree(folder, ignore_errors=True)
    gx_dir.mkdir(parents=True)
    context = gx.get_context(mode="file", project_root_dir=str(gx_dir))
    context.add_data_docs_site(site_name="flsdb_quality", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    source = context.data_sources.add_pandas("flsdb_warehouse")
    checks: list[dict] = []
    for suite_def in SUITES:
        if only is not None and suite_def.name not in only:
            continue
        asset = source.add_dataframe_asset(suite_def.name)
        batch = asset.add_batch_definition_whole_dataframe("whole_table")
        suite = context.suites.add(gx.ExpectationSuite(
            name=suite_def.name, meta={"notes": suite_def.description},
            expectations=suite_def.expectations(gx, e)))
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_def.name, data=batch, suite=suite))
        filters = plan_batches(con, *suite_def.batch_by) if suite_def.batch_by else [None]
        outcomes: list[list[dict]] = []
        for row_filter in filters:
            frame = suite_def.frame(con, row_filter) if row_filter else suite_def.frame(con)
            result = validation.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
            outcomes.append([_outcome(r) for r in result.results])
            del frame, result
            gc.collect()
        for per_batch in zip(*outcomes):
            checks.append(_check(suite_def.name, combine_batch_results(list(per_batch)), len(filters)))
    context.build_data_docs(site_names=["flsdb_quality"])
    strip_remote_assets(docs_dir)
    return checks


def _check(suite_name: str, o: dict, batches: int) -> dict:
    """One expectation's (combined) outcome as a validation.json check."""
    config = o["config"]
    severity = getattr(config.severity, "value", config.severity) or CRITICAL
    column = config.kwargs.get("column") or config.kwargs.get("column_A") or ""
    condition = config.kwargs.get("row_condition")
    if isinstance(condition, dict):
        condition = condition.get("pass_through_filter") or str(condition)
    detail = f"{config.type}({_describe(config)})"
    if o["unexpected_count"]:
        detail += f": {o['unexpected_count']:,} of {o['element_count'] or 0:,} rows unexpected"
    if batches > 1:
        detail += f" (validated in {batches} batches)"
    if o["raised"]:
        detail += ": raised " + o["exception"]
    return {
        "name": f"gx.{suite_name}.{config.type}" + (f"[{column}]" if column else "")
                + (f"[where {condition}]" if condition else ""),
        "source": "gx",
        "severity": "error" if severity == CRITICAL else "warn",
        "status": "pass" if o["success"] and not o["raised"] else "fail",
        "detail": detail,
        "suite": suite_name,
        "column": column,
        "unexpected_count": o["unexpected_count"],
        "element_count": o["element_count"],
        "examples": o["examples"],
    }


def strip_remote_assets(docs_dir: Path) -> None:
    """Data Docs pages pull Bootstrap, jQuery, fonts and a logo from CDNs (and the logo URL
    carries the data context id). The quality outputs must work offline and call out nowhere:
    drop every remote <link>/<script>/<img> reference. The pages stay readable, unstyled."""
    import re

    remote = re.compile(
        r'<link[^>]+href="https?://[^"]*"[^>]*>|<script[^>]+src="https?://[^"]*"[^>]*>\s*</script>'
        r'|<img[^>]+src="https?://[^"]*"[^>]*>', re.IGNORECASE)
    for page in docs_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        cleaned = remote.sub("", text)
        cleaned = re.sub(r"url\('https?://[^']*'\)", "none", cleaned)
        if cleaned != text:
            page.write_text(cleaned, encoding="utf-8")
