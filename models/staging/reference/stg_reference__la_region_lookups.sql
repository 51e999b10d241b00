-- One row per English local authority (2021): the ONS region (2021) it lies in.
with source as (
    select * from {{ read_reference_csv('reference', 'la_region_lookups') }}
),

renamed as (
    select
        ltla21_code as la_code,
        ltla21_name as la_name,
        region21_code as region_code,
        region21_name as region_name
    from source
)

select * from renamed
