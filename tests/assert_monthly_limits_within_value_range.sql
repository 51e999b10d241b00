-- Fails with every kpi_monthly row whose stored chart lines leave the range the value can take
-- (docs/specification/monitoring.md section 2): below 0, or above 100 for a proportion. The KPI 2/3
-- identification ratios (observed / expected) can exceed 100, so only 0 bounds them.

with

kpi_monthly as (
    select * from {{ ref('kpi_monthly') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

lines as (
    select
        kpi_monthly.geography_level,
        kpi_monthly.geography_code,
        kpi_monthly.kpi_number,
        kpi_monthly.month_start,
        kpi_definitions.value_type,
        kpi_monthly.lower_limit_pct,
        kpi_monthly.upper_limit_pct,
        kpi_monthly.lower_near_limit_pct,
        kpi_monthly.upper_near_limit_pct
    from kpi_monthly
    inner join kpi_definitions
        on kpi_monthly.kpi_number = kpi_definitions.kpi_number
)

select *
from lines
where
    lower_limit_pct < 0
    or lower_near_limit_pct < 0
    or (value_type = 'proportion' and (upper_limit_pct > 100 or upper_near_limit_pct > 100))
