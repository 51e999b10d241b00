-- One row per identification KPI (2 and 3) x calendar month of the year: marts.kpi_seasonal_profile
-- as it may leave the building, with the KPI's name.
-- Why: the monthly pages of the report site draw the seasonal profile behind the KPI 2/3 monthly
-- expected counts. Nothing is suppressed: a share is a national month's count over its whole
-- audit year (tens of thousands of records), and the national monthly counts themselves are in
-- published_kpi_monthly.

with

seasonal_profile as (
    select * from {{ ref('kpi_seasonal_profile') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

final as (
    select
        seasonal_profile.kpi_number,
        kpi_definitions.kpi_name,
        seasonal_profile.month_of_year,
        seasonal_profile.share,
        seasonal_profile.years_used,
        seasonal_profile.is_synthetic_data
    from seasonal_profile
    inner join kpi_definitions
        on seasonal_profile.kpi_number = kpi_definitions.kpi_number
)

select * from final
