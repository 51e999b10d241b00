-- One row per geography (national, country, region, FLS): names and the hierarchy, for BI tools.
-- Why: published_kpi_results names geographies by code; this is how a reader rolls them up.

with

geographies as (
    select * from {{ ref('dim_geography') }}
),

final as (
    select
        geography_level,
        geography_code,
        geography_name,
        parent_geography_level,
        parent_geography_code,
        country_code,
        region_code,
        sort_order,
        is_synthetic
    from geographies
)

select * from final
