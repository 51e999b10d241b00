-- Fails with every identification KPI whose seasonal profile (marts.kpi_seasonal_profile) does not
-- have 12 months whose shares add up to 1 (docs/specification/monitoring.md section 1), so that the monthly KPI
-- 2/3 denominators of a year add up to its expected count.

select
    kpi_number,
    count(*) as months,
    sum(share) as total_share
from {{ ref('kpi_seasonal_profile') }}
group by kpi_number
having count(*) != 12 or abs(sum(share) - 1.0) > 0.000000001
