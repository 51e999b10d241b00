-- Every audit year that has cohort records gets a KPI 2/3 expected count above zero (breakdown
-- all) at every geography where an FLS was registered that year: national, its country, its
-- region and the FLS itself. Returns each missing or non-positive one. Guards the expected
-- caseload against a year it was not computed for (issue 14: 2025 came out with denominator 0
-- while every other test passed). Independent of the models it checks: the years come from the
-- cohort of fct_episodes, the FLSs from the registry.

with

cohort_episodes as (
    select audit_year from {{ ref('fct_episodes') }}
    where is_in_cohort
),

fls_registry as (
    select * from {{ ref('fls_registry') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
    where value_type = 'ratio_to_expected'
),

results as (
    select * from {{ ref('kpi_results') }}
    where breakdown = 'all'
),

cohort_years as (
    select distinct audit_year from cohort_episodes
),

active_fls as (
    select
        cohort_years.audit_year,
        fls_registry.fls_code,
        fls_registry.country_code,
        fls_registry.region_code
    from cohort_years
    inner join fls_registry
        on {{ fls_is_registered_for_year('fls_registry', 'cohort_years.audit_year') }}
),

active_geographies as (
    {%- for level in kpi_geography_levels() %}
        select distinct
            audit_year,
            '{{ level.level }}' as geography_level,
            {{ level.code }} as geography_code
        from active_fls
        {%- if not loop.last %}

            union all
        {%- endif %}
    {%- endfor %}
),

required_results as (
    select
        active_geographies.audit_year,
        active_geographies.geography_level,
        active_geographies.geography_code,
        kpi_definitions.kpi_number
    from active_geographies
    cross join kpi_definitions
),

final as (
    select
        required_results.*,
        results.denominator
    from required_results
    left join results
        on
            required_results.audit_year = results.audit_year
            and required_results.geography_level = results.geography_level
            and required_results.geography_code = results.geography_code
            and required_results.kpi_number = results.kpi_number
    where results.denominator is null or results.denominator <= 0
)

select * from final
