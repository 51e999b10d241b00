-- One row per FLS in the registry x audit year with records: its records (current versions),
-- cohort records, cohort records of unknown deprivation, and its cohort against the year before.
-- Why: the per-FLS volume facts of the data-quality report and of dq_checks (a fall in volume,
-- unknown deprivation), computed once in SQL instead of in the report's Python.

with

episodes as (
    select * from {{ ref('fct_episodes') }}
),

registry as (
    select * from {{ ref('dim_fls') }}
),

audit_years as (
    select distinct audit_year from episodes
),

counted as (
    select
        fls_code,
        audit_year,
        count(*) as records,
        count(case when is_in_cohort then 1 end) as cohort_records,
        count(case when is_in_cohort and deprivation_quintile = 'unknown' then 1 end)
            as unknown_deprivation_records
    from episodes
    group by fls_code, audit_year
),

grid as (
    select
        registry.fls_code,
        audit_years.audit_year,
        (registry.first_audit_year is null or registry.first_audit_year <= audit_years.audit_year)
        and (registry.last_audit_year is null or registry.last_audit_year >= audit_years.audit_year)
            as is_active_in_year
    from registry
    cross join audit_years
),

volumes as (
    select
        grid.fls_code,
        grid.audit_year,
        grid.is_active_in_year,
        coalesce(counted.records, 0) as records,
        coalesce(counted.cohort_records, 0) as cohort_records,
        coalesce(counted.unknown_deprivation_records, 0) as unknown_deprivation_records
    from grid
    left join counted
        on
            grid.fls_code = counted.fls_code
            and grid.audit_year = counted.audit_year
),

final as (
    select
        current_year.fls_code,
        current_year.audit_year,
        current_year.is_active_in_year,
        current_year.records,
        current_year.cohort_records,
        current_year.unknown_deprivation_records,
        case
            when current_year.cohort_records > 0
                then
                    cast(current_year.unknown_deprivation_records as double)
                    / current_year.cohort_records
        end as unknown_deprivation_share,
        previous_year.cohort_records as previous_year_cohort_records,
        -- an FLS that has left the audit (registry last_audit_year) has not fallen in volume
        case
            when current_year.is_active_in_year and previous_year.cohort_records > 0
                then
                    cast(current_year.cohort_records - previous_year.cohort_records as double)
                    / previous_year.cohort_records
        end as cohort_change_share
    from volumes as current_year
    left join volumes as previous_year
        on
            current_year.fls_code = previous_year.fls_code
            and current_year.audit_year = previous_year.audit_year + 1
    where current_year.is_active_in_year or current_year.records > 0
)

select * from final
