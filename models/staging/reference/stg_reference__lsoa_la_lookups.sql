-- One row per LSOA 2011 in England and Wales: the local authority (2021) it lies in.
with source as (
    select * from {{ read_reference_csv('reference', 'lsoa_la_lookups') }}
),

renamed as (
    select
        lsoa11_code,
        lsoa11_name,
        ltla21_code as la_code,
        ltla21_name as la_name,
        case left(lsoa11_code, 1)
            when 'E' then 'E92000001'
            when 'W' then 'W92000004'
        end as country_code
    from source
)

select * from renamed
