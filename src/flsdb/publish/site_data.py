"""What the report site reads: the tables of the published tier, read once, with the lookups the
pages share.

Every number on the site comes from the published DuckDB file (flsdb.publish.marts), whose
tables are the warehouse's publication models (models/publication/): suppression (primary and
complementary), the shares of FLSs rated green and the funnel curves are computed there, in SQL.
This module reads them as they are, with two readings of its own, both SQL over the published
tables and both written down here:

- `completeness_medians`: KPI 1 at FLS level is a service's share of key fields complete, while
  the national KPI 1 is the share of services meeting it. An FLS page compares like with like:
  the service's share beside the median FLS's share (`median(value_pct)` of the FLS results of
  the year; KPI 1 is exempt from suppression, so every service counts).
- `trim_empty_months`: a monthly series ends at its last month with a value
  (docs/specification/monitoring.md section 1). Rows after it (months with no data yet: no value and, for an
  FLS, a month "suppressed" only because it is empty) are not read: a KPI's months end at the
  last month with a value anywhere, and each series at its last month with a value or a
  suppressed one. Once the marts hold no such rows, this removes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from flsdb.publish.cells import DASH, fmt_pct, reason, suppression_limits
from flsdb.publish.kpi_words import kpi_words
from flsdb.publish.marts import PUBLICATION_SCHEMA

#: The published seasonal profile of KPI 2/3's monthly expected counts, when the tier has it.
SEASONAL_PROFILE_TABLE = "published_kpi_seasonal_profile"
SERIES = ["geography_level", "geography_code", "kpi_number"]


@dataclass
class SiteData:
    """The published tables (suppressed cells already blank) and the lookups every page uses."""
    results: pd.DataFrame          # published_kpi_results
    completeness: pd.DataFrame     # published_kpi_data_completeness
    green_shares: pd.DataFrame     # published_fls_green_shares
    funnel_limits: pd.DataFrame    # published_funnel_limits
    records: dict[int, int]        # published_records_submitted
    fls: pd.DataFrame              # published_fls
    kpis: pd.DataFrame             # published_kpi_definitions
    years: list[int]
    is_synthetic: bool
    extract_date: str | None
    built_at: str | None
    limits: tuple[float, float]    # the suppression vars, to describe the rule in words
    outlier_register: pd.DataFrame | None = None   # published_outlier_register
    monthly: pd.DataFrame | None = None            # published_kpi_monthly, trimmed (trim_empty_months)
    spc_summary: pd.DataFrame | None = None        # published_kpi_spc_summary
    seasonal_profile: pd.DataFrame | None = None   # published_kpi_seasonal_profile, when published
    completeness_medians: dict[int, tuple[float, int]] = field(default_factory=dict)  # {year: (median, FLSs)}
    year: int = 0                  # the report's audit year (choose_year)
    previous_year: int | None = None

    def __post_init__(self):
        kpis = self.kpis.set_index("kpi_number")
        self.kpi_numbers = [int(k) for k in kpis.index]
        self.kpi_short = {int(k): str(v) for k, v in kpis["kpi_short_name"].items()}
        self.kpi_name = {int(k): str(v) for k, v in kpis["kpi_name"].items()}
        self.value_type = {int(k): str(v) for k, v in kpis["value_type"].items()}
        self.target = {int(k): (None if pd.isna(v) else float(v)) for k, v in kpis["target_pct"].items()}
        self.proportion_kpis = [k for k in self.kpi_numbers if self.value_type[k] == "proportion"]
        self.completeness_kpis = [k for k in self.kpi_numbers if self.value_type[k] == "completeness"]
        self.words = kpi_words(self.kpis)
        results = self.results
        results["kpi_label"] = [f"KPI {int(k)}: {self.kpi_short[int(k)]}" for k in results["kpi_number"]]
        records = results.to_dict("records")
        self.index = {(r["audit_year"], r["geography_level"], r["geography_code"], r["kpi_number"],
                       r["breakdown"], r["breakdown_value"]): r for r in records}
        national_codes = results.loc[results["geography_level"] == "national", "geography_code"].unique()
        self.national_code = national_codes[0] if len(national_codes) else None
        self.code_by_name = {(r["geography_level"], r["geography_name"]): r["geography_code"] for r in records}
        self.by_fls = dict(tuple(results.loc[results["geography_level"] == "fls"].groupby("geography_code")))

    def choose_year(self, year: int | None) -> None:
        """The report's audit year (default: the latest); ValueError when it has no results."""
        chosen = year if year is not None else max(self.years)
        if chosen not in self.years:
            raise ValueError(f"no results for audit year {chosen}; audit years present: {self.years}")
        self.year = chosen
        self.previous_year = max((y for y in self.years if y < chosen), default=None)

    def page_facts(self) -> dict:
        """What every page says about the data (templates/base.html: banner, header, footer)."""
        return {"synthetic": self.is_synthetic, "extract_date": self.extract_date or "",
                "built_at": self.built_at or "", "min_den": f"{self.limits[0]:g}",
                "max_small": f"{self.limits[1]:g}", "kpi_words": self.words}

    # -- lookups ------------------------------------------------------------------------------
    def rows(self, **filters) -> pd.DataFrame:
        frame = self.results
        if filters.get("geography_level") == "fls" and isinstance(filters.get("geography_code"), str):
            frame = self.by_fls.get(filters["geography_code"], frame.iloc[0:0])
        mask = pd.Series(True, index=frame.index)
        for column, value in filters.items():
            mask &= frame[column].isin(list(value)) if isinstance(value, (list, tuple, set)) else frame[column] == value
        return frame.loc[mask]

    def one(self, audit_year, geography_level, kpi_number, breakdown="all", geography_code=None,
            breakdown_value="all", geography_name=None) -> dict | None:
        """One result, by its key (geography_code may be left out for national)."""
        if geography_name is not None:
            geography_code = self.code_by_name.get((geography_level, geography_name))
        if geography_level == "national" and geography_code is None:
            geography_code = self.national_code
        return self.index.get((audit_year, geography_level, geography_code, kpi_number, breakdown,
                               breakdown_value))

    @staticmethod
    def pct(row: dict | None) -> str:
        return DASH if row is None else fmt_pct(row["value_pct"], reason(row))

    def label(self, kpi: int) -> str:
        return f"KPI {kpi}: {self.kpi_short[kpi]}"

    def decimals(self, kpi: int) -> int:
        """Decimals of a denominator: expected counts (KPI 2/3) have one."""
        return 1 if self.value_type.get(kpi) == "ratio_to_expected" else 0

    def comparator(self, year: int, kpi: int) -> tuple[float | None, str]:
        """(value, words) an FLS's result is compared with: the national value, or for a
        completeness KPI the median FLS's share (like with like; module docstring)."""
        if kpi in self.completeness_kpis:
            median, services = self.completeness_medians.get(year, (None, 0))
            return median, f"median of {services} FLSs"
        row = self.one(year, "national", kpi)
        value = None if row is None or pd.isna(row["value_pct"]) else float(row["value_pct"])
        return value, "England and Wales"


