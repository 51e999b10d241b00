-- One row per monthly series month: geography level x geography x KPI 2-11 (breakdown all) x
-- complete calendar month of the fracture date, with its XmR chart (docs/specification/monitoring.md sections 1-2).
-- Why: services watch their KPIs month by month, and the SPC rules tell a real change from noise.

with

months_measured as (
    select * from {{ ref('int_kpi_months_measured') }}
),

months_charted as (
    select * from {{ ref('int_kpi_months_charted') }}
),

final as (
    select
        months_measured.geography_level,
        months_measured.geography_code,
        cast(months_measured.kpi_number as integer) as kpi_number,
        months_measured.month_start,
        months_measured.numerator,
        months_measured.denominator,
        months_measured.value_pct,
        cast(months_charted.spc_group as integer) as spc_group,
        months_charted.centre_pct,
        months_charted.lower_limit_pct,
        months_charted.upper_limit_pct,
        months_charted.point_type,
        months_charted.is_special_cause,
        months_charted.lower_near_limit_pct,
        months_charted.upper_near_limit_pct,
        months_charted.is_rule_1_outside_limits,
        months_charted.is_rule_2_shift,
        months_charted.is_rule_3_trend,
        months_charted.is_rule_4_two_of_three,
        -- The same small-number rule as kpi_results (macros/kpi_statistics.sql): a monthly count is as
        -- identifying as a yearly one.
        {{ is_suppressed('months_measured.numerator', 'months_measured.denominator', 'months_measured.value_type') }}
            as is_suppressed,
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from months_measured
    inner join months_charted
        on
            months_measured.geography_level = months_charted.geography_level
            and months_measured.geography_code = months_charted.geography_code
            and months_measured.kpi_number = months_charted.kpi_number
            and months_measured.month_start = months_charted.month_start
)

select * from final
