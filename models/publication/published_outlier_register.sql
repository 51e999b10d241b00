-- One row per extract date x audit year x FLS x KPI in marts.outlier_register whose result is
-- published: the outlier register (docs/specification/monitoring.md section 4) as it may leave the building.
-- Why: the site lists the register by KPI, with each outlier's status in the HQIP process, and
-- each FLS page shows its own entries (issue 15). The alert and alarm flags are already public
-- on the funnel plots (published_kpi_results), so every status is named, `detected` included;
-- who decided and the decision's note stay internal. A result suppressed in publication (primary
-- or complementary) has no row here: published_kpi_results hides its value and its outlier flag,
-- and a register row would give away that it lies outside the limits, and on which side.

with

outlier_register as (
    select * from {{ ref('outlier_register') }}
),

published_results as (
    select * from {{ ref('published_kpi_results') }}
),

published_fls_results as (
    select
        audit_year,
        geography_code as fls_code,
        kpi_number
    from published_results
    where
        geography_level = 'fls'
        and breakdown = 'all'
        and not is_suppressed
),

final as (
    select
        outlier_register.extract_date,
        outlier_register.audit_year,
        outlier_register.fls_code,
        outlier_register.fls_name,
        outlier_register.kpi_number,
        outlier_register.kpi_name,
        outlier_register.outlier_level,
        outlier_register.outlier_direction,
        outlier_register.numerator,
        outlier_register.denominator,
        outlier_register.value_pct,
        outlier_register.national_value_pct,
        outlier_register.funnel_lower_95_pct,
        outlier_register.funnel_upper_95_pct,
        outlier_register.funnel_lower_998_pct,
        outlier_register.funnel_upper_998_pct,
        outlier_register.overdispersion_phi,
        outlier_register.overdispersion_tau2,
        outlier_register.status,
        outlier_register.status_decided_on,
        outlier_register.is_synthetic_data
    from outlier_register
    inner join published_fls_results
        on
            outlier_register.audit_year = published_fls_results.audit_year
            and outlier_register.fls_code = published_fls_results.fls_code
            and outlier_register.kpi_number = published_fls_results.kpi_number
    where not outlier_register.is_suppressed
)

select * from final
