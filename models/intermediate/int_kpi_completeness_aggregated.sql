-- One row per audit year x geography for KPI 1 (data completeness). At FLS level the numerator is
-- the key fields at least 80% complete, out of 17. Above FLS level it is the FLSs that meet KPI 1
-- (fewer than 5 fields below 80%), out of the FLSs with at least one cohort record. The KPI number
-- and both thresholds are the kpi_definitions seed's row of grain `completeness`.

{%- set completeness = completeness_kpi() %}

with

field_completeness as (
    select * from {{ ref('int_fls_field_completeness_measured') }}
),

fls_results as (
    select
        fls_code,
        country_code,
        region_code,
        audit_year,
        sum({{ count_if_true('is_at_least_80_pct_complete') }}) as fields_complete,
        count(*) as key_fields
    from field_completeness
    group by fls_code, country_code, region_code, audit_year
),

fls_met as (
    select
        *,
        key_fields - fields_complete <= {{ completeness.max_key_fields_below_threshold }} as meets_kpi_1
    from fls_results
),

above_fls as (
    {{ aggregate_to_levels_and_breakdowns(
        'fls_met',
        [{'name': 'numerator', 'expression': count_if_true('meets_kpi_1')},
         {'name': 'denominator', 'expression': '1'}],
        kpi_breakdowns()[:1]) }}
),

final as (
    select
        audit_year,
        geography_level,
        geography_code,
        {{ completeness.kpi_number }} as kpi_number,
        breakdown,
        breakdown_value,
        cast(numerator as double) as numerator,
        cast(denominator as double) as denominator
    from above_fls
    where geography_level != 'fls'

    union all

    select
        audit_year,
        'fls' as geography_level,
        fls_code as geography_code,
        {{ completeness.kpi_number }} as kpi_number,
        'all' as breakdown,
        'all' as breakdown_value,
        cast(fields_complete as double) as numerator,
        cast(key_fields as double) as denominator
    from fls_met
)

select * from final
