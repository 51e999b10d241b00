-- One row per record (current version only), with the deprivation of its LSOA, the extract date,
-- and whether it is in the audit cohort or why not (docs/specification/kpi-definitions.md, "Terms",
-- Cohort(Y)): aged var minimum_age (50) or over at the fracture, not a duplicate episode, and
-- fractured on or before the extract date.
-- A view, like int_submission_records_versioned (which ranks duplicate episodes): its readers take
-- a few of its columns each.
{{ config(materialized='view') }}
{%- set reasons = cohort_exclusion_reasons() %}

with

records as (
    select * from {{ ref('int_submission_records_versioned') }}
    where is_current_version
),

fls_registry as (
    select * from {{ ref('fls_registry') }}
),

lsoa_deprivation as (
    select * from {{ ref('int_lsoas_deprivation_joined') }}
),

extract_date as (
    select {{ extract_date() }} as extract_date
),

final as (
    select
        records.*,
        extract_date.extract_date,
        fls_registry.country_code,
        fls_registry.region_code,
        -- Whether the FLS takes part in the record's audit year: outside those years it has no
        -- expected caseload, so KPI 2/3 count its records in neither numerator nor denominator.
        {{ fls_is_registered_for_year('fls_registry', 'records.audit_year') }} as is_fls_registered_for_audit_year,
        lsoa_deprivation.deprivation_index,
        lsoa_deprivation.deprivation_decile,
        coalesce(cast(lsoa_deprivation.deprivation_quintile as {{ dbt.type_string() }}), 'unknown')
            as deprivation_quintile,
        case
            when records.age_at_fracture < {{ var('minimum_age') }} then '{{ reasons.under_minimum_age }}'
            when records.episode_rank > 1 then '{{ reasons.duplicate_episode }}'
            when records.fracture_date > extract_date.extract_date then '{{ reasons.fracture_after_extract }}'
        end as exclusion_reason
    from records
    cross join extract_date
    left join fls_registry
        on records.fls_code = fls_registry.fls_code
    left join lsoa_deprivation
        on records.lsoa11_code = lsoa_deprivation.lsoa11_code
)

select
    *,
    exclusion_reason is null as is_in_cohort
from final
