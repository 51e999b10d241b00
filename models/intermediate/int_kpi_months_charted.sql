-- One row per monthly series month (as int_kpi_months_measured) with its XmR chart: SPC group,
-- centre line, process and near-limit lines, the four special-cause rules, point type.
-- Why: the SPC rules (macros/spc_xmr.sql, docs/specification/monitoring.md section 2) run here, on a small model
-- that unit tests feed with hand-made points; the kpi_monthly and kpi_spc_summary marts read it.

with

months as (
    select
        geography_level,
        geography_code,
        kpi_number,
        month_start,
        value_pct
    from {{ ref('int_kpi_months_measured') }}
),

rebase_months as (
    select
        geography_code,
        kpi_number,
        rebase_month
    from {{ ref('spc_rebase_months') }}
),

fixed_baselines as (
    select
        geography_code,
        kpi_number,
        baseline_points
    from {{ ref('spc_fixed_baselines') }}
),

{{ spc_xmr_ctes('months', 'rebase_months', 'fixed_baselines') }},

final as (
    select * from spc_charted
)

select * from final
