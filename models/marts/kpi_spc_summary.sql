-- One row per monthly series (geography level x geography x KPI 2-11): its latest month, number of
-- chart points, variation (point type of the latest point) and assurance against the KPI's target.
-- Why: the summary table at the top of each report page, one icon pair per KPI (docs/specification/monitoring.md
-- section 2, "Series summary").

with

months_measured as (
    select * from {{ ref('int_kpi_months_measured') }}
),

months_charted as (
    select * from {{ ref('int_kpi_months_charted') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

series_months as (
    select
        months_measured.geography_level,
        months_measured.geography_code,
        months_measured.kpi_number,
        months_measured.month_start,
        months_measured.value_pct,
        months_charted.centre_pct,
        months_charted.lower_limit_pct,
        months_charted.upper_limit_pct,
        months_charted.point_type,
        row_number() over (
            partition by
                months_measured.geography_level,
                months_measured.geography_code,
                months_measured.kpi_number,
                months_measured.value_pct is not null
            order by months_measured.month_start desc
        ) as recency_among_points
    from months_measured
    inner join months_charted
        on
            months_measured.geography_level = months_charted.geography_level
            and months_measured.geography_code = months_charted.geography_code
            and months_measured.kpi_number = months_charted.kpi_number
            and months_measured.month_start = months_charted.month_start
),

series as (
    select
        geography_level,
        geography_code,
        kpi_number,
        max(month_start) as latest_month_start,
        count(value_pct) as points
    from series_months
    group by geography_level, geography_code, kpi_number
),

latest_points as (
    -- The latest point (month with a value) and the lines of its group, the latest group.
    select *
    from series_months
    where value_pct is not null and recency_among_points = 1
),

final as (
    select
        series.geography_level,
        series.geography_code,
        cast(series.kpi_number as integer) as kpi_number,
        series.latest_month_start,
        cast(series.points as integer) as points,
        latest_points.point_type as variation,
        {{ spc_assurance(
            'kpi_definitions.target_pct', 'latest_points.lower_limit_pct', 'latest_points.upper_limit_pct'
        ) }} as assurance,
        latest_points.month_start as latest_point_month_start,
        latest_points.value_pct as latest_value_pct,
        latest_points.centre_pct as latest_centre_pct,
        latest_points.lower_limit_pct as latest_lower_limit_pct,
        latest_points.upper_limit_pct as latest_upper_limit_pct,
        kpi_definitions.target_pct,
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from series
    inner join kpi_definitions
        on series.kpi_number = kpi_definitions.kpi_number
    left join latest_points
        on
            series.geography_level = latest_points.geography_level
            and series.geography_code = latest_points.geography_code
            and series.kpi_number = latest_points.kpi_number
)

select * from final
