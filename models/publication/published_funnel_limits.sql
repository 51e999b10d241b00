-- One row per audit year x KPI x point on a grid of denominators: the funnel plot's control limits
-- (95% and 99.8%) around the national value for FLS results of breakdown `all`, adjusted for
-- overdispersion (solid lines) and unadjusted (dotted), with the phi and tau2 of the caption.
-- Why: the site draws the curves from here and recomputes nothing; the limits come from the macro
-- that sets kpi_results' own limits and outlier flags (macros/funnel_overdispersion.sql), so a dot
-- outside a drawn line is always a flagged FLS. The grid is the funnel plots' one grid
-- (funnel_curve_grid, as marts.kpi_funnel_limits): 0.9 x the smallest to 1.1 x the largest
-- PUBLISHED FLS denominator, evenly on a log scale, in var('funnel_curve_steps') steps, so a
-- suppressed FLS never sets an end of the axis (the internal curves span every FLS).

with

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

results as (
    select * from {{ ref('published_kpi_results') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

overdispersion as (
    -- phi and tau2 are the same on every FLS row of a year, KPI and breakdown value.
    select
        audit_year,
        kpi_number,
        max(overdispersion_phi) as overdispersion_phi,
        max(overdispersion_tau2) as overdispersion_tau2
    from kpi_results
    where geography_level = 'fls' and breakdown = 'all'
    group by audit_year, kpi_number
),

national_centres as (
    select
        results.audit_year,
        results.kpi_number,
        kpi_definitions.value_type,
        results.value_pct as national_value_pct,
        results.value_pct / 100.0 as national_value,
        overdispersion.overdispersion_phi,
        coalesce(overdispersion.overdispersion_tau2, 0.0) as overdispersion_tau2
    from results
    inner join kpi_definitions
        on results.kpi_number = kpi_definitions.kpi_number
    left join overdispersion
        on
            results.audit_year = overdispersion.audit_year
            and results.kpi_number = overdispersion.kpi_number
    where
        results.geography_level = 'national'
        and results.breakdown = 'all'
        and kpi_definitions.value_type in ('proportion', 'ratio_to_expected')
        and results.value_pct is not null
),

published_fls_ranges as (
    select
        audit_year,
        kpi_number,
        min(denominator) as smallest_fls_denominator,
        max(denominator) as largest_fls_denominator
    from results
    where geography_level = 'fls' and breakdown = 'all' and denominator > 0
    group by audit_year, kpi_number
),

curves as (
    select
        national_centres.*,
        published_fls_ranges.smallest_fls_denominator,
        published_fls_ranges.largest_fls_denominator
    from national_centres
    inner join published_fls_ranges
        on
            national_centres.audit_year = published_fls_ranges.audit_year
            and national_centres.kpi_number = published_fls_ranges.kpi_number
),

grid as (
    {{ funnel_curve_grid('curves') }}
),

final as (
    select
        audit_year,
        kpi_number,
        value_type,
        step_number,
        cast(denominator as double) as denominator,
        national_value_pct,
        overdispersion_phi,
        overdispersion_tau2,
        {{ funnel_curve_limits('value_type', 'national_value', 'denominator', 'overdispersion_tau2') }},
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from grid
)

select * from final
