-- One row per monthly series (geography level x geography x KPI 2-11, breakdown all) and complete
-- calendar month of the fracture date F, from the series' first month to its last month with a
-- value: numerator, denominator and value (docs/specification/monitoring.md section 1).
-- Why: services need a monthly view to see whether a change worked; the SPC charts
-- (int_spc_months_grouped onwards) are drawn from these rows. KPI 2/3 divide by the year's expected
-- count x the seasonal share of the month (int_kpi_seasonal_shares_estimated), so that the seasons
-- of fractures do not read as special causes.

with

monthly_counts as (
    select * from {{ ref('int_kpi_months_counted') }}
),

seasonal_shares as (
    select * from {{ ref('int_kpi_seasonal_shares_estimated') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
    where value_type != 'completeness'
),

yearly_expected_counts as (
    -- The audit year's expected count of KPI 2/3 at each geography (breakdown all).
    select
        audit_year,
        geography_level,
        geography_code,
        kpi_number,
        denominator as expected_fractures
    from {{ ref('int_kpi_identification_aggregated') }}
    where breakdown = 'all'
),

calendar_bounds as (
    -- The calendar runs from the first month with cohort records to the month of E: from the data,
    -- never from the clock. (An E before the first month leaves that one month, which the
    -- completeness rule below then drops.)
    select
        min(month_start) as first_month_start,
        greatest(
            min(month_start),
            cast({{ dbt.date_trunc('month', extract_date()) }} as date)
        ) as last_month_start
    from monthly_counts
),

calendar_months as (
    {{ month_starts('calendar_bounds', 'calendar_bounds.first_month_start', 'calendar_bounds.last_month_start') }}
),

calendar_months_measured as (
    select
        month_start,
        cast(
            {{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'month_start')) }}
            as date
        ) as month_end,
        {{ dbt.datediff(
            'month_start',
            dbt.dateadd('month', 1, 'month_start'),
            'day'
        ) }} as days_in_month,
        {{ dbt.datediff(
            dbt.date_trunc('year', 'month_start'),
            dbt.dateadd('year', 1, dbt.date_trunc('year', 'month_start')),
            'day'
        ) }} as days_in_year,
        cast(extract(year from month_start) as integer) as audit_year,
        cast(extract(month from month_start) as integer) as month_of_year
    from calendar_months
),

series_starts as (
    -- A series starts at the geography's first month with cohort records.
    select
        geography_level,
        geography_code,
        min(month_start) as first_month_start
    from monthly_counts
    group by geography_level, geography_code
),

series_months as (
    -- A month belongs to a KPI's series once complete for that KPI: its last day + lag <= E.
    select
        series_starts.geography_level,
        series_starts.geography_code,
        kpi_definitions.kpi_number,
        kpi_definitions.value_type,
        calendar_months_measured.month_start,
        calendar_months_measured.audit_year,
        calendar_months_measured.month_of_year,
        calendar_months_measured.days_in_month,
        calendar_months_measured.days_in_year
    from series_starts
    cross join kpi_definitions
    inner join calendar_months_measured
        on series_starts.first_month_start <= calendar_months_measured.month_start
    where
        {{ dbt.dateadd('day', 'kpi_definitions.completeness_lag_days', 'calendar_months_measured.month_end') }}
        <= {{ extract_date() }}
),

measured as (
    -- KPI 2/3: the year's expected count x the month's seasonal share; with no complete audit year
    -- to estimate it from, the flat share of the month's own year (days in month / days in year).
    select
        series_months.geography_level,
        series_months.geography_code,
        series_months.kpi_number,
        series_months.value_type,
        series_months.month_start,
        cast(coalesce(monthly_counts.numerator, 0) as double) as numerator,
        cast(
            case
                when series_months.value_type = 'ratio_to_expected'
                    then
                        coalesce(yearly_expected_counts.expected_fractures, 0)
                        * case
                            when seasonal_shares.years_used > 0 then seasonal_shares.share
                            else cast(series_months.days_in_month as double) / series_months.days_in_year
                        end
                else coalesce(monthly_counts.denominator, 0)
            end as double
        ) as denominator
    from series_months
    left join monthly_counts
        on
            series_months.geography_level = monthly_counts.geography_level
            and series_months.geography_code = monthly_counts.geography_code
            and series_months.kpi_number = monthly_counts.kpi_number
            and series_months.month_start = monthly_counts.month_start
    left join yearly_expected_counts
        on
            series_months.geography_level = yearly_expected_counts.geography_level
            and series_months.geography_code = yearly_expected_counts.geography_code
            and series_months.kpi_number = yearly_expected_counts.kpi_number
            and series_months.audit_year = yearly_expected_counts.audit_year
    left join seasonal_shares
        on
            series_months.kpi_number = seasonal_shares.kpi_number
            and series_months.month_of_year = seasonal_shares.month_of_year
),

series_ends as (
    -- A series ends at its last month with a value (denominator > 0): no rows after it, so a chart
    -- does not run on into months nobody has submitted yet. A series with no value has no rows.
    select
        geography_level,
        geography_code,
        kpi_number,
        max(month_start) as last_month_start
    from measured
    where denominator > 0
    group by geography_level, geography_code, kpi_number
),

final as (
    select
        measured.geography_level,
        measured.geography_code,
        measured.kpi_number,
        measured.value_type,
        measured.month_start,
        measured.numerator,
        measured.denominator,
        case when measured.denominator > 0 then 100.0 * measured.numerator / measured.denominator end as value_pct
    from measured
    inner join series_ends
        on
            measured.geography_level = series_ends.geography_level
            and measured.geography_code = series_ends.geography_code
            and measured.kpi_number = series_ends.kpi_number
            and measured.month_start <= series_ends.last_month_start
)

select * from final
