-- Fails with every monthly series (marts.kpi_monthly) whose last row has no value: a series ends at
-- its last month with a value (docs/specification/monitoring.md section 1), so that no chart runs on into months
-- that nobody has submitted yet.

with

kpi_monthly as (
    select * from {{ ref('kpi_monthly') }}
),

last_months as (
    select
        geography_level,
        geography_code,
        kpi_number,
        max(month_start) as last_month_start
    from kpi_monthly
    group by geography_level, geography_code, kpi_number
)

select kpi_monthly.*
from kpi_monthly
inner join last_months
    on
        kpi_monthly.geography_level = last_months.geography_level
        and kpi_monthly.geography_code = last_months.geography_code
        and kpi_monthly.kpi_number = last_months.kpi_number
        and kpi_monthly.month_start = last_months.last_month_start
where kpi_monthly.value_pct is null
