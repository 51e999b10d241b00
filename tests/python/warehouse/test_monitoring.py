"""Monthly KPI series and SPC charts (docs/specification/monitoring.md sections 1-2) on the built default warehouse.

The SPC limits and rules are recomputed here by a small, independent Python implementation of the
spec (not a copy of the SQL of the int_spc_* models) and compared with kpi_monthly for real series.
This is a check of the SQL, not a second source of published numbers: reports read the marts.
"""

from __future__ import annotations

import math

LIMIT = 2.66
SCREEN = 3.267
MIN_POINTS = 12
RUN = 7


def chart_group(values: list[float], baseline_points: int | None = None) -> dict:
    """One SPC group (values in time order): centre, limits and each point's flags, per the spec."""
    n = len(values)
    base = values[: baseline_points or n]
    centre = sum(base) / len(base)
    ranges = [abs(base[i] - base[i - 1]) for i in range(1, len(base))]
    amr = sum(ranges) / len(ranges) if ranges else None
    if amr is not None:
        kept = [r for r in ranges if r < SCREEN * amr]
        amr = sum(kept) / len(kept) if kept else None
    if n < MIN_POINTS or amr is None:
        return {"centre": centre, "lower": None, "upper": None, "special": [False] * n, "types": [None] * n}
    lower, upper = centre - LIMIT * amr, centre + LIMIT * amr
    near_lower, near_upper = centre - 2 / 3 * LIMIT * amr, centre + 2 / 3 * LIMIT * amr
    side = [(v > centre) - (v < centre) for v in values]
    outside = [v > upper or v < lower for v in values]
    near = [not o and (v > near_upper or v < near_lower) for v, o in zip(values, outside)]
    special = list(outside)
    # Rule 2: maximal runs of the same non-zero side, 7 or more long.
    i = 0
    while i < n:
        j = i
        while j + 1 < n and side[j + 1] == side[i]:
            j += 1
        if side[i] != 0 and j - i + 1 >= RUN:
            for k in range(i, j + 1):
                special[k] = True
        i = j + 1
    # Rule 3: maximal runs of strictly rising (or falling) steps, 6 or more steps = 7 or more points.
    steps = [0] + [(values[k] > values[k - 1]) - (values[k] < values[k - 1]) for k in range(1, n)]
    i = 1
    while i < n:
        j = i
        while j + 1 < n and steps[j + 1] == steps[i]:
            j += 1
        if steps[i] != 0 and j - i + 1 >= RUN - 1:
            for k in range(i - 1, j + 1):
                special[k] = True
        i = j + 1
    # Rule 4: windows of 3 with at least 2 near-limit points, all 3 on the same side.
    for start in range(n - 2):
        window = range(start, start + 3)
        if sum(near[k] for k in window) >= 2 and abs(sum(side[k] for k in window)) == 3:
            for k in window:
                if near[k]:
                    special[k] = True
    types = [
        "common_cause" if not s else ("special_cause_improvement" if v > centre else "special_cause_concern")
        for v, s in zip(values, special)
    ]
    return {"centre": centre, "lower": lower, "upper": upper, "special": special, "types": types}


def test_reference_rules_on_hand_made_points():
    """The Python reference itself: a shift, a broken shift and an outside point."""
    flat = [50.0 + (0.5 if k % 2 else -0.5) for k in range(20)]
    assert chart_group(flat)["types"] == ["common_cause"] * 20
    assert chart_group(flat[:11])["upper"] is None
    shifted = flat[:10] + [v + 0.9 for v in flat[10:17]] + flat[17:]
    assert any(chart_group(shifted)["special"])


def _series(marts, level: str, code: str, kpi: int):
    return marts.execute(
        """
        select month_start, value_pct, spc_group, centre_pct, lower_limit_pct, upper_limit_pct,
               point_type, is_special_cause
        from marts.kpi_monthly
        where geography_level = ? and geography_code = ? and kpi_number = ?
        order by month_start
        """,
        [level, code, kpi],
    ).fetchall()


