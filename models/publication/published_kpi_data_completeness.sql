-- One row per FLS x audit year x KPI 1 key field: kpi_data_completeness as it may be published.
-- Why: a field's counts are counts of patient records, so the small-number rule applies to them
-- (through the one macro, is_suppressed); KPI 1 itself (fields at least 80% complete, met or not)
-- counts fields and is exempt. No published table adds these counts up, so primary suppression
-- is enough here.

with

completeness as (
    select * from {{ ref('kpi_data_completeness') }}
),

flagged as (
    select
        *,
        {{ is_suppressed('records_recorded', 'records_measured', "'proportion'") }} as is_small_number
    from completeness
),

final as (
    select
        audit_year,
        fls_code,
        field_order,
        field_name,
        case when not is_small_number then records_measured end as records_measured,
        case when not is_small_number then records_recorded end as records_recorded,
        case when not is_small_number then completeness_pct end as completeness_pct,
        case when not is_small_number then is_at_least_80_pct_complete end as is_at_least_80_pct_complete,
        fields_at_least_80_pct_complete,
        key_fields,
        fls_meets_kpi_1,
        is_small_number as is_suppressed,
        is_synthetic_data
    from flagged
)

select * from final
