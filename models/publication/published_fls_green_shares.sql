-- One row per audit year x KPI: how many FLSs have a published rating, and the share rated green
-- (KPI 1: met), for the report at a glance.
-- Why: the share is a published number in its own right; counting only published (not suppressed)
-- ratings here means it can never reveal a suppressed FLS's rating.

with

results as (
    select * from {{ ref('published_kpi_results') }}
),

fls_ratings as (
    select
        audit_year,
        kpi_number,
        kpi_name,
        rating
    from results
    where geography_level = 'fls' and breakdown = 'all'
),

counted as (
    select
        audit_year,
        kpi_number,
        kpi_name,
        sum(case when rating is not null then 1 else 0 end) as fls_rated,
        sum(case when rating in ('green', 'met') then 1 else 0 end) as fls_rated_green
    from fls_ratings
    group by audit_year, kpi_number, kpi_name
),

final as (
    select
        audit_year,
        kpi_number,
        kpi_name,
        cast(fls_rated as {{ dbt.type_int() }}) as fls_rated,
        cast(fls_rated_green as {{ dbt.type_int() }}) as fls_rated_green,
        cast(case when fls_rated > 0 then 100.0 * fls_rated_green / fls_rated end as double) as green_share_pct,
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from counted
)

select * from final
