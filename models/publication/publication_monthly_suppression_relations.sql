-- One row per member of an additive relation between published monthly KPI cells: a total and
-- the cells that add up to it (numerators alike; denominators too, except KPI 2/3 months before a
-- series starts, whose numerators are 0).
-- Why: secondary suppression of published_kpi_monthly must make sure that no suppressed month can
-- be worked out by subtraction. These are the subtractions a reader can do (docs/specification/monitoring.md
-- section 1: a month's counts are the year's counts restricted to the month):
--   time: the months of an audit year add up to the yearly result (published_kpi_results,
--     breakdown `all`, same geography and KPI). A year whose later months are not yet complete
--     (not in the series) gets one extra member, `later_months`, that is never published: the
--     yearly total minus the published months then gives only the sum of the suppressed months
--     and the unpublished ones. Months before a series starts have no cohort record (zero counts).
--   geography: the FLSs' months of a region add up to the region's month, the regions' to the
--     country's, the countries' to England and Wales's (same KPI and month).
--   time_parts: the same months without the total, as a stricter constraint (see below).
-- Members: month_number 1-12 is a monthly cell, 0 the yearly result, 13 the later months.
-- Ephemeral: internal to published_kpi_monthly and its data test, never published.

{{ config(materialized='ephemeral', contract={'enforced': false}) }}

with

kpi_monthly as (
    select * from {{ ref('kpi_monthly') }}
),

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

geographies as (
    select * from {{ ref('dim_geography') }}
),

months as (
    select
        geography_level,
        geography_code,
        kpi_number,
        cast(extract(year from month_start) as {{ dbt.type_int() }}) as audit_year,
        cast(extract(month from month_start) as {{ dbt.type_int() }}) as month_number
    from kpi_monthly
),

series_years as (
    select
        geography_level,
        geography_code,
        kpi_number,
        audit_year,
        max(month_number) as last_month_number
    from months
    group by geography_level, geography_code, kpi_number, audit_year
),

years as (
    -- The yearly results the months add up to.
    select
        series_years.geography_level,
        series_years.geography_code,
        series_years.kpi_number,
        series_years.audit_year,
        series_years.last_month_number
    from series_years
    inner join kpi_results
        on
            series_years.geography_level = kpi_results.geography_level
            and series_years.geography_code = kpi_results.geography_code
            and series_years.kpi_number = kpi_results.kpi_number
            and series_years.audit_year = kpi_results.audit_year
            and kpi_results.breakdown = 'all'
            and kpi_results.breakdown_value = 'all'
),

time_members as (
    select
        'time' as relation_type,
        years.geography_level as total_geography_level,
        years.geography_code as total_geography_code,
        years.audit_year as total_audit_year,
        0 as total_month_number,
        months.geography_level,
        months.geography_code,
        months.kpi_number,
        months.audit_year,
        months.month_number,
        false as is_total
    from months
    inner join years
        on
            months.geography_level = years.geography_level
            and months.geography_code = years.geography_code
            and months.kpi_number = years.kpi_number
            and months.audit_year = years.audit_year
    union all
    select
        'time' as relation_type,
        geography_level as total_geography_level,
        geography_code as total_geography_code,
        audit_year as total_audit_year,
        0 as total_month_number,
        geography_level,
        geography_code,
        kpi_number,
        audit_year,
        0 as month_number,
        true as is_total
    from years
    union all
    select
        'time' as relation_type,
        geography_level as total_geography_level,
        geography_code as total_geography_code,
        audit_year as total_audit_year,
        0 as total_month_number,
        geography_level,
        geography_code,
        kpi_number,
        audit_year,
        13 as month_number,
        false as is_total
    from years
    where last_month_number < 12
),

time_parts as (
    -- A stricter constraint, not a subtraction: the months of a year of a series (with the later
    -- months), on their own, whether or not a yearly result exists (an FLS outside its registry
    -- years has months but no KPI 2/3 result). Chains of subtractions through the yearly results
    -- and the parent geographies recovered a lone suppressed month of a year
    -- (test_publication_suppression.py); so a year's months hold 0 or at least 2 blank members.
    select
        'time_parts' as relation_type,
        months.geography_level as total_geography_level,
        months.geography_code as total_geography_code,
        months.audit_year as total_audit_year,
        0 as total_month_number,
        months.geography_level,
        months.geography_code,
        months.kpi_number,
        months.audit_year,
        months.month_number,
        false as is_total
    from months
    union all
    select
        'time_parts' as relation_type,
        geography_level as total_geography_level,
        geography_code as total_geography_code,
        audit_year as total_audit_year,
        0 as total_month_number,
        geography_level,
        geography_code,
        kpi_number,
        audit_year,
        13 as month_number,
        false as is_total
    from series_years
    where last_month_number < 12
),

geography_children as (
    select
        'geography' as relation_type,
        geographies.parent_geography_level as total_geography_level,
        geographies.parent_geography_code as total_geography_code,
        months.audit_year as total_audit_year,
        months.month_number as total_month_number,
        months.geography_level,
        months.geography_code,
        months.kpi_number,
        months.audit_year,
        months.month_number,
        false as is_total
    from months
    inner join geographies
        on
            months.geography_level = geographies.geography_level
            and months.geography_code = geographies.geography_code
    where geographies.parent_geography_level is not null
),

geography_totals as (
    select distinct
        geography_children.relation_type,
        geography_children.total_geography_level,
        geography_children.total_geography_code,
        geography_children.total_audit_year,
        geography_children.total_month_number,
        months.geography_level,
        months.geography_code,
        months.kpi_number,
        months.audit_year,
        months.month_number,
        true as is_total
    from geography_children
    inner join months
        on
            geography_children.total_geography_level = months.geography_level
            and geography_children.total_geography_code = months.geography_code
            and geography_children.kpi_number = months.kpi_number
            and geography_children.audit_year = months.audit_year
            and geography_children.month_number = months.month_number
),

members as (
    select * from time_members
    union all
    select * from time_parts
    union all
    select * from geography_children
    union all
    select * from geography_totals
),

final as (
    select
        dense_rank() over (
            order by
                relation_type,
                kpi_number,
                total_geography_level,
                total_geography_code,
                total_audit_year,
                total_month_number
        ) as relation_id,
        relation_type,
        geography_level,
        geography_code,
        kpi_number,
        audit_year,
        month_number,
        is_total
    from members
)

select * from final
