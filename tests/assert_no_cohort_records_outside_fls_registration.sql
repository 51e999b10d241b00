-- Data-quality warning: cohort records of an FLS in an audit year it is not registered for
-- (seed fls_registry, first_audit_year to last_audit_year). KPI 2 and 3 count them in neither
-- numerator nor denominator, as the FLS has no expected caseload that year
-- (int_episodes_kpi_flagged); the other KPIs still count them. One row per FLS and audit year,
-- naming the FLS, its registered years and the records affected, so the quality report can list
-- them; a registry that is out of date is the usual cause.
{{ config(severity='warn') }}

with

episodes as (
    select
        fls_code,
        audit_year
    from {{ ref('int_episodes_kpi_flagged') }}
),

fls_registry as (
    select * from {{ ref('fls_registry') }}
),

final as (
    select
        episodes.fls_code,
        fls_registry.fls_name,
        episodes.audit_year,
        fls_registry.first_audit_year,
        fls_registry.last_audit_year,
        count(*) as cohort_records
    from episodes
    left join fls_registry
        on episodes.fls_code = fls_registry.fls_code
    where not {{ fls_is_registered_for_year('fls_registry', 'episodes.audit_year') }}
    group by
        episodes.fls_code,
        fls_registry.fls_name,
        episodes.audit_year,
        fls_registry.first_audit_year,
        fls_registry.last_audit_year
)

select * from final
