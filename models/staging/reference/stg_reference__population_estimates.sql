-- One row per local authority (2021), sex and single year of age: the ONS mid-2020 population estimate.
with source as (
    select * from {{ read_reference_csv('reference', 'population_estimates') }}
),

renamed as (
    select
        area_code as la_code,
        area_name as la_name,
        geography as la_type,
        case left(area_code, 1)
            when 'E' then 'E92000001'
            when 'W' then 'W92000004'
        end as country_code,
        sex,
        -- 90 means 90 and over.
        cast(age as {{ dbt.type_int() }}) as age,
        cast(age as {{ dbt.type_int() }}) = 90 as is_age_open_ended,
        cast(population as {{ dbt.type_int() }}) as population,
        -- The shipped file is the mid-2020 estimate (MYE2).
        2020 as estimate_year
    from source
)

select * from renamed
