-- One row per Welsh local authority (2021): the Local Health Board (2022) that serves it.
with source as (
    select * from {{ read_reference_csv('reference', 'la_health_board_lookups') }}
),

renamed as (
    select
        ltla21_code as la_code,
        ltla21_name as la_name,
        lhb22_code as health_board_code,
        lhb22_name as health_board_name
    from source
)

select * from renamed
