-- One row per KPI: its name, what it counts and how it is rated, from the KPI seed.
-- Why: a reader of the published results needs the definitions beside them.

with

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

final as (
    select
        cast(kpi_number as {{ dbt.type_int() }}) as kpi_number,
        kpi_name,
        kpi_short_name,
        kpi_group,
        value_type,
        numerator_definition,
        denominator_definition,
        rating_rule,
        cast(green_threshold_pct as double) as green_threshold_pct,
        cast(amber_threshold_pct as double) as amber_threshold_pct,
        cast(target_pct as double) as target_pct,
        -- KPI 1: a key field counts as complete at or above this share of records (the site words it).
        cast(key_field_threshold_pct as double) as key_field_threshold_pct
    from kpi_definitions
)

select * from final
