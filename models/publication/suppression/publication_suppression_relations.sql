-- One row per member of an additive relation between the cells of publication_suppression_cells:
-- a total and the cells that add up to it, numerators and denominators alike.
-- Why: secondary suppression (docs/specification/kpi-definitions.md, "Publication and small
-- numbers") must make sure that no withheld count can be worked out from what is published.
-- These are the sums a reader knows:
--   geography: the FLSs of a region add up to the region, the regions of a country to the country,
--     the countries to England and Wales (same year, KPI, breakdown and value; months alike);
--   breakdown: the values of one breakdown (for example the six deprivation values, `unknown`
--     included) add up to the `all` row of the same year, KPI and geography;
--   time: the months of an audit year (with the months not in the series) add up to the yearly
--     `all` row (docs/specification/monitoring.md section 1: a month's counts are the year's, restricted to it).
-- KPI 1 is left out: it counts fields and services, is never suppressed, and does not add up.
-- A relation is named by its total's cell and the kind of sum (`geography`, or the breakdown).

with

cells as (
    select * from {{ ref('publication_suppression_cells') }}
    where value_type != 'completeness'
),

geographies as (
    select * from {{ ref('dim_geography') }}
),

geography_parts as (
    -- Each cell below England and Wales is a part of the same cell of its parent geography.
    select
        'geography' as relation_type,
        'geography' as relation_group,
        totals.cell_id as total_cell_id,
        cells.cell_id
    from cells
    inner join geographies
        on
            cells.geography_level = geographies.geography_level
            and cells.geography_code = geographies.geography_code
    inner join cells as totals
        on
            geographies.parent_geography_level = totals.geography_level
            and geographies.parent_geography_code = totals.geography_code
            and cells.audit_year = totals.audit_year
            and cells.kpi_number = totals.kpi_number
            and cells.breakdown = totals.breakdown
            and cells.breakdown_value = totals.breakdown_value
),

breakdown_parts as (
    -- Each breakdown value (each month) is a part of the `all` row of its geography and year.
    select
        case when cells.breakdown = 'month' then 'time' else 'breakdown' end as relation_type,
        cells.breakdown as relation_group,
        totals.cell_id as total_cell_id,
        cells.cell_id
    from cells
    inner join cells as totals
        on
            cells.audit_year = totals.audit_year
            and cells.geography_level = totals.geography_level
            and cells.geography_code = totals.geography_code
            and cells.kpi_number = totals.kpi_number
            and totals.breakdown = 'all'
    where cells.breakdown != 'all'
),

parts as (
    select * from geography_parts
    union all
    select * from breakdown_parts
),

members as (
    select
        relation_type,
        relation_group,
        total_cell_id,
        cell_id,
        false as is_total
    from parts
    union all
    select distinct
        relation_type,
        relation_group,
        total_cell_id,
        total_cell_id as cell_id,
        true as is_total
    from parts
),

final as (
    select
        dense_rank() over (order by total_cell_id, relation_group) as relation_id,
        relation_type,
        cell_id,
        is_total
    from members
)

select * from final
