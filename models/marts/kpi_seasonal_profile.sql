-- One row per identification KPI (2 and 3) x calendar month of the year: the seasonal share s_m of
-- the year's expected count that the monthly series gives that month, and the number of complete
-- audit years it was estimated from (0: the flat share of a 365-day year).
-- Why: the KPI 2/3 monthly denominators are the year's expected count x s_m (docs/specification/monitoring.md
-- section 1); the monthly pages show the profile used, so that a reader can see why a January's
-- expected count is larger than a June's.

with

seasonal_shares as (
    select * from {{ ref('int_kpi_seasonal_shares_estimated') }}
),

final as (
    select
        kpi_number,
        month_of_year,
        share,
        years_used,
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from seasonal_shares
)

select * from final
