-- One row per English LSOA 2011: its English Index of Multiple Deprivation 2019 rank and decile.
with source as (
    select * from {{ read_reference_csv('reference', 'imd2019_lsoas') }}
),

renamed as (
    select
        {{ adapter.quote('LSOA code (2011)') }} as lsoa11_code,
        {{ adapter.quote('LSOA name (2011)') }} as lsoa11_name,
        {{ adapter.quote('Local Authority District code (2019)') }} as la19_code,
        {{ adapter.quote('Local Authority District name (2019)') }} as la19_name,
        -- Written with thousands separators ("29,199").
        cast(replace({{ adapter.quote('Index of Multiple Deprivation (IMD) Rank') }}, ',', '') as {{ dbt.type_int() }})
            as imd_rank,
        cast({{ adapter.quote('Index of Multiple Deprivation (IMD) Decile') }} as {{ dbt.type_int() }}) as imd_decile
    from source
)

select * from renamed
