-- One row per FLS, audit year, fracture site, sex and five-year age band: the expected number of
-- fragility fractures among the catchment population aged 50+ (kpi-spec.md, "Expected caseload").
{%- set first_year = var('earliest_fracture_date')[:4] | int %}
{%- set latest_year = var('latest_audit_year', 2024) | int %}

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

audit_years as (
    -- Every audit year from the first fracture year the audit accepts to var latest_audit_year.
    select audit_year_list.audit_year
    from (
        values
        {%- for year in range(first_year, latest_year + 1) %}
            ({{ year }}){{ ',' if not loop.last }}
        {%- endfor %}
    ) as audit_year_list (audit_year)
),

fls_audit_years as (
    -- Each FLS is given the years it is registered for; an open-ended registration runs to latest_audit_year.
    select
        fls_registry.fls_code,
        audit_years.audit_year
    from fls_registry
    inner join audit_years
        on
            audit_years.audit_year >= coalesce(fls_registry.first_audit_year, {{ first_year }})
            and audit_years.audit_year <= coalesce(fls_registry.last_audit_year, {{ latest_year }})
),

estimate_years as (
    select distinct estimate_year from population_estimates
),

audit_year_estimates as (
    -- Each audit year uses the latest population estimate for that year or before (the earliest
    -- estimate when none is that old).
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
        population_by_band.sex,
        population_by_band.age_band
),

final as (
    select
        catchment_population.fls_code,
        catchment_population.audit_year,
        catchment_population.population_estimate_year,
        incidence_rates.fracture_site,
        incidence_rates.fracture_site = 'Spine' as is_spine,
        catchment_population.sex,
        catchment_population.age_band,
        -- The ten-year bands that KPI results are broken down by.
        case
            when catchment_population.age_band in ('50-54', '55-59') then '50-59'
            when catchment_population.age_band in ('60-64', '65-69') then '60-69'
            when catchment_population.age_band in ('70-74', '75-79') then '70-79'
            when catchment_population.age_band in ('80-84', '85-89') then '80-89'
            when catchment_population.age_band = '90+' then '90+'
        end as breakdown_age_band,
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
