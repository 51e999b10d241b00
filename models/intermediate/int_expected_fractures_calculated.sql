-- One row per FLS, audit year, fracture site, sex and five-year age band: the expected number of
-- fragility fractures among the catchment population aged 50+ (docs/specification/kpi-definitions.md,
-- "Expected caseload").
-- Audit years come from the data, not from a setting: every year with cohort records, so that a
-- new year's submissions get their KPI 2/3 denominators with no change here, and each FLS gets
-- the years its registry row says it takes part in (macros/fls_registration.sql).
{%- set first_year = var('earliest_fracture_date')[:4] | int %}

with fls_registry as (
    select * from {{ ref('fls_registry') }}
),

fls_catchments as (
    select * from {{ ref('fls_catchments') }}
),

population_estimates as (
    select * from {{ ref('stg_reference__population_estimates') }}
    where age >= {{ var('minimum_age') }}
),

incidence_rates as (
    select * from {{ ref('incidence_rates') }}
),

cohort_episodes as (
    select audit_year from {{ ref('int_episodes_kpi_flagged') }}
),

audit_years as (
    -- The audit years that have cohort records (the load rejects fractures before the audit began).
    select distinct audit_year
    from cohort_episodes
    where audit_year >= {{ first_year }}
),

fls_audit_years as (
    -- Each FLS is given the audit years it is registered for.
    select
        fls_registry.fls_code,
        audit_years.audit_year
    from fls_registry
    inner join audit_years
        on {{ fls_is_registered_for_year('fls_registry', 'audit_years.audit_year') }}
),

estimate_years as (
    select distinct estimate_year from population_estimates
),

audit_year_estimates_chosen as (
    -- Each audit year uses the latest population estimate for that year or before; a year older
    -- than every estimate uses the earliest one (docs/specification/kpi-definitions.md; DEVELOPERS.md,
    -- "Spec readings").
    select
        audit_years.audit_year,
        coalesce(
            max(case when estimate_years.estimate_year <= audit_years.audit_year then estimate_years.estimate_year end),
            min(estimate_years.estimate_year)
        ) as population_estimate_year
    from audit_years
    cross join estimate_years
    group by audit_years.audit_year
),

audit_year_estimates as (
    -- The estimate is from after the audit year only when no earlier one exists: say so beside
    -- every KPI 2/3 result of the year.
    select
        audit_year,
        population_estimate_year,
        case
            when population_estimate_year > audit_year
                then {{ dbt.concat([
                    "'expected count uses the mid-'",
                    "cast(population_estimate_year as " ~ dbt.type_string() ~ ")",
                    "' population estimate, the earliest available, for a '",
                    "cast(audit_year as " ~ dbt.type_string() ~ ")",
                    "' audit year'",
                ]) }}
        end as denominator_note
    from audit_year_estimates_chosen
),

population_banded as (
    select
        la_code,
        estimate_year,
        sex,
        {{ five_year_age_band('age') }} as age_band,
        population
    from population_estimates
),

population_by_band as (
    select
        la_code,
        estimate_year,
        sex,
        age_band,
        sum(population) as population
    from population_banded
    group by la_code, estimate_year, sex, age_band
),

catchment_population as (
    -- The part of each local authority's population served by the FLS, by audit year, sex and age band.
    select
        fls_audit_years.fls_code,
        fls_audit_years.audit_year,
        audit_year_estimates.population_estimate_year,
        audit_year_estimates.denominator_note,
        population_by_band.sex,
        population_by_band.age_band,
        sum(fls_catchments.population_share * population_by_band.population) as catchment_population
    from fls_audit_years
    inner join audit_year_estimates
        on fls_audit_years.audit_year = audit_year_estimates.audit_year
    inner join fls_catchments
        on fls_audit_years.fls_code = fls_catchments.fls_code
    inner join population_by_band
        on
            fls_catchments.ltla21_code = population_by_band.la_code
            and audit_year_estimates.population_estimate_year = population_by_band.estimate_year
    group by
        fls_audit_years.fls_code,
        fls_audit_years.audit_year,
        audit_year_estimates.population_estimate_year,
        audit_year_estimates.denominator_note,
        population_by_band.sex,
        population_by_band.age_band
),

final as (
    select
        catchment_population.fls_code,
        catchment_population.audit_year,
        catchment_population.population_estimate_year,
        catchment_population.denominator_note,
        incidence_rates.fracture_site,
        incidence_rates.fracture_site = 'Spine' as is_spine,
        catchment_population.sex,
        catchment_population.age_band,
        -- The ten-year band that KPI results are broken down by, of the five-year band's lowest age
        -- (its first two characters: '50-54' -> 50, '90+' -> 90), by the episodes' own macro.
        {{ breakdown_age_band(
            "cast(substring(catchment_population.age_band, 1, 2) as " ~ dbt.type_int() ~ ")"
        ) }} as breakdown_age_band,
        catchment_population.catchment_population,
        incidence_rates.rate_per_10000_person_years,
        catchment_population.catchment_population
        * incidence_rates.rate_per_10000_person_years / 10000.0 as expected_fractures
    from catchment_population
    inner join incidence_rates
        on
            catchment_population.sex = incidence_rates.sex
            and catchment_population.age_band = incidence_rates.age_band
)

select * from final
