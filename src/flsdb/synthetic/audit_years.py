"""The one table of national figures per audit year that the SYNTHETIC data follows
(audit_years.csv beside this module; README "Synthetic audit years" gives the reasons).

- `records`: national record count (published for 2016, 2017, 2019, 2021-2024; the other years
  are interpolated or chosen, see `records_basis`);
- `active_services`: services registered for the year (published for 2017, 2022, 2024);
  seeds/fls_registry.csv is built so that exactly this many are active (registry_build);
- `kpi2_pct` ... `kpi7_q5_pct`: the published national KPIs the generator calibrates to (2023,
  2024). A year without them borrows the nearest year that has them.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

TABLE = Path(__file__).with_name("audit_years.csv")
KPI_COLUMNS = {"kpi2_pct": "kpi2", "kpi3_pct": "kpi3", "kpi7_pct": "kpi7",
               "kpi7_q1_pct": "kpi7_q1", "kpi7_q5_pct": "kpi7_q5"}


@lru_cache(maxsize=1)
def table() -> dict[int, dict]:
    """audit_year -> {records, active_services, kpi2, kpi3, kpi7[, kpi7_q1, kpi7_q5]}."""
    out: dict[int, dict] = {}
    with TABLE.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            year = int(row["audit_year"])
            entry = {"records": int(row["records"]),
                     "active_services": int(row["active_services"])}
            entry.update({key: float(row[col]) for col, key in KPI_COLUMNS.items() if row[col]})
            out[year] = entry
    return out


FIRST_YEAR = min(table())
LAST_YEAR = max(table())


def published_kpi_years() -> list[int]:
    return sorted(y for y, e in table().items() if "kpi2" in e)


def national(year: int) -> dict:
    """The year's figures; KPI targets borrowed from the nearest year with published KPIs
    (the earlier one on a tie)."""
    if year not in table():
        raise ValueError(f"audit year {year} is outside {FIRST_YEAR}-{LAST_YEAR}, the years "
                         f"the synthetic generator has national figures for ({TABLE.name})")
    entry = dict(table()[year])
    if "kpi2" not in entry:
        nearest = min(published_kpi_years(), key=lambda y: (abs(y - year), y))
        entry.update({k: v for k, v in table()[nearest].items() if k.startswith("kpi")})
    return entry


def check_years(years) -> list[int]:
    """Sorted distinct audit years, or a ValueError naming the allowed range."""
    out = set()
    for y in years:
        try:
            out.add(int(y))
        except ValueError:
            raise ValueError(f"{str(y).strip()!r} is not an audit year (use e.g. 2023,2024; "
                             f"{FIRST_YEAR}-{LAST_YEAR})") from None
    out = sorted(out)
    bad = [y for y in out if y not in table()]
    if bad or not out:
        raise ValueError(f"audit years must be within {FIRST_YEAR}-{LAST_YEAR}; got "
                         f"{', '.join(map(str, bad)) or 'none'}")
    return out
