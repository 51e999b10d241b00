-- One row per audit year x KPI x breakdown value x point on the denominator axis: the funnel
-- plot's limit curves, adjusted for overdispersion and unadjusted, on the funnel plots' one grid
-- (funnel_curve_grid, as published_funnel_limits): var('funnel_curve_steps') + 1 denominators,
-- evenly spaced on a log scale from 0.9 x the smallest to 1.1 x the largest denominator of the
-- FLS results with funnel limits (every FLS here; the published curves span the published ones).
-- Why: analysts draw the curves from these rows and recompute nothing; the limits come from the
-- same macro as kpi_results' own (macros/funnel_overdispersion.sql), so a curve passes through
-- every FLS's limits.

with

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

curves as (
    -- phi and tau2 are the same on every FLS row of a year, KPI and breakdown value.
    select
        kpi_results.audit_year,
        kpi_results.kpi_number,
        kpi_results.breakdown,
        kpi_results.breakdown_value,
        kpi_definitions.value_type,
        max(kpi_results.national_value_pct) as national_value_pct,
        max(kpi_results.overdispersion_phi) as overdispersion_phi,
        max(kpi_results.overdispersion_tau2) as overdispersion_tau2,
        min(kpi_results.denominator) as smallest_fls_denominator,
        max(kpi_results.denominator) as largest_fls_denominator
    from kpi_results
    inner join kpi_definitions
        on kpi_results.kpi_number = kpi_definitions.kpi_number
    where
        kpi_results.geography_level = 'fls'
        and kpi_results.denominator > 0
        and kpi_results.funnel_lower_95_pct is not null
    group by
        kpi_results.audit_year,
        kpi_results.kpi_number,
        kpi_results.breakdown,
        kpi_results.breakdown_value,
        kpi_definitions.value_type
),

grid as (
    {{ funnel_curve_grid('curves') }}
),

final as (
    select
        audit_year,
        kpi_number,
        breakdown,
        breakdown_value,
        step_number,
        cast(denominator as double) as denominator,
        national_value_pct,
        overdispersion_phi,
        overdispersion_tau2,
        {{ funnel_curve_limits('value_type', 'national_value_pct / 100.0', 'denominator',
                               'overdispersion_tau2', prefix='funnel_') }},
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from grid
)

select * from final
