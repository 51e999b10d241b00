-- One row per chart point (a month with a value, int_spc_months_grouped) of a group with limits
-- or not: where it lies against its group's lines (int_spc_groups_limited) and the four
-- special-cause rules.
-- Why: step 3 of the XmR chart (docs/specification/monitoring.md section 2, "Special cause"). The rules read the
-- limits as computed, never the clipped ones; a run chart (no limits) has no flags.

{%- set c = spc_constants() %}
{%- set series = spc_series_list() %}

with

points as (
    select * from {{ ref('int_spc_months_grouped') }}
    where point_number is not null
),

group_lines as (
    select * from {{ ref('int_spc_groups_limited') }}
),

points_placed as (
    -- Where each point lies: side of the mean (0 = exactly on it), beyond a process limit, or between
    -- a near-limit line and its process limit (a point on the process limit is still "near"; a point
    -- on the near-limit line is not); and the direction of the step from the previous point (0 = tie).
    select
        {{ spc_series_list('points') }},
        points.month_start,
        points.value_pct,
        points.spc_group,
        points.point_number,
        lines.has_limits,
        case
            when points.value_pct > lines.centre_pct then 1
            when points.value_pct < lines.centre_pct then -1
            else 0
        end as side_of_centre,
        coalesce(points.value_pct > lines.upper_limit_pct or points.value_pct < lines.lower_limit_pct, false)
            as is_outside_limits,
        coalesce(
            points.value_pct <= lines.upper_limit_pct and points.value_pct >= lines.lower_limit_pct
            and (points.value_pct > lines.upper_near_limit_pct or points.value_pct < lines.lower_near_limit_pct),
            false
        ) as is_near_limit,
        case
            when points.previous_value_pct is null or points.value_pct = points.previous_value_pct then 0
            when points.value_pct > points.previous_value_pct then 1
            else -1
        end as step_direction
    from points
    inner join group_lines as lines
        on {{ spc_series_join('points', 'lines', ['spc_group']) }}
),

points_in_runs as (
    -- Runs as islands: consecutive points with the same side (or the same step direction) share
    -- point_number - row_number() within that side (direction).
    select
        *,
        point_number - row_number() over (
            partition by {{ series }}, spc_group, side_of_centre order by point_number
        ) as side_run,
        point_number - row_number() over (
            partition by {{ series }}, spc_group, step_direction order by point_number
        ) as step_run,
        count(*) over (
            partition by {{ series }}, spc_group order by point_number
            rows between current row and 2 following
        ) as points_in_window_of_three,
        sum({{ count_if_true('is_near_limit') }}) over (
            partition by {{ series }}, spc_group order by point_number
            rows between current row and 2 following
        ) as near_limit_points_in_window_of_three,
        sum(side_of_centre) over (
            partition by {{ series }}, spc_group order by point_number
            rows between current row and 2 following
        ) as side_sum_in_window_of_three
    from points_placed
),

run_lengths as (
    select
        *,
        count(*) over (partition by {{ series }}, spc_group, side_of_centre, side_run) as side_run_points,
        count(*) over (partition by {{ series }}, spc_group, step_direction, step_run) as step_run_steps,
        -- Rule 4's window of 3 consecutive points starting here: at least 2 near-limit points, all 3
        -- on the same side of the mean.
        points_in_window_of_three = 3
        and near_limit_points_in_window_of_three >= 2
        and abs(side_sum_in_window_of_three) = 3 as starts_two_of_three
    from points_in_runs
),

runs_judged as (
    select
        *,
        -- Rule 2: part of 7 or more consecutive points on the same side (a point on the mean breaks it).
        side_of_centre != 0 and side_run_points >= {{ c.run_points }} as is_in_shift,
        -- Rule 3: 6 or more consecutive steps in one direction = 7 or more points; a point belongs to
        -- the run when the step into it, or the step out of it, does (a tie breaks it).
        step_direction != 0 and step_run_steps >= {{ c.run_points - 1 }} as ends_trend_step
    from run_lengths
),

rules_flagged as (
    select
        *,
        is_outside_limits as is_rule_1_outside_limits,
        is_in_shift as is_rule_2_shift,
        ends_trend_step or coalesce(lead({{ count_if_true('ends_trend_step') }}) over (
            partition by {{ series }}, spc_group order by point_number
        ) = 1, false) as is_rule_3_trend,
        is_near_limit and max({{ count_if_true('starts_two_of_three') }}) over (
            partition by {{ series }}, spc_group order by point_number
            rows between 2 preceding and current row
        ) = 1 as is_rule_4_two_of_three
    from runs_judged
),

final as (
    -- A run chart has no flags.
    select
        {{ series }},
        month_start,
        spc_group,
        point_number,
        value_pct,
        side_of_centre,
        has_limits and is_rule_1_outside_limits as is_rule_1_outside_limits,
        has_limits and is_rule_2_shift as is_rule_2_shift,
        has_limits and is_rule_3_trend as is_rule_3_trend,
        has_limits and is_rule_4_two_of_three as is_rule_4_two_of_three,
        has_limits
        and (is_rule_1_outside_limits or is_rule_2_shift or is_rule_3_trend or is_rule_4_two_of_three)
            as is_special_cause
    from rules_flagged
)

select * from final
