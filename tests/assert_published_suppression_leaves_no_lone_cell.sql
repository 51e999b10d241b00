-- Secondary suppression is complete: no additive relation of publication_suppression_relations
-- (FLS -> region -> country -> England and Wales; breakdown values -> `all`; months -> the year)
-- has exactly one protected withheld member in what is published, which subtraction would give
-- away. Read from the published tables (yearly and monthly), not from the suppression model.
-- Protected (publication_suppression.is_protected): withheld as a complement, for small numbers
-- with at least one patient in a small count, or as part of a protection pattern; any other cell
-- with no patient, and the months not in the series, may be worked out: nothing in it to hide.

with

relations as (
    select * from {{ ref('publication_suppression_relations') }}
),

cells as (
    select * from {{ ref('publication_suppression_cells') }}
),

suppression as (
    select * from {{ ref('publication_suppression') }}
),

yearly as (
    select * from {{ ref('published_kpi_results') }}
),

monthly as (
    select * from {{ ref('published_kpi_monthly') }}
),

published_cells as (
    select
        cells.cell_id,
        coalesce(yearly.is_suppressed, monthly.is_suppressed, true) as is_withheld,
        suppression.is_protected as needs_protection
    from cells
    inner join suppression
        on cells.cell_id = suppression.cell_id
    left join yearly
        on
            cells.audit_year = yearly.audit_year
            and cells.geography_level = yearly.geography_level
            and cells.geography_code = yearly.geography_code
            and cells.kpi_number = yearly.kpi_number
            and cells.breakdown = yearly.breakdown
            and cells.breakdown_value = yearly.breakdown_value
    left join monthly
        on
            cells.geography_level = monthly.geography_level
            and cells.geography_code = monthly.geography_code
            and cells.kpi_number = monthly.kpi_number
            and cells.month_start = monthly.month_start
),

counted as (
    select
        relations.relation_id,
        sum(case when published_cells.is_withheld and published_cells.needs_protection then 1 else 0 end)
            as protected_withheld_members
    from relations
    inner join published_cells
        on relations.cell_id = published_cells.cell_id
    group by relations.relation_id
)

select * from counted
where protected_withheld_members = 1
