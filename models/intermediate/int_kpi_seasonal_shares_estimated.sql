-- One row per KPI 2/3 (value type ratio_to_expected in the KPI seed) x calendar month of the year:
-- the seasonal share s_m of the year's expected count that falls in that month, and the number of
-- complete audit years it was estimated from (docs/specification/monitoring.md section 1).
-- Why: fractures are seasonal. A flat share (days in month / days in year) makes every winter look
-- like an improvement and every summer like a concern on the KPI 2/3 run charts. s_m is the mean,
-- over the complete audit years (31 December <= E, with national numerator records), of the
-- national share of the year's numerator records whose fracture fell in month m; the 12 shares add
-- up to 1. With no complete year the share is flat, shown here for a 365-day year
-- (int_kpi_months_measured then uses the days of the month's own year, so a leap February is 29/366).

with

national_counts as (
    select * from {{ ref('int_kpi_months_counted') }}
    where geography_level = 'national'
),

kpi_definitions as (
    select kpi_number from {{ ref('kpi_definitions') }}
    where value_type = 'ratio_to_expected'
),

months_of_year as (
    -- The 12 months, with their days in a common (365-day) year for the flat share.
    select
        month_offsets.month_of_year,
        {{ dbt.datediff(
            dbt.dateadd('month', 'month_offsets.month_of_year - 1', "cast('2001-01-01' as date)"),
            dbt.dateadd('month', 'month_offsets.month_of_year', "cast('2001-01-01' as date)"),
            'day'
        ) }} as days_in_common_year_month
    from (
        values (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12)
    ) as month_offsets (month_of_year)
),

monthly_counts as (
    select
        national_counts.kpi_number,
        cast(extract(year from national_counts.month_start) as {{ dbt.type_int() }}) as audit_year,
        cast(extract(month from national_counts.month_start) as {{ dbt.type_int() }}) as month_of_year,
        national_counts.numerator
    from national_counts
    inner join kpi_definitions
        on national_counts.kpi_number = kpi_definitions.kpi_number
),

complete_years as (
    -- A complete audit year: its 31 December is on or before E (so the year is before the year of
    -- the day after E), and it has national numerator records.
    select
        kpi_number,
        audit_year,
        sum(numerator) as year_numerator
    from monthly_counts
    where audit_year < extract(year from {{ dbt.dateadd('day', 1, extract_date()) }})
    group by kpi_number, audit_year
    having sum(numerator) > 0
),

year_month_shares as (
    select
        monthly_counts.kpi_number,
        monthly_counts.audit_year,
        monthly_counts.month_of_year,
        monthly_counts.numerator / complete_years.year_numerator as year_share
    from monthly_counts
    inner join complete_years
        on
            monthly_counts.kpi_number = complete_years.kpi_number
            and monthly_counts.audit_year = complete_years.audit_year
),

years_used as (
    select
        kpi_definitions.kpi_number,
        count(complete_years.audit_year) as years_used
    from kpi_definitions
    left join complete_years
        on kpi_definitions.kpi_number = complete_years.kpi_number
    group by kpi_definitions.kpi_number
),

shares_summed as (
    -- A month with no record in a complete year has no row: it adds 0 to the sum, and the mean
    -- divides by every complete year.
    select
        kpi_number,
        month_of_year,
        sum(year_share) as sum_of_year_shares
    from year_month_shares
    group by kpi_number, month_of_year
),

final as (
    select
        cast(years_used.kpi_number as {{ dbt.type_int() }}) as kpi_number,
        cast(months_of_year.month_of_year as {{ dbt.type_int() }}) as month_of_year,
        cast(
            case
                when years_used.years_used > 0
                    then coalesce(shares_summed.sum_of_year_shares, 0) / years_used.years_used
                -- a double: Spark would divide by the literal 365.0 as a 6-place decimal
                else cast(months_of_year.days_in_common_year_month as double) / 365
            end as double
        ) as share,
        cast(years_used.years_used as {{ dbt.type_int() }}) as years_used
    from years_used
    cross join months_of_year
    left join shares_summed
        on
            years_used.kpi_number = shares_summed.kpi_number
            and months_of_year.month_of_year = shares_summed.month_of_year
)

select * from final