def _close(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def test_kpi_monthly_limits_and_point_types_match_an_independent_computation(marts):
    # Series with the seeds empty (one group each): the national series of every KPI and a few FLSs.
    assert marts.execute("select count(*) from reference.spc_rebase_months").fetchone()[0] == 0
    series = marts.execute(
        """
        select geography_level, geography_code, kpi_number from marts.kpi_spc_summary
        where geography_level = 'national'
           or geography_code in (select min(geography_code) from marts.kpi_spc_summary
                                 where geography_level in ('fls', 'region') group by geography_level)
        order by 1, 2, 3
        """
    ).fetchall()
    assert len(series) >= 20
    value_types = dict(marts.execute("select kpi_number, value_type from reference.kpi_definitions").fetchall())
    charts_with_limits = clipped = 0
    for level, code, kpi in series:
        rows = _series(marts, level, code, kpi)
        points = [r for r in rows if r[1] is not None]
        # The chart reads each value to 9 decimal places (macros/spc.sql).
        expected = chart_group([round(r[1], 9) for r in points])
        charts_with_limits += expected["upper"] is not None
        # Stored clipped to the range of the value; the rules used the limits as computed.
        top = None if value_types[kpi] == "ratio_to_expected" else 100.0
        lower, upper = (clip(expected["lower"], top), clip(expected["upper"], top))
        clipped += lower != expected["lower"] or upper != expected["upper"]
        for row, point_type in zip(points, expected["types"]):
            assert row[2] == 1
            assert _close(row[3], expected["centre"]), (level, code, kpi, row)
            assert _close(row[4], lower), (level, code, kpi, row)
            assert _close(row[5], upper), (level, code, kpi, row)
            assert row[6] == point_type, (level, code, kpi, row)
        # A month with no value is not a point: no point type, no flag.
        assert all(r[6] is None and r[7] is False for r in rows if r[1] is None)
    assert charts_with_limits > 0
    assert clipped > 0


def clip(limit: float | None, top: float | None) -> float | None:
    """A limit clipped to [0, top] (top None: no upper bound)."""
    if limit is None:
        return None
    return max(0.0, limit if top is None else min(top, limit))


def test_series_follow_the_completeness_lags_of_the_kpi_seed(marts):
    """A month is in a KPI's series only when its last day + the seed's lag <= E."""
    late = marts.execute(
        """
        select count(*)
        from marts.kpi_monthly as monthly
        inner join reference.kpi_definitions as kpis on monthly.kpi_number = kpis.kpi_number
        cross join (select max(extract_date) as extract_date from marts.fct_episodes) as extract
        where last_day(monthly.month_start) + kpis.completeness_lag_days > extract.extract_date
        """
    ).fetchone()[0]
    assert late == 0
    # The longer the lag, the fewer months: KPI 11 (392 days) ends before KPI 8 (112 days). KPIs 6 (0
    # days) and 8 both end at the data's last month: a series ends at its last month with a value.
    last_month = dict(marts.execute(
        "select kpi_number, max(month_start) from marts.kpi_monthly group by kpi_number"
    ).fetchall())
    assert last_month[11] < last_month[8] <= last_month[6]
    last_fracture = marts.execute(
        "select cast(date_trunc('month', max(fracture_date)) as date) from marts.fct_episodes where is_in_cohort"
    ).fetchone()[0]
    assert last_month[6] == last_fracture
    assert set(last_month) == set(range(2, 12))


def test_monthly_numerators_add_up_to_the_yearly_results(marts):
    """Over the 12 months of a year, every KPI adds up to the yearly result: KPIs 4-11 count the same
    episode flags; KPI 2/3 spread the same expected count over the seasonal shares, which add up to 1."""
    mismatches = marts.execute(
        """
        with monthly as (
            select geography_level, geography_code, kpi_number, year(month_start) as audit_year,
                   sum(numerator) as numerator, sum(denominator) as denominator, count(*) as month_count
            from marts.kpi_monthly
            group by all
        )
        select
            count(*),
            count(*) filter (
                where abs(monthly.numerator - yearly.numerator) > 1e-6
                   or abs(monthly.denominator - yearly.denominator) > 1e-6)
        from monthly
        inner join marts.kpi_results as yearly
            on monthly.geography_level = yearly.geography_level
            and monthly.geography_code = yearly.geography_code
            and monthly.kpi_number = yearly.kpi_number
            and monthly.audit_year = yearly.audit_year
            and yearly.breakdown = 'all'
        where monthly.month_count = 12
        """
    ).fetchone()
    compared, mismatches = mismatches
    assert compared > 100
    assert mismatches == 0


def test_summary_variation_and_assurance(marts):
    rows = marts.execute(
        """
        select summary.variation, summary.assurance, summary.latest_lower_limit_pct,
               summary.latest_upper_limit_pct, summary.target_pct, latest.point_type
        from marts.kpi_spc_summary as summary
        left join marts.kpi_monthly as latest
            on summary.geography_level = latest.geography_level
            and summary.geography_code = latest.geography_code
            and summary.kpi_number = latest.kpi_number
            and summary.latest_point_month_start = latest.month_start
        """
    ).fetchall()
    assert rows
    for variation, assurance, lower, upper, target, latest_type in rows:
        assert variation == latest_type
        if target is None:
            assert assurance == "none"
        elif upper is None:
            assert assurance is None
        elif target > upper:
            assert assurance == "consistent_fail"
        elif target < lower:
            assert assurance == "consistent_pass"
        else:
            assert assurance == "inconsistent"


WINTER = {10, 11, 12, 1, 2, 3}


def test_the_national_kpi_2_chart_does_not_follow_the_seasons(marts):
    """Issue 23: with a flat monthly share every winter read as an improvement and every summer as a
    concern (16 of the 19 special-cause points before the seasonal share). A special-cause point
    follows the seasons when its audit year has special causes of both kinds and it is an
    improvement in October-March or a concern in April-September."""
    rows = marts.execute(
        """
        select month_start, point_type from marts.kpi_monthly
        where geography_level = 'national' and kpi_number = 2 and is_special_cause
        """
    ).fetchall()
    kinds: dict[int, set[str]] = {}
    for month, point_type in rows:
        kinds.setdefault(month.year, set()).add(point_type)
    seasonal = [(month, point_type) for month, point_type in rows
                if len(kinds[month.year]) == 2
                and (point_type == "special_cause_improvement") == (month.month in WINTER)]
    assert seasonal == []
    # The shares the denominators used: a profile from the complete years, winter above summer.
    shares = dict(marts.execute(
        "select month_of_year, share from marts.kpi_seasonal_profile where kpi_number = 2 and years_used > 0"
    ).fetchall())
    assert len(shares) == 12 and math.isclose(sum(shares.values()), 1.0, abs_tol=1e-12)
    assert shares[1] > shares[7]


def test_injected_shifts_are_detected(marts, built_warehouse):
    """The generator's injected shifts (landing/_reference/injected_shifts.csv) are found on the FLS
    charts: a special-cause point within 12 months of the shift (start month - 12 to full month + 12)
    that tells of it, in the shift's direction from its start month on, or the other way before it
    (a chart with one group puts the mean between the two levels). 8 of the 13 shifts of the default
    data were found before the seasonal share and the clipped limits (issue 23); no fewer now."""
    import pandas as pd

    shifts = pd.read_csv(built_warehouse["landing"] / "_reference" / "injected_shifts.csv")
    assert len(shifts) == 13
    found = []
    for shift in shifts.itertuples():
        start, full = pd.Timestamp(shift.start_month), pd.Timestamp(shift.full_month)
        towards = "special_cause_improvement" if shift.direction == "improve" else "special_cause_concern"
        points = marts.execute(
            """
            select month_start, point_type from marts.kpi_monthly
            where geography_level = 'fls' and geography_code = ? and kpi_number = ? and is_special_cause
            """,
            [shift.fls_code, int(shift.kpi_number)],
        ).fetchall()
        found.append(any(
            start - pd.DateOffset(months=12) <= pd.Timestamp(month) <= full + pd.DateOffset(months=12)
            and ((pd.Timestamp(month) >= start) == (point_type == towards))
            for month, point_type in points
        ))
    assert sum(found) >= 8, list(zip(shifts["fls_code"], found))
