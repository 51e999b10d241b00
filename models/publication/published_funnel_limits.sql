-- One row per audit year x KPI x point on the denominator axis: the funnel plot's control limits
-- (95% and 99.8%) around the national value for FLS results of breakdown `all`, adjusted for
-- overdispersion and unadjusted, with the phi and tau2 the plot's caption gives.
-- Why: the site draws the curves from here and recomputes nothing. The curves are
-- marts.kpi_funnel_limits (the same macro as kpi_results' own limits, so a dot outside a drawn
-- line is always a flagged FLS); this model only keeps what may be published: breakdown `all`,
-- and only where the national result itself is published.

with

funnel_limits as (
    select * from {{ ref('kpi_funnel_limits') }}
),

results as (
    select * from {{ ref('published_kpi_results') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

published_national_values as (
    select
        audit_year,
        kpi_number
    from results
    where
        geography_level = 'national'
        and breakdown = 'all'
        and value_pct is not null
),

final as (
    select
        funnel_limits.audit_year,
        funnel_limits.kpi_number,
        kpi_definitions.value_type,
        funnel_limits.point_number as step_number,
        funnel_limits.denominator,
        funnel_limits.national_value_pct,
        funnel_limits.overdispersion_phi,
        funnel_limits.overdispersion_tau2,
        {%- for label in funnel_z_scores().keys() %}
            {%- for bound in ['lower', 'upper'] %}
                funnel_limits.funnel_{{ bound }}_{{ label }}_pct as {{ bound }}_{{ label }}_pct,
                funnel_limits.funnel_{{ bound }}_{{ label }}_unadjusted_pct as {{ bound }}_{{ label }}_unadjusted_pct,
            {%- endfor %}
        {%- endfor %}
        funnel_limits.is_synthetic_data
    from funnel_limits
    inner join published_national_values
        on
            funnel_limits.audit_year = published_national_values.audit_year
            and funnel_limits.kpi_number = published_national_values.kpi_number
    inner join kpi_definitions
        on funnel_limits.kpi_number = kpi_definitions.kpi_number
    where funnel_limits.breakdown = 'all'
)

select * from final
