-- One row per LSOA 2011 in England and Wales: its local authority and its own country's deprivation decile
-- and quintile (IMD 2019 for English LSOAs, WIMD 2019 for Welsh ones).
with lsoa_la_lookups as (
    select * from {{ ref('stg_reference__lsoa_la_lookups') }}
),

imd2019_lsoas as (
    select * from {{ ref('stg_reference__imd2019_lsoas') }}
),

wimd2019_lsoas as (
    select * from {{ ref('stg_reference__wimd2019_lsoas') }}
),

deprivation_unioned as (
    select
        lsoa11_code,
        'IMD 2019' as deprivation_index,
        imd_rank as deprivation_rank,
        imd_decile as deprivation_decile
    from imd2019_lsoas

    union all

    select
        lsoa11_code,
        'WIMD 2019' as deprivation_index,
        wimd_rank as deprivation_rank,
        wimd_decile as deprivation_decile
    from wimd2019_lsoas
),

final as (
    select
        lsoa_la_lookups.lsoa11_code,
        lsoa_la_lookups.lsoa11_name,
        lsoa_la_lookups.country_code,
        lsoa_la_lookups.la_code,
        lsoa_la_lookups.la_name,
        deprivation_unioned.deprivation_index,
        deprivation_unioned.deprivation_rank,
        deprivation_unioned.deprivation_decile,
        -- Quintile 1 = most deprived 20% of the LSOA's own country.
        cast(ceil(deprivation_unioned.deprivation_decile / 2.0) as {{ dbt.type_int() }}) as deprivation_quintile
    from lsoa_la_lookups
    left join deprivation_unioned
        on lsoa_la_lookups.lsoa11_code = deprivation_unioned.lsoa11_code
)

select * from final
