-- One row per audit year x KPI x breakdown value x point on the denominator axis: the funnel
-- plot's limit curves, adjusted for overdispersion and unadjusted, at 101 denominators from 1 to
-- 1.1 times the largest FLS denominator rounded up to a multiple of 10 (evenly spaced on a log
-- scale). Neither end depends on a small FLS count, so the axis discloses no suppressed number.
-- Why: the report draws the curves from these rows and recomputes nothing; the limits come from
-- the same macro as kpi_results' own (macros/funnel_overdispersion.sql), so a curve passes through
-- every FLS's limits.

{%- set points = 101 %}

with

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

axis_points as (
    {{ dbt.generate_series(points) }}
),

funnels as (
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
        1.0 as smallest_denominator,
        10.0 * ceiling(1.1 * max(kpi_results.denominator) / 10.0) as largest_denominator
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

curve_points as (
    select
        funnels.*,
        cast(axis_points.generated_number as {{ dbt.type_int() }}) as point_number,
        funnels.smallest_denominator * power(
            funnels.largest_denominator / funnels.smallest_denominator,
            (axis_points.generated_number - 1) / {{ points - 1 }}.0
        ) as denominator
    from funnels
    cross join axis_points
),

final as (
    select
        audit_year,
        kpi_number,
        breakdown,
        breakdown_value,
        point_number,
        cast(denominator as double) as denominator,
        national_value_pct,
        overdispersion_phi,
        overdispersion_tau2,
        {%- for bound, sign in [('lower', -1), ('upper', 1)] %}
            {%- for label, z in funnel_z_scores().items() %}
                {{ funnel_limit_pct('value_type', 'national_value_pct / 100.0', 'denominator',
                                    sign * z, 'overdispersion_tau2') }} as funnel_{{ bound }}_{{ label }}_pct,
                {{ funnel_limit_pct('value_type', 'national_value_pct / 100.0', 'denominator', sign * z) }}
                    as funnel_{{ bound }}_{{ label }}_unadjusted_pct,
            {%- endfor %}
        {%- endfor %}
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from curve_points
)

select * from final
