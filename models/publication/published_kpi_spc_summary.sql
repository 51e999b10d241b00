-- One row per monthly series (geography x KPI): marts.kpi_spc_summary as it may leave the
-- building: the variation and assurance of each SPC chart, for the report site's tables.
-- Why: the summary repeats the latest point and the latest group's lines, so it must hide what
-- published_kpi_monthly hides: the latest value and its variation when that month is suppressed,
-- the lines and the assurance (judged on them) when that group's lines are withheld. Each withheld
-- cell says why, as published_kpi_monthly does: `latest_point_suppression_reason` (`small numbers`
-- or `complementary`) for the latest value and variation, `spc_lines_withheld_reason`
-- (`complementary` or `most months withheld`) for the lines and the assurance. A blank that is not
-- withheld (a run chart has no limits, so no variation or assurance) has no reason.

with

kpi_spc_summary as (
    select * from {{ ref('kpi_spc_summary') }}
),

published_months as (
    select * from {{ ref('published_kpi_monthly') }}
),

geographies as (
    select * from {{ ref('dim_geography') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

latest_points as (
    select
        geography_level,
        geography_code,
        kpi_number,
        month_start,
        is_suppressed,
        suppression_reason,
        spc_lines_withheld,
        spc_lines_withheld_reason
    from published_months
),

final as (
    select
        kpi_spc_summary.geography_level,
        kpi_spc_summary.geography_code,
        geographies.geography_name,
        kpi_spc_summary.kpi_number,
        kpi_definitions.kpi_name,
        kpi_spc_summary.latest_month_start,
        kpi_spc_summary.points,
        case when not coalesce(latest_points.is_suppressed, false) then kpi_spc_summary.variation end
            as variation,
        case when not coalesce(latest_points.spc_lines_withheld, false) then kpi_spc_summary.assurance end
            as assurance,
        kpi_spc_summary.latest_point_month_start,
        case when not coalesce(latest_points.is_suppressed, false) then kpi_spc_summary.latest_value_pct end
            as latest_value_pct,
        {%- for column in ['latest_centre_pct', 'latest_lower_limit_pct', 'latest_upper_limit_pct'] %}
            case when not coalesce(latest_points.spc_lines_withheld, false) then kpi_spc_summary.{{ column }} end
                as {{ column }},
        {%- endfor %}
        kpi_spc_summary.target_pct,
        coalesce(latest_points.is_suppressed, false) as is_latest_point_suppressed,
        latest_points.suppression_reason as latest_point_suppression_reason,
        coalesce(latest_points.spc_lines_withheld, false) as spc_lines_withheld,
        latest_points.spc_lines_withheld_reason,
        kpi_spc_summary.is_synthetic_data
    from kpi_spc_summary
    left join latest_points
        on
            kpi_spc_summary.geography_level = latest_points.geography_level
            and kpi_spc_summary.geography_code = latest_points.geography_code
            and kpi_spc_summary.kpi_number = latest_points.kpi_number
            and kpi_spc_summary.latest_point_month_start = latest_points.month_start
    left join geographies
        on
            kpi_spc_summary.geography_level = geographies.geography_level
            and kpi_spc_summary.geography_code = geographies.geography_code
    inner join kpi_definitions
        on kpi_spc_summary.kpi_number = kpi_definitions.kpi_number
)

select * from final
