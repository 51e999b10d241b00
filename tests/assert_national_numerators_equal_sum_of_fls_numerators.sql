-- Reconciliation: for every KPI counted from episodes (2-11: every grain of the kpi_definitions
-- seed but `completeness`), year and breakdown value, the national numerator and denominator equal
-- the sums over FLSs, and so do the country sums. (KPI 1 is excluded: above FLS level it counts
-- FLSs, not records.) Returns the mismatches.

with

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

results as (
    select kpi_results.*
    from kpi_results
    inner join kpi_definitions
        on kpi_results.kpi_number = kpi_definitions.kpi_number
    where kpi_definitions.grain != 'completeness'
),

summed as (
    select
        audit_year,
        geography_level,
        kpi_number,
        breakdown,
        breakdown_value,
        sum(numerator) as numerator,
        sum(denominator) as denominator
    from results
    group by audit_year, geography_level, kpi_number, breakdown, breakdown_value
),

national as (
    select * from summed
    where geography_level = 'national'
),

other_levels as (
    select * from summed
    where geography_level != 'national'
)

select
    other_levels.*,
    national.numerator as national_numerator,
    national.denominator as national_denominator
from other_levels
full outer join national
    on
        other_levels.audit_year = national.audit_year
        and other_levels.kpi_number = national.kpi_number
        and other_levels.breakdown = national.breakdown
        and other_levels.breakdown_value = national.breakdown_value
where
    national.numerator is null
    or other_levels.numerator is null
    or abs(other_levels.numerator - national.numerator) > 1e-6
    or abs(other_levels.denominator - national.denominator) > 1e-6
