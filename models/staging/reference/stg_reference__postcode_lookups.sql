-- One row per postcode in the configured NSPL/ONSPD-layout lookup: the LSOA 2011 it lies in.
with source as (
    select * from {{ read_reference_csv('reference', 'postcode_lookups') }}
),

renamed as (
    select
        -- The join key (macro normalise_postcode): upper case, no spaces.
        {{ normalise_postcode("pcds") }} as postcode_key,
        pcds as postcode,
        nullif(trim(lsoa11), '') as lsoa11_code
    from source
)

select * from renamed
