-- One row per geography x KPI x month of marts.kpi_monthly: the monthly series and its SPC chart
-- (docs/specification/monitoring.md sections 1-2) as they may leave the building, with primary and secondary
-- small-number suppression applied.
-- Why: the run charts of the report site and BI tools read only the published tier. A month is a
-- subset of its audit year and of its parent geography, so suppressing small months alone would
-- let a reader subtract the published months from the yearly result (or the FLSs from the region)
-- and recover them.
--
-- Primary suppression is kpi_monthly.is_suppressed (the one macro, macros/kpi_statistics.sql).
-- Secondary suppression is the one mechanism of published_kpi_results
-- (macros/secondary_suppression.sql) over the relations of publication_monthly_suppression_relations
-- (months -> the year; FLS -> region -> country -> England and Wales months). The yearly results
-- are members with the suppression published_kpi_results gave them, fixed (never chosen as a
-- complement here, so the yearly tier is not changed by the months); the later months of an
-- incomplete year are a blank member that needs no protection itself (not a suppressed cell:
-- months not yet complete, published in a later extract); the complement is the month
-- with the smallest denominator, then numerator, then key. The data test
-- assert_published_monthly_suppression_leaves_no_lone_cell checks the result.
--
-- A suppressed month keeps its keys and lines and loses its counts, value, point type and flag.
-- The centre and limits of an SPC group are computed from every point of the group, so a group
-- with exactly one suppressed point would give that point's value away (n x mean - the others):
-- such a group's centre and limits are blanked too (`spc_lines_withheld`).

{%- set passes = var('secondary_suppression_passes') %}

with

kpi_monthly as (
    select * from {{ ref('kpi_monthly') }}
),

published_results as (
    select * from {{ ref('published_kpi_results') }}
),

relations as (
    select * from {{ ref('publication_monthly_suppression_relations') }}
),

geographies as (
    select * from {{ ref('dim_geography') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

monthly as (
    select
        *,
        cast(extract(year from month_start) as {{ dbt.type_int() }}) as audit_year,
        cast(extract(month from month_start) as {{ dbt.type_int() }}) as month_number
    from kpi_monthly
),

cell_keys as (
    -- Every member of a relation: the months (mutable), the yearly results and the later months
    -- (fixed: decided by published_kpi_results, or never published).
    select
        geography_level,
        geography_code,
        kpi_number,
        audit_year,
        month_number,
        numerator,
        denominator,
        is_suppressed as is_primary_suppressed,
        false as is_fixed,
        true as is_protected
    from monthly
    union all
    select
        published_results.geography_level,
        published_results.geography_code,
        published_results.kpi_number,
        published_results.audit_year,
        0 as month_number,
        cast(null as double) as numerator,
        cast(null as double) as denominator,
        published_results.is_suppressed as is_primary_suppressed,
        true as is_fixed,
        true as is_protected
    from published_results
    where
        published_results.breakdown = 'all'
        and published_results.breakdown_value = 'all'
        and published_results.kpi_number in (select distinct monthly.kpi_number from monthly)
    union all
    select distinct
        geography_level,
        geography_code,
        kpi_number,
        audit_year,
        month_number,
        cast(null as double) as numerator,
        cast(null as double) as denominator,
        true as is_primary_suppressed,
        true as is_fixed,
        false as is_protected
    from relations
    where month_number = 13
),

cells as (
    select
        *,
        row_number() over (
            order by geography_level, geography_code, kpi_number, audit_year, month_number
        ) as cell_id
    from cell_keys
),

-- Members in the order a complement is chosen (the macro beside the passes): parts before the
-- total, then the smallest denominator, then the smallest numerator, then the cell's key.
members as (
    {{ secondary_suppression_members(
        'relations', 'cells',
        ['geography_level', 'geography_code', 'kpi_number', 'audit_year', 'month_number']
    ) }}
),

{{ secondary_suppression_passes('cells', 'members', passes) }}

flagged as (
    select
        monthly.*,
        suppressed_after_pass_{{ passes }}.is_suppressed as is_published_suppressed
    from monthly
    inner join cells
        on
            monthly.geography_level = cells.geography_level
            and monthly.geography_code = cells.geography_code
            and monthly.kpi_number = cells.kpi_number
            and monthly.audit_year = cells.audit_year
            and monthly.month_number = cells.month_number
    inner join suppressed_after_pass_{{ passes }}
        on cells.cell_id = suppressed_after_pass_{{ passes }}.cell_id
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
