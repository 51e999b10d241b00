-- One row per monthly series month (as int_kpi_months_measured) with its XmR chart: SPC group,
-- centre line, process and near-limit lines, the four special-cause rules and the point type.
-- Why: step 4 of the XmR chart (docs/specification/monitoring.md section 2, "Limits", "Point type"): the steps
-- int_spc_months_grouped -> int_spc_groups_limited -> int_spc_points_ruled meet here, on every
-- month of the series, for the kpi_monthly and kpi_spc_summary marts.

with

months as (
    select * from {{ ref('int_spc_months_grouped') }}
),

group_lines as (
    select * from {{ ref('int_spc_groups_limited') }}
),

points_ruled as (
    select * from {{ ref('int_spc_points_ruled') }}
),

final as (
    -- Every month of the series, points or not; a month with no value carries its group's lines but
    -- no point type. Higher is better for every KPI: special cause above the mean is an
    -- improvement, on or below it a concern. The lines are stored clipped to the range the value
    -- can take; the rules (int_spc_points_ruled) used them unclipped.
    select
        {{ spc_series_list('months') }},
        months.month_start,
        months.spc_group,
        lines.group_points,
        lines.centre_pct,
        lines.unscreened_average_moving_range,
        lines.average_moving_range,
        {%- for line in ['lower_limit_pct', 'upper_limit_pct', 'lower_near_limit_pct', 'upper_near_limit_pct'] %}
            {{ spc_line_clipped('lines.' ~ line, 'months.value_type') }} as {{ line }},
        {%- endfor %}
        months.point_number,
        coalesce(points.is_rule_1_outside_limits, false) as is_rule_1_outside_limits,
        coalesce(points.is_rule_2_shift, false) as is_rule_2_shift,
        coalesce(points.is_rule_3_trend, false) as is_rule_3_trend,
        coalesce(points.is_rule_4_two_of_three, false) as is_rule_4_two_of_three,
        case
            when lines.has_limits and points.is_special_cause and points.side_of_centre = 1
                then 'special_cause_improvement'
            when lines.has_limits and points.is_special_cause then 'special_cause_concern'
            when lines.has_limits and points.point_number is not null then 'common_cause'
        end as point_type,
        coalesce(points.is_special_cause, false) as is_special_cause
    from months
    left join group_lines as lines
        on {{ spc_series_join('months', 'lines', ['spc_group']) }}
    left join points_ruled as points
        on
            {{ spc_series_join('months', 'points') }}
            and months.month_start = points.month_start
)

select * from final
