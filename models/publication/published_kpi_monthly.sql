-- One row per geography x KPI x month of marts.kpi_monthly: the monthly series and its SPC chart
-- (docs/specification/monitoring.md sections 1-2) as they may leave the building, with primary and secondary
-- small-number suppression applied.
-- Why: the run charts of the report site and BI tools read only the published tier. A month is a
-- subset of its audit year and of its parent geography, so suppressing small months alone would
-- let a reader subtract the published months from the yearly result (or the FLSs from the region)
-- and recover them.
--
-- Primary suppression is kpi_monthly.is_suppressed (the one macro, macros/kpi_statistics.sql).
-- Secondary suppression is decided with the yearly results, as one system, by
-- publication_suppression (models/publication/suppression/; docs/bi.md, "Suppression"): a month is
-- a part of its yearly result (breakdown `all`) and of its parent geography's month, so no
-- withheld month can be worked out from the published months and years, and no withheld year from
-- the published months.
--
-- A suppressed month keeps its keys and lines and loses its counts, value, point type and flag.
-- The centre and limits of an SPC group are computed from every point of the group, so a group
-- with exactly one suppressed point would give that point's value away (n x mean - the others):
-- such a group's centre and limits are blanked too (`spc_lines_withheld`).

with

kpi_monthly as (
    select * from {{ ref('kpi_monthly') }}
),

suppression_cells as (
    select * from {{ ref('publication_suppression_cells') }}
),

suppression as (
    select * from {{ ref('publication_suppression') }}
),

geographies as (
    select * from {{ ref('dim_geography') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

flagged as (
    select
        kpi_monthly.*,
        cast(extract(year from kpi_monthly.month_start) as {{ dbt.type_int() }}) as audit_year,
        coalesce(suppression.is_suppressed, kpi_monthly.is_suppressed) as is_published_suppressed
    from kpi_monthly
    left join suppression_cells
        on
            kpi_monthly.geography_level = suppression_cells.geography_level
            and kpi_monthly.geography_code = suppression_cells.geography_code
            and kpi_monthly.kpi_number = suppression_cells.kpi_number
            and kpi_monthly.month_start = suppression_cells.month_start
    left join suppression
        on suppression_cells.cell_id = suppression.cell_id
),

groups as (
    -- A group whose points include exactly one suppressed point withholds its lines.
    select
        geography_level,
        geography_code,
        kpi_number,
        spc_group,
        sum(
            case when is_published_suppressed and denominator > 0 then 1 else 0 end
        ) = 1 as spc_lines_withheld
    from flagged
    group by geography_level, geography_code, kpi_number, spc_group
),

final as (
    select
        flagged.geography_level,
        flagged.geography_code,
        geographies.geography_name,
        flagged.kpi_number,
        kpi_definitions.kpi_name,
        flagged.month_start,
        flagged.audit_year,
        {%- for column in ['numerator', 'denominator', 'value_pct'] %}
            case when not flagged.is_published_suppressed then flagged.{{ column }} end as {{ column }},
        {%- endfor %}
        flagged.spc_group,
        {%- for column in ['centre_pct', 'lower_limit_pct', 'upper_limit_pct', 'lower_near_limit_pct',
                           'upper_near_limit_pct'] %}
            case when not groups.spc_lines_withheld then flagged.{{ column }} end as {{ column }},
        {%- endfor %}
        cast(kpi_definitions.target_pct as double) as target_pct,
        case when not flagged.is_published_suppressed then flagged.point_type end as point_type,
        case when not flagged.is_published_suppressed then flagged.is_special_cause end as is_special_cause,
        flagged.is_published_suppressed as is_suppressed,
        case
            when flagged.is_suppressed then 'small numbers'
            when flagged.is_published_suppressed then 'complementary'
        end as suppression_reason,
        groups.spc_lines_withheld,
        flagged.is_synthetic_data
    from flagged
    inner join groups
        on
            flagged.geography_level = groups.geography_level
            and flagged.geography_code = groups.geography_code
            and flagged.kpi_number = groups.kpi_number
            and flagged.spc_group = groups.spc_group
    left join geographies
        on
            flagged.geography_level = geographies.geography_level
            and flagged.geography_code = geographies.geography_code
    inner join kpi_definitions
        on flagged.kpi_number = kpi_definitions.kpi_number
)

select * from final
