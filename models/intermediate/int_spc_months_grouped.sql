-- One row per monthly series month (as int_kpi_months_measured) with its SPC group and, for a
-- chart point (a month with a value), its number in the group, the moving range from the previous
-- point and whether the point and that moving range belong to the group's baseline.
-- Why: step 1 of the XmR chart (docs/specification/monitoring.md section 2, "Groups"): the two seeds a clinical
-- lead edits, rebase months and fixed baselines, act here and nowhere else; int_spc_groups_limited
-- takes each group's limits from its baseline.

{%- set series = spc_series_list() %}
{%- set c = spc_constants() %}

with

months as (
    -- The chart reads each value to 9 decimal places (macros/spc.sql): no special cause out of
    -- floating-point noise.
    select
        geography_level,
        geography_code,
        kpi_number,
        value_type,
        month_start,
        round(value_pct, {{ c.value_decimal_places }}) as value_pct
    from {{ ref('int_kpi_months_measured') }}
),

rebase_months as (
    -- Codes as typed by a person: `syn012 ` means SYN012 (a row that matches no series is named by
    -- quality.dq_seed_rows and refuses publication).
    select
        {{ normalise_code('geography_code') }} as geography_code,
        kpi_number,
        rebase_month
    from {{ ref('spc_rebase_months') }}
),

fixed_baselines as (
    select
        {{ normalise_code('geography_code') }} as geography_code,
        kpi_number,
        baseline_points
    from {{ ref('spc_fixed_baselines') }}
),

months_rebased as (
    -- A rebase month starts a new group from that month on: count the rebase months up to it.
    select
        {{ spc_series_list('months') }},
        months.value_type,
        months.month_start,
        months.value_pct,
        count(distinct rebase_months.rebase_month) as rebases_so_far
    from months
    left join rebase_months
        on
            months.geography_code = rebase_months.geography_code
            and months.kpi_number = rebase_months.kpi_number
            and months.month_start >= rebase_months.rebase_month
    group by {{ spc_series_list('months') }}, months.value_type, months.month_start, months.value_pct
),

months_grouped as (
    -- Groups numbered 1, 2, ... within the series (a rebase before the series starts, or two rebase
    -- months with no month between them, does not leave a gap in the numbering).
    select
        {{ series }},
        value_type,
        month_start,
        value_pct,
        dense_rank() over (partition by {{ series }} order by rebases_so_far) as spc_group
    from months_rebased
),

points_numbered as (
    -- The chart's points: months with a value (denominator > 0), in time order within the group.
    -- The moving range is taken between consecutive points, skipping months with no value.
    select
        {{ spc_series_list('grouped') }},
        grouped.month_start,
        grouped.spc_group,
        fixed_baselines.baseline_points,
        row_number() over (
            partition by {{ spc_series_list('grouped') }}, grouped.spc_group order by grouped.month_start
        ) as point_number,
        count(*) over (partition by {{ spc_series_list('grouped') }}, grouped.spc_group) as group_points,
        lag(grouped.value_pct) over (
            partition by {{ spc_series_list('grouped') }}, grouped.spc_group order by grouped.month_start
        ) as previous_value_pct
    from months_grouped as grouped
    left join fixed_baselines
        on
            grouped.geography_code = fixed_baselines.geography_code
            and grouped.kpi_number = fixed_baselines.kpi_number
    where grouped.value_pct is not null
),

final as (
    -- The baseline is the first N points of the group (a fixed baseline), else all its points. A
    -- moving range belongs to the baseline when both its points do (point 2 to N).
    select
        {{ spc_series_list('grouped') }},
        grouped.value_type,
        grouped.month_start,
        grouped.value_pct,
        grouped.spc_group,
        points.point_number,
        points.group_points,
        points.previous_value_pct,
        abs(grouped.value_pct - points.previous_value_pct) as moving_range,
        points.point_number <= coalesce(points.baseline_points, points.group_points) as is_baseline_point,
        points.point_number > 1
        and points.point_number <= coalesce(points.baseline_points, points.group_points)
            as is_baseline_moving_range
    from months_grouped as grouped
    left join points_numbered as points
        on
            {{ spc_series_join('grouped', 'points') }}
            and grouped.month_start = points.month_start
)

select * from final
