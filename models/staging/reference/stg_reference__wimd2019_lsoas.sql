-- One row per Welsh LSOA 2011: its Welsh Index of Multiple Deprivation 2019 rank, decile and score.
with source as (
    select * from {{ read_reference_csv('reference', 'wimd2019_lsoas') }}
),

renamed as (
    select
        lsoa11_code,
        -- Written as a decimal ("885.0").
        cast(cast(imd_rank as double) as {{ dbt.type_int() }}) as wimd_rank,
        cast(imd_decile as {{ dbt.type_int() }}) as wimd_decile,
        cast(imd_score as double) as wimd_score
    from source
)

select * from renamed
