-- Grain: one row per SPC group of published_kpi_monthly whose lines break the rule of
-- docs/specification/kpi-definitions.md, "SPC lines" (none when it holds).
-- The centre and limits of a group are the mean and the average moving range of its baseline
-- points, so, as published: no group whose baseline points are all withheld, or fewer than half
-- published, or 1 or 2 withheld (which the mean and the moving ranges solve for) shows any line;
-- a group whose lines are blank while the chart has them says why; and a line that is published
-- is the chart's own (nothing else changes). Read from the published table, the chart's baseline
-- and the true lines of kpi_monthly, not from the published model's own counts.

with

published as (
    select * from {{ ref('published_kpi_monthly') }}
),

true_months as (
    select * from {{ ref('kpi_monthly') }}
),

chart_points as (
    select * from {{ ref('int_spc_months_grouped') }}
    where point_number is not null
),

months as (
    select
        {{ spc_series_list('published') }},
        published.spc_group,
        published.is_suppressed,
        published.spc_lines_withheld_reason,
        coalesce(chart_points.is_baseline_point, false) as is_baseline_point,
        published.centre_pct is not null
        or published.lower_limit_pct is not null
        or published.upper_limit_pct is not null
        or published.lower_near_limit_pct is not null
        or published.upper_near_limit_pct is not null as shows_a_line,
        true_months.centre_pct is not null and published.centre_pct is null as loses_its_centre,
        coalesce(published.centre_pct <> true_months.centre_pct, false)
        or coalesce(published.lower_limit_pct <> true_months.lower_limit_pct, false)
        or coalesce(published.upper_limit_pct <> true_months.upper_limit_pct, false) as changes_a_line
    from published
    inner join true_months
        on
            {{ spc_series_join('published', 'true_months') }}
            and published.month_start = true_months.month_start
    left join chart_points
        on
            {{ spc_series_join('published', 'chart_points') }}
            and published.month_start = chart_points.month_start
),

group_counts as (
    select
        {{ spc_series_list() }},
        spc_group,
        sum(case when is_baseline_point then 1 else 0 end) as baseline_points,
        sum(case when is_baseline_point and is_suppressed then 1 else 0 end) as baseline_points_withheld,
        max(case when shows_a_line then 1 else 0 end) = 1 as shows_a_line,
        max(case when loses_its_centre and spc_lines_withheld_reason is null then 1 else 0 end) = 1
            as loses_its_centre_unexplained,
        max(case when changes_a_line then 1 else 0 end) = 1 as changes_a_line
    from months
    group by {{ spc_series_list() }}, spc_group
),

final as (
    select
        *,
        case
            when shows_a_line and baseline_points_withheld > 0 and baseline_points_withheld = baseline_points
                then 'lines of a group whose points are all withheld'
            when shows_a_line and baseline_points_withheld between 1 and 2
                then 'lines that give 1 or 2 withheld points away'
            when
                shows_a_line and baseline_points_withheld > 0
                and baseline_points - baseline_points_withheld
                < {{ var('spc_lines_min_published_share') }} * baseline_points
                then 'lines of a group with fewer than half its points published'
            when loses_its_centre_unexplained then 'lines withheld without a reason'
            when changes_a_line then 'a published line differs from the chart'
        end as problem
    from group_counts
)

select * from final
where problem is not null
