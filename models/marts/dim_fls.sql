-- One row per FLS in the registry: who it is, where it is, and the size of its catchment and of
-- its expected fragility fracture caseload in a year.
with fls_registry as (
    select * from {{ ref('fls_registry') }}
),

fls_catchments as (
    select * from {{ ref('fls_catchments') }}
),

expected_fractures as (
    select * from {{ ref('int_expected_fractures_calculated') }}
),

latest_years as (
    -- The caseload of the FLS's latest audit year, which uses the latest population estimate.
    select
        fls_code,
        max(audit_year) as audit_year
    from expected_fractures
    group by fls_code
),

latest_expected as (
    select expected_fractures.*
    from expected_fractures
    inner join latest_years
        on
            expected_fractures.fls_code = latest_years.fls_code
            and expected_fractures.audit_year = latest_years.audit_year
),

catchment_populations as (
    -- Each sex and age band appears once per fracture site; count its population once.
    select
        fls_code,
        population_estimate_year,
        sum(catchment_population) as catchment_population_aged_50_plus
    from (
        select distinct
            fls_code,
            population_estimate_year,
            sex,
            age_band,
            catchment_population
        from latest_expected
    ) as catchment_bands
    group by fls_code, population_estimate_year
),

expected_totals as (
    select
        fls_code,
        sum(expected_fractures) as expected_fractures_per_year,
        sum(case when not is_spine then expected_fractures else 0 end) as expected_non_spine_fractures_per_year,
        sum(case when is_spine then expected_fractures else 0 end) as expected_spine_fractures_per_year
    from latest_expected
    group by fls_code
),

catchment_counts as (
    select
        fls_code,
        count(*) as catchment_local_authority_count
    from fls_catchments
    group by fls_code
),

final as (
    select
        fls_registry.fls_code,
        fls_registry.fls_name,
        fls_registry.country_code,
        fls_registry.country_name,
        fls_registry.region_code,
        fls_registry.region_name,
        fls_registry.first_audit_year,
        fls_registry.last_audit_year,
        coalesce(catchment_counts.catchment_local_authority_count, 0) as catchment_local_authority_count,
        catchment_populations.population_estimate_year,
        catchment_populations.catchment_population_aged_50_plus,
        expected_totals.expected_fractures_per_year,
        expected_totals.expected_non_spine_fractures_per_year,
        expected_totals.expected_spine_fractures_per_year,
        -- The registry shipped with the project is invented: its FLSs are not real NHS services.
        true as is_synthetic
    from fls_registry
    left join catchment_counts
        on fls_registry.fls_code = catchment_counts.fls_code
    left join catchment_populations
        on fls_registry.fls_code = catchment_populations.fls_code
    left join expected_totals
        on fls_registry.fls_code = expected_totals.fls_code
)

select * from final
