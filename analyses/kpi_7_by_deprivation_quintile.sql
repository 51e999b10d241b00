-- KPI 7 (bone therapy recommended) by deprivation quintile, nationally, each audit year.
-- National quintiles pool both countries, each relative to its own country (IMD 2019 / WIMD 2019).
select
    audit_year,
    breakdown_value as deprivation_quintile,
    numerator,
    denominator,
    round(value_pct, 1) as value_pct,
    round(ci_lower_pct, 1) as ci_lower_pct,
    round(ci_upper_pct, 1) as ci_upper_pct
from {{ ref('kpi_results') }}
where
    kpi_number = 7
    and geography_level = 'national'
    and breakdown = 'deprivation_quintile'
order by deprivation_quintile, audit_year