def _table(con: duckdb.DuckDBPyConnection, name: str, order: str) -> pd.DataFrame:
    return con.execute(f'select * from {PUBLICATION_SCHEMA}."{name}" order by {order}').df()


def published_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "select table_name from duckdb_tables() where schema_name = ? order by table_name",
        [PUBLICATION_SCHEMA]).fetchall()]


def trim_empty_months(monthly: pd.DataFrame) -> pd.DataFrame:
    """Drop the rows after a series' last month with a value (module docstring)."""
    if monthly.empty:
        return monthly
    has_value = monthly["value_pct"].notna()
    kpi_end = monthly.loc[has_value].groupby("kpi_number")["month_start"].max()
    shown = has_value | monthly["is_suppressed"].astype(bool)
    series_end = monthly.loc[shown].groupby(SERIES)["month_start"].max().rename("series_end")
    ends = monthly[SERIES].join(series_end, on=SERIES)["series_end"]
    keep = (monthly["month_start"] <= monthly["kpi_number"].map(kpi_end)) & (monthly["month_start"] <= ends)
    return monthly.loc[keep.fillna(False).astype(bool)].reset_index(drop=True)


def _completeness_medians(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[float, int]]:
    rows = con.execute(f"""
        select results.audit_year, median(results.value_pct), count(*)
        from {PUBLICATION_SCHEMA}.published_kpi_results as results
        inner join {PUBLICATION_SCHEMA}.published_kpi_definitions as definitions
            on results.kpi_number = definitions.kpi_number
        where definitions.value_type = 'completeness' and results.geography_level = 'fls'
            and results.breakdown = 'all' and not results.is_suppressed and results.value_pct is not null
        group by results.audit_year
    """).fetchall()
    return {int(year): (float(median), int(count)) for year, median, count in rows}


def load_site_data(db_path: Path) -> SiteData:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        present = set(published_tables(con))
        results = _table(con, "published_kpi_results",
                         "audit_year, geography_level, geography_code, kpi_number, breakdown, breakdown_value")
        data = dict(  # noqa: C408 (keyword names read as the SiteData fields they fill)
            completeness=_table(con, "published_kpi_data_completeness", "fls_code, audit_year, field_order"),
            green_shares=_table(con, "published_fls_green_shares", "audit_year, kpi_number"),
            funnel_limits=_table(con, "published_funnel_limits", "audit_year, kpi_number, step_number"),
            fls=_table(con, "published_fls", "fls_code"),
            kpis=_table(con, "published_kpi_definitions", "kpi_number"),
            outlier_register=_table(con, "published_outlier_register", "kpi_number, audit_year, fls_code"),
            monthly=trim_empty_months(_table(con, "published_kpi_monthly",
                                             "geography_level, geography_code, kpi_number, month_start")),
            spc_summary=_table(con, "published_kpi_spc_summary", "geography_level, geography_code, kpi_number"),
            seasonal_profile=(_table(con, SEASONAL_PROFILE_TABLE, "kpi_number, month_of_year")
                              if SEASONAL_PROFILE_TABLE in present else None),
            completeness_medians=_completeness_medians(con),
        )
        records = dict(con.execute(f"select audit_year, records_submitted from "
                                   f"{PUBLICATION_SCHEMA}.published_records_submitted").fetchall())
        info = con.execute(f"select built_at, extract_date, is_synthetic_data "
                           f"from {PUBLICATION_SCHEMA}.publication_info").fetchone()
    finally:
        con.close()
    return SiteData(
        results=results, records={int(k): int(v) for k, v in records.items()},
        years=sorted(int(y) for y in results["audit_year"].unique()),
        is_synthetic=bool(results["is_synthetic_data"].any()) or bool(info[2]),
        extract_date=str(info[1])[:10] if info[1] is not None else None,
        built_at=str(info[0]) if info[0] is not None else None, limits=suppression_limits(), **data)
