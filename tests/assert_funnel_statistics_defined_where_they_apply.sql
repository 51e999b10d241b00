-- Fails with every FLS result of a KPI with a funnel (value type proportion or ratio_to_expected)
-- that has a denominator and a national value but lacks a funnel limit, phi or tau2. Degenerate
-- years included (issue 19): a national value of 0% or 100%, an identification ratio of 0, or a
-- KPI reported by one service still gives defined limits (collapsed onto the national value),
-- phi and tau2. Null is kept for what does not apply: no denominator, or no national value.

with

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
)

select kpi_results.*
from kpi_results
inner join kpi_definitions
    on kpi_results.kpi_number = kpi_definitions.kpi_number
where
    kpi_results.geography_level = 'fls'
    and kpi_definitions.value_type in ('proportion', 'ratio_to_expected')
    and kpi_results.denominator > 0
    and kpi_results.national_value_pct is not null
    and (
        kpi_results.funnel_lower_95_pct is null
        or kpi_results.funnel_upper_95_pct is null
        or kpi_results.funnel_lower_998_pct is null
        or kpi_results.funnel_upper_998_pct is null
        or kpi_results.funnel_lower_95_unadjusted_pct is null
        or kpi_results.funnel_upper_95_unadjusted_pct is null
        or kpi_results.funnel_lower_998_unadjusted_pct is null
        or kpi_results.funnel_upper_998_unadjusted_pct is null
        or kpi_results.overdispersion_phi is null
        or kpi_results.overdispersion_tau2 is null
    )
