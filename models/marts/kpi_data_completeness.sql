-- One row per FLS x audit year x KPI 1 key field: the field's completeness over the cohort records
-- it is measured over, with the FLS's KPI 1 result (fields at least 80% complete, met or not).
-- Thresholds: the kpi_definitions seed's row of grain `completeness` (macros/kpi_definitions.sql).

{%- set completeness = completeness_kpi() %}

with

field_completeness as (
    select * from {{ ref('int_fls_field_completeness_measured') }}
),

fls_summary as (
    select
        fls_code,
        audit_year,
        sum({{ count_if_true('is_at_least_80_pct_complete') }}) as fields_at_least_80_pct_complete,
        count(*) as key_fields
    from field_completeness
    group by fls_code, audit_year
),

final as (
    select
        cast(field_completeness.audit_year as {{ dbt.type_int() }}) as audit_year,
        field_completeness.fls_code,
        cast(field_completeness.field_order as {{ dbt.type_int() }}) as field_order,
        field_completeness.field_name,
        cast(field_completeness.records_measured as {{ dbt.type_bigint() }}) as records_measured,
        cast(field_completeness.records_recorded as {{ dbt.type_bigint() }}) as records_recorded,
        field_completeness.completeness_pct,
        field_completeness.is_at_least_80_pct_complete,
        cast(fls_summary.fields_at_least_80_pct_complete as {{ dbt.type_int() }}) as fields_at_least_80_pct_complete,
        cast(fls_summary.key_fields as {{ dbt.type_int() }}) as key_fields,
        fls_summary.key_fields - fls_summary.fields_at_least_80_pct_complete
        <= {{ completeness.max_key_fields_below_threshold }} as fls_meets_kpi_1,
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from field_completeness
    inner join fls_summary
        on
            field_completeness.fls_code = fls_summary.fls_code
            and field_completeness.audit_year = fls_summary.audit_year
)

select * from final
