-- The KPI 2/3 denominator note (issue 14) appears only on KPIs whose denominator is an expected
-- caseload (grain `expected_caseload` in the kpi_definitions seed). Returns the rows that break it.

with

results as (
    select * from {{ ref('kpi_results') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

final as (
    select
        results.audit_year,
        results.geography_level,
        results.geography_code,
        results.kpi_number,
        results.breakdown,
        results.breakdown_value,
        results.denominator_note
    from results
    inner join kpi_definitions
        on results.kpi_number = kpi_definitions.kpi_number
    where
        results.denominator_note is not null
        and kpi_definitions.grain != 'expected_caseload'
)

select * from final
