-- One row per geography a KPI is reported for: the nation (England and Wales), its two countries,
-- the FLS regions of the registry (NHS England regions, with Wales as one region) and each FLS.
with fls_registry as (
    select * from {{ ref('fls_registry') }}
),

national as (
    select
        'national' as geography_level,
        'K04000001' as geography_code,
        'England and Wales' as geography_name,
        cast(null as {{ dbt.type_string() }}) as parent_geography_level,
        cast(null as {{ dbt.type_string() }}) as parent_geography_code,
        cast(null as {{ dbt.type_string() }}) as country_code,
        cast(null as {{ dbt.type_string() }}) as region_code,
        false as is_synthetic,
        1 as sort_order
),

countries as (
    select
        'country' as geography_level,
        country_list.country_code as geography_code,
        country_list.country_name as geography_name,
        'national' as parent_geography_level,
        'K04000001' as parent_geography_code,
        country_list.country_code,
        cast(null as {{ dbt.type_string() }}) as region_code,
        false as is_synthetic,
        2 as sort_order
    from (
        values ('E92000001', 'England'), ('W92000004', 'Wales')
    ) as country_list (country_code, country_name)
),

regions as (
    select distinct
        'region' as geography_level,
        region_code as geography_code,
        region_name as geography_name,
        'country' as parent_geography_level,
        country_code as parent_geography_code,
        country_code,
        region_code,
        false as is_synthetic,
        3 as sort_order
    from fls_registry
),

services as (
    select
        'fls' as geography_level,
        fls_code as geography_code,
        fls_name as geography_name,
        'region' as parent_geography_level,
        region_code as parent_geography_code,
        country_code,
        region_code,
        -- The registry shipped with the project is invented: its FLSs are not real NHS services.
        true as is_synthetic,
        4 as sort_order
    from fls_registry
),

unioned as (
    select * from national
    union all
    select * from countries
    union all
    select * from regions
    union all
    select * from services
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
        is_synthetic,
        sort_order
    from unioned
)

select * from final
