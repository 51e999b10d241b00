{#-
    XmR ("plot the dots") charts of NHS "Making Data Count", exactly as docs/specification/monitoring.md section 2.
    Written once here and used by int_kpi_months_charted (and through it by the kpi_monthly and
    kpi_spc_summary marts). NHSRplotthedots (the NHS-R community's R package) is the reference where
    the spec is silent; every such reading is listed in DEVELOPERS.md, "SPC readings".

    The constants of the method:
    - 2.66 = 3 / d2 (d2 = 1.128 for moving ranges of 2): process limits = mean +- 2.66 x AMR;
    - near-limit lines at 2/3 of that distance (the "2 sigma" lines);
    - 3.267 = D4 for n = 2: a moving range at or above 3.267 x AMR is screened out;
    - 12 points: fewer make a run chart (no limits, no flags);
    - 7 points: a shift (same side of the mean) or a trend (each strictly higher or lower).
-#}

{% macro spc_constants() %}
    {{ return({
        'limit_multiplier': 2.66,
        'screening_multiplier': 3.267,
        'minimum_points_for_limits': 12,
        'run_points': 7,
    }) }}
{% endmacro %}

{#- The columns that identify one series (one chart). -#}
{% macro spc_series_columns() %}
    {{ return(['geography_level', 'geography_code', 'kpi_number']) }}
{% endmacro %}

{#- `<prefix>.column, ...` (or bare names) for the series columns. -#}
{% macro spc_series_list(prefix=none) -%}
    {%- for column in spc_series_columns() -%}
        {{ prefix ~ '.' if prefix }}{{ column }}{{ ', ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- `a.column = b.column and ...` over the series columns. -#}
{% macro spc_series_join(left, right) -%}
    {%- for column in spc_series_columns() -%}
        {{ left }}.{{ column }} = {{ right }}.{{ column }}{{ ' and ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- 1 when a boolean is true, else 0 (for sums and maxima of flags over window frames). -#}
{% macro spc_flag_as_integer(flag) -%}
    case when {{ flag }} then 1 else 0 end
{%- endmacro %}

{#-
    The CTEs of an XmR chart, named spc_*, ending in `spc_charted`: one row per row of `months`
    (series columns, month_start, value_pct; value_pct null = not a point of the chart) with its
    group, centre line, limits, near-limit lines, rule flags, point type and special-cause flag.
    `rebase_months` (geography_code, kpi_number, rebase_month) and `fixed_baselines`
    (geography_code, kpi_number, baseline_points) are the two seeds' relations.
    Emitted as CTEs (not a subquery) so the calling model keeps one flat `with` chain.
-#}
{% macro spc_xmr_ctes(months, rebase_months, fixed_baselines) %}
    {%- set c = spc_constants() %}
    {%- set series = spc_series_list() %}
    {#- Worked out here as a double: Spark would compute 2.0 / 3.0 as a 6-place decimal. #}
    {%- set near_multiplier = 2.0 / 3.0 * c.limit_multiplier %}

spc_months_rebased as (
    -- A rebase month starts a new group from that month on: count the rebase months up to it.
    select
        {{ spc_series_list('months') }},
        months.month_start,
        months.value_pct,
        count(distinct rebase_months.rebase_month) as rebases_so_far
    from {{ months }} as months
    left join {{ rebase_months }} as rebase_months
        on
            months.geography_code = rebase_months.geography_code
            and months.kpi_number = rebase_months.kpi_number
            and rebase_months.rebase_month <= months.month_start
    group by {{ spc_series_list('months') }}, months.month_start, months.value_pct
),

spc_months_grouped as (
    -- Groups numbered 1, 2, ... within the series (a rebase before the series starts, or two rebase
    -- months with no month between them, does not leave a gap in the numbering).
    select
        {{ series }},
        month_start,
        value_pct,
        dense_rank() over (partition by {{ series }} order by rebases_so_far) as spc_group
    from spc_months_rebased
),

spc_points as (
    -- The chart's points: months with a value (denominator > 0), in time order within the group.
    -- The moving range is taken between consecutive points, skipping months with no value.
    select
        {{ spc_series_list('grouped') }},
        grouped.month_start,
        grouped.value_pct,
        grouped.spc_group,
        fixed_baselines.baseline_points,
        row_number() over (
            partition by {{ spc_series_list('grouped') }}, grouped.spc_group order by grouped.month_start
        ) as point_number,
        count(*) over (partition by {{ spc_series_list('grouped') }}, grouped.spc_group) as group_points,
        lag(grouped.value_pct) over (
            partition by {{ spc_series_list('grouped') }}, grouped.spc_group order by grouped.month_start
        ) as previous_value_pct
    from spc_months_grouped as grouped
    left join {{ fixed_baselines }} as fixed_baselines
        on
            grouped.geography_code = fixed_baselines.geography_code
            and grouped.kpi_number = fixed_baselines.kpi_number
    where grouped.value_pct is not null
),

spc_points_in_baseline as (
    -- The baseline is the first N points of the group (a fixed baseline), else all its points. A
    -- moving range belongs to the baseline when both its points do (point 2 to N).
    select
        *,
        abs(value_pct - previous_value_pct) as moving_range,
        point_number <= coalesce(baseline_points, group_points) as is_baseline_point,
        point_number > 1 and point_number <= coalesce(baseline_points, group_points) as is_baseline_moving_range
    from spc_points
),

spc_group_averages as (
    select
        {{ series }},
        spc_group,
        max(group_points) as group_points,
        avg(case when is_baseline_point then value_pct end) as centre_pct,
        avg(case when is_baseline_moving_range then moving_range end) as unscreened_average_moving_range
    from spc_points_in_baseline
    group by {{ series }}, spc_group
),

spc_group_screened as (
    -- Screening: every moving range at or above 3.267 x AMR is dropped and AMR is recomputed from
    -- the rest (none left, as when every baseline value is equal: no AMR, so no limits).
    select
        {{ spc_series_list('points') }},
        points.spc_group,
        avg(
            case
                when
                    points.is_baseline_moving_range
                    and points.moving_range < {{ c.screening_multiplier }} * averages.unscreened_average_moving_range
                    then points.moving_range
            end
        ) as average_moving_range
    from spc_points_in_baseline as points
    inner join spc_group_averages as averages
        on {{ spc_series_join('points', 'averages') }} and points.spc_group = averages.spc_group
    group by {{ spc_series_list('points') }}, points.spc_group
),

spc_group_limits as (
    -- A group with fewer than 12 points is a run chart: a centre line, no limits.
    select
        {{ spc_series_list('averages') }},
        averages.spc_group,
        averages.group_points,
        averages.centre_pct,
        averages.unscreened_average_moving_range,
        screened.average_moving_range,
        averages.group_points >= {{ c.minimum_points_for_limits }}
        and screened.average_moving_range is not null as has_limits
    from spc_group_averages as averages
    inner join spc_group_screened as screened
        on {{ spc_series_join('averages', 'screened') }} and averages.spc_group = screened.spc_group
),

spc_group_lines as (
    select
        {{ series }},
        spc_group,
        group_points,
        has_limits,
        centre_pct,
        unscreened_average_moving_range,
        average_moving_range,
        case when has_limits then centre_pct - {{ c.limit_multiplier }} * average_moving_range end
            as lower_limit_pct,
        case when has_limits then centre_pct + {{ c.limit_multiplier }} * average_moving_range end
            as upper_limit_pct,
        case when has_limits then centre_pct - {{ near_multiplier }} * average_moving_range end
            as lower_near_limit_pct,
        case when has_limits then centre_pct + {{ near_multiplier }} * average_moving_range end
            as upper_near_limit_pct
    from spc_group_limits
),

spc_points_placed as (
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
    from spc_points_in_baseline as points
    inner join spc_group_lines as lines
        on {{ spc_series_join('points', 'lines') }} and points.spc_group = lines.spc_group
),

spc_points_in_runs as (
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
        sum({{ spc_flag_as_integer('is_near_limit') }}) over (
            partition by {{ series }}, spc_group order by point_number
            rows between current row and 2 following
        ) as near_limit_points_in_window_of_three,
        sum(side_of_centre) over (
            partition by {{ series }}, spc_group order by point_number
            rows between current row and 2 following
        ) as side_sum_in_window_of_three
    from spc_points_placed
),

spc_run_lengths as (
    select
        *,
        count(*) over (partition by {{ series }}, spc_group, side_of_centre, side_run) as side_run_points,
        count(*) over (partition by {{ series }}, spc_group, step_direction, step_run) as step_run_steps,
        -- Rule 4's window of 3 consecutive points starting here: at least 2 near-limit points, all 3
        -- on the same side of the mean.
        points_in_window_of_three = 3
        and near_limit_points_in_window_of_three >= 2
        and abs(side_sum_in_window_of_three) = 3 as starts_two_of_three
    from spc_points_in_runs
),

spc_rules as (
    select
        *,
        -- Rule 2: part of 7 or more consecutive points on the same side (a point on the mean breaks it).
        side_of_centre != 0 and side_run_points >= {{ c.run_points }} as is_in_shift,
        -- Rule 3: 6 or more consecutive steps in one direction = 7 or more points; a point belongs to
        -- the run when the step into it, or the step out of it, does (a tie breaks it).
        step_direction != 0 and step_run_steps >= {{ c.run_points - 1 }} as ends_trend_step
    from spc_run_lengths
),

spc_rules_flagged as (
    select
        *,
        is_outside_limits as is_rule_1_outside_limits,
        is_in_shift as is_rule_2_shift,
        ends_trend_step or coalesce(lead({{ spc_flag_as_integer('ends_trend_step') }}) over (
            partition by {{ series }}, spc_group order by point_number
        ) = 1, false) as is_rule_3_trend,
        is_near_limit and max({{ spc_flag_as_integer('starts_two_of_three') }}) over (
            partition by {{ series }}, spc_group order by point_number
            rows between 2 preceding and current row
        ) = 1 as is_rule_4_two_of_three
    from spc_rules
),

spc_points_typed as (
    -- A run chart has no flags. Higher is better for every KPI: special cause above the mean is an
    -- improvement, on or below it a concern.
    select
        *,
        has_limits and (is_rule_1_outside_limits or is_rule_2_shift or is_rule_3_trend or is_rule_4_two_of_three)
            as is_special_cause_point
    from spc_rules_flagged
),

spc_charted as (
    -- Every month of the series, points or not; a month with no value carries its group's lines but
    -- no point type.
    select
        {{ spc_series_list('grouped') }},
        grouped.month_start,
        grouped.spc_group,
        lines.group_points,
        lines.centre_pct,
        lines.unscreened_average_moving_range,
        lines.average_moving_range,
        lines.lower_limit_pct,
        lines.upper_limit_pct,
        lines.lower_near_limit_pct,
        lines.upper_near_limit_pct,
        typed.point_number,
        coalesce(typed.is_rule_1_outside_limits and typed.has_limits, false) as is_rule_1_outside_limits,
        coalesce(typed.is_rule_2_shift and typed.has_limits, false) as is_rule_2_shift,
        coalesce(typed.is_rule_3_trend and typed.has_limits, false) as is_rule_3_trend,
        coalesce(typed.is_rule_4_two_of_three and typed.has_limits, false) as is_rule_4_two_of_three,
        case
            when typed.has_limits and typed.is_special_cause_point and typed.side_of_centre = 1
                then 'special_cause_improvement'
            when typed.has_limits and typed.is_special_cause_point then 'special_cause_concern'
            when typed.has_limits then 'common_cause'
        end as point_type,
        coalesce(typed.is_special_cause_point, false) as is_special_cause
    from spc_months_grouped as grouped
    left join spc_group_lines as lines
        on {{ spc_series_join('grouped', 'lines') }} and grouped.spc_group = lines.spc_group
    left join spc_points_typed as typed
        on {{ spc_series_join('grouped', 'typed') }} and grouped.month_start = typed.month_start
)
{%- endmacro %}

{#-
    Assurance of a series against the KPI's target (docs/specification/monitoring.md): target above the upper
    limit of the latest group -> consistent_fail (higher is better); below the lower limit ->
    consistent_pass; otherwise inconsistent. No target: none. No limits (a run chart, or a series
    with no points): null, since there is no process capability to judge.
-#}
{% macro spc_assurance(target, lower_limit, upper_limit) -%}
    case
        when {{ target }} is null then 'none'
        when {{ upper_limit }} is null or {{ lower_limit }} is null then null
        when {{ target }} > {{ upper_limit }} then 'consistent_fail'
        when {{ target }} < {{ lower_limit }} then 'consistent_pass'
        else 'inconsistent'
    end
{%- endmacro %}
