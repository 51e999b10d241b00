-- One row per extract date x audit year x FLS x KPI whose result (breakdown all) is an alert or
-- alarm on the overdispersion-adjusted funnel limits, with where it stands in the HQIP outlier
-- process (docs/specification/monitoring.md section 4).
-- Why: a flag on a chart is not a process. The status comes from the reviewed decisions seed and is
-- joined on (audit year, FLS, KPI) only, never on the extract date, so a decision stays attached
-- to its outlier in every later extract; an outlier nobody has decided on yet is `detected`.

with

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

outlier_decisions as (
    -- FLS codes as typed by a person: `syn012 ` means SYN012 (a decision that matches no result is
    -- named by quality.dq_seed_rows and refuses publication).
    select
        audit_year,
        {{ normalise_code('fls_code') }} as fls_code,
        kpi_number,
        status,
        decided_on,
        decided_by,
        note
    from {{ ref('outlier_decisions') }}
),

outliers as (
    -- The 99.8% limits lie outside the 95% ones, so every alarm is also an alert.
    select *
    from kpi_results
    where
        geography_level = 'fls'
        and breakdown = 'all'
        and is_outlier_alert
),

final as (
    select
        {{ extract_date() }} as extract_date,
        outliers.audit_year,
        outliers.geography_code as fls_code,
        outliers.geography_name as fls_name,
        outliers.kpi_number,
        outliers.kpi_name,
        case when outliers.is_outlier_alarm then 'alarm' else 'alert' end as outlier_level,
        outliers.outlier_direction,
        outliers.numerator,
        outliers.denominator,
        outliers.value_pct,
        outliers.national_value_pct,
        outliers.funnel_lower_95_pct,
        outliers.funnel_upper_95_pct,
        outliers.funnel_lower_998_pct,
        outliers.funnel_upper_998_pct,
        outliers.overdispersion_phi,
        outliers.overdispersion_tau2,
        outliers.is_suppressed,
        coalesce(outlier_decisions.status, 'detected') as status,
        outlier_decisions.decided_on as status_decided_on,
        outlier_decisions.decided_by as status_decided_by,
        outlier_decisions.note as status_note,
        outliers.is_synthetic_data
    from outliers
    left join outlier_decisions
        on
            outliers.audit_year = outlier_decisions.audit_year
            and outliers.geography_code = outlier_decisions.fls_code
            and outliers.kpi_number = outlier_decisions.kpi_number
)

select * from final
