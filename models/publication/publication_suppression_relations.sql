-- One row per member of an additive relation between published KPI results: a total and the
-- cells that add up to it (numerator and denominator alike).
-- Why: secondary suppression (docs/specification/kpi-definitions.md, "Publication and small numbers") must make sure no
-- suppressed cell can be worked out by subtraction. These are the subtractions a reader can do:
--   geography: the FLSs of a region add up to the region, the regions of a country to the
--     country, the countries to England and Wales (same year, KPI, breakdown and value);
--   breakdown: the values of one breakdown (for example the six deprivation values, `unknown`
--     included) add up to the `all` row of the same year, KPI and geography.
-- KPI 1 is left out: it counts fields and services, is never suppressed, and does not add up.
-- Ephemeral: the relations are internal to the suppression model and its tests, never published.

{{ config(materialized='ephemeral', contract={'enforced': false}) }}

with

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

geographies as (
    select * from {{ ref('dim_geography') }}
),

cells as (
    select
        kpi_results.audit_year,
        kpi_results.geography_level,
        kpi_results.geography_code,
        kpi_results.kpi_number,
        kpi_results.breakdown,
        kpi_results.breakdown_value
    from kpi_results
    inner join kpi_definitions
        on kpi_results.kpi_number = kpi_definitions.kpi_number
    where kpi_definitions.value_type != 'completeness'
),

geography_children as (
    -- Each cell below national belongs to the relation of its parent geography's cell.
    select
        'geography' as relation_type,
        geographies.parent_geography_level as total_geography_level,
        geographies.parent_geography_code as total_geography_code,
        cells.breakdown as total_breakdown,
        cells.breakdown_value as total_breakdown_value,
        cells.audit_year,
        cells.kpi_number,
        cells.geography_level,
        cells.geography_code,
        cells.breakdown,
        cells.breakdown_value,
        false as is_total
    from cells
    inner join geographies
        on
            cells.geography_level = geographies.geography_level
            and cells.geography_code = geographies.geography_code
    where geographies.parent_geography_level is not null
),

breakdown_children as (
    -- Each breakdown value belongs to the relation of the `all` cell of its geography.
    select
        'breakdown' as relation_type,
        geography_level as total_geography_level,
        geography_code as total_geography_code,
        breakdown as total_breakdown,
        'all' as total_breakdown_value,
        audit_year,
        kpi_number,
        geography_level,
        geography_code,
        breakdown,
        breakdown_value,
        false as is_total
    from cells
    where breakdown != 'all'
),

children as (
    select * from geography_children
    union all
    select * from breakdown_children
),

totals as (
    -- The total of each relation is a member too. A breakdown relation's total is the `all` row.
    select distinct
        children.relation_type,
        children.total_geography_level,
        children.total_geography_code,
        children.total_breakdown,
        children.total_breakdown_value,
        children.audit_year,
        children.kpi_number,
        children.total_geography_level as geography_level,
        children.total_geography_code as geography_code,
        case when children.relation_type = 'breakdown' then 'all' else children.total_breakdown end as breakdown,
        children.total_breakdown_value as breakdown_value,
        true as is_total
    from children
    inner join cells
        on
            children.audit_year = cells.audit_year
            and children.kpi_number = cells.kpi_number
            and children.total_geography_level = cells.geography_level
            and children.total_geography_code = cells.geography_code
            and (case when children.relation_type = 'breakdown' then 'all' else children.total_breakdown end)
            = cells.breakdown
            and children.total_breakdown_value = cells.breakdown_value
),

members as (
    select * from children
    union all
    select * from totals
),

final as (
    select
        dense_rank() over (
            order by
                relation_type,
                audit_year,
                kpi_number,
                total_geography_level,
                total_geography_code,
                total_breakdown,
                total_breakdown_value
        ) as relation_id,
        relation_type,
        audit_year,
        kpi_number,
        geography_level,
        geography_code,
        breakdown,
        breakdown_value,
        is_total
    from members
)

select * from final
