-- One row per SPC group of a monthly series (int_spc_months_grouped) that has points: its centre
-- line, average moving range before and after screening, process limits and near-limit lines.
-- Why: step 2 of the XmR chart (docs/specification/monitoring.md section 2, "Limits", "Too few points"). The
-- limits here are as computed: the rules (int_spc_points_ruled) use them so; the stored and drawn
-- limits are clipped to the range of the value in int_kpi_months_charted.

{%- set c = spc_constants() %}
{%- set series = spc_series_list() %}
{#- Worked out here as a double: Spark would compute 2.0 / 3.0 as a 6-place decimal. #}
{%- set near_multiplier = 2.0 / 3.0 * c.limit_multiplier %}

with

points as (
    select * from {{ ref('int_spc_months_grouped') }}
    where point_number is not null
),

group_averages as (
    select
        {{ series }},
        spc_group,
        max(group_points) as group_points,
        avg(case when is_baseline_point then value_pct end) as centre_pct,
        avg(case when is_baseline_moving_range then moving_range end) as unscreened_average_moving_range
    from points
    group by {{ series }}, spc_group
),

group_screened as (
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
    from points
    inner join group_averages as averages
        on {{ spc_series_join('points', 'averages', ['spc_group']) }}
    group by {{ spc_series_list('points') }}, points.spc_group
),

group_limits as (
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
    from group_averages as averages
    inner join group_screened as screened
        on {{ spc_series_join('averages', 'screened', ['spc_group']) }}
),

final as (
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
    from group_limits
)

select * from final
