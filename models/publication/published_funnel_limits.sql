-- One row per audit year x KPI x point of a grid of denominators: the funnel plot's control
-- limits (95% and 99.8%) around the national value, for FLS results of breakdown `all`.
-- Why: the site draws the curves from here, by the same macros that flag outliers in
-- kpi_results (macros/kpi_statistics.sql), so a dot outside a drawn line is always a flagged FLS.
-- The grid spans 0.9 x the smallest to 1.1 x the largest published FLS denominator, evenly on a
-- log scale (the plot's x axis), in var('funnel_curve_steps') steps; suppressed FLSs do not set it.

{%- set steps = var('funnel_curve_steps') %}
{%- set z_values = [('95', 1.959964), ('998', 3.090232)] %}

with

results as (
    select * from {{ ref('published_kpi_results') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

digits as (
    {%- for digit in range(10) %}
        {% if not loop.first %}union all{% endif %}
        select {{ digit }} as digit
    {%- endfor %}
),

grid_steps as (
    select hundreds.digit * 100 + tens.digit * 10 + units.digit as step_number
    from digits as hundreds
    cross join digits as tens
    cross join digits as units
    where hundreds.digit * 100 + tens.digit * 10 + units.digit <= {{ steps }}
),

national_centres as (
    -- The centre line and the spread of each curve. Overdispersion (tau2) enters here.
    select
        results.audit_year,
        results.kpi_number,
        kpi_definitions.value_type,
        results.value_pct as national_value_pct,
        results.value_pct / 100.0 as national_proportion
    from results
    inner join kpi_definitions
        on results.kpi_number = kpi_definitions.kpi_number
    where
        results.geography_level = 'national'
        and results.breakdown = 'all'
        and kpi_definitions.value_type in ('proportion', 'ratio_to_expected')
        and results.value_pct is not null
),

fls_ranges as (
    select
        audit_year,
        kpi_number,
        0.9 * min(denominator) as lowest_denominator,
        1.1 * max(denominator) as highest_denominator
    from results
    where geography_level = 'fls' and breakdown = 'all' and denominator > 0
    group by audit_year, kpi_number
),

grid as (
    select
        national_centres.*,
        grid_steps.step_number,
        fls_ranges.lowest_denominator
        * power(fls_ranges.highest_denominator / fls_ranges.lowest_denominator, grid_steps.step_number / {{ steps }}.0)
            as denominator
    from national_centres
    inner join fls_ranges
        on
            national_centres.audit_year = fls_ranges.audit_year
            and national_centres.kpi_number = fls_ranges.kpi_number
    cross join grid_steps
),

final as (
    select
        audit_year,
        kpi_number,
        value_type,
        cast(step_number as {{ dbt.type_int() }}) as step_number,
        denominator,
        national_value_pct,
        {%- for label, z in z_values %}
            {%- for bound, sign in [('lower', -1), ('upper', 1)] %}
                case
                    when value_type = 'proportion'
                        then {{ proportion_funnel_limit_pct('national_proportion', 'denominator', sign * z) }}
                    when value_type = 'ratio_to_expected'
                        then {{ ratio_funnel_limit_pct('national_proportion', 'denominator', sign * z) }}
                end as {{ bound }}_{{ label }}_pct,
            {%- endfor %}
        {%- endfor %}
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from grid
)

select * from final
