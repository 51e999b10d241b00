-- One row per audit year x KPI x breakdown value with FLS results, for the KPIs with funnel plots
-- (value type proportion or ratio_to_expected in the KPI seed): the number k of FLS results with a
-- denominator, the winsorising percentiles of their z-scores, and the overdispersion phi and the
-- additive random-effects variance tau2 (docs/specification/monitoring.md section 3).
-- Why: with thousands of patients per service the unadjusted funnel limits are so narrow that most
-- services are alarms; kpi_results widens them by tau2. The formulas are the macros of
-- macros/funnel_overdispersion.sql. Breakdowns other than `all` are estimated the same way, each
-- breakdown value on its own FLS results (DEVELOPERS.md, "Spec readings").

with

identification_results as (
    select * from {{ ref('int_kpi_identification_aggregated') }}
),

episode_results as (
    select * from {{ ref('int_kpi_episode_results_aggregated') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

unioned as (
    -- Named columns: the identification results carry a denominator note the others do not.
    select
        audit_year,
        geography_level,
        kpi_number,
        breakdown,
        breakdown_value,
        numerator,
        denominator
    from identification_results
    union all
    select
        audit_year,
        geography_level,
        kpi_number,
        breakdown,
        breakdown_value,
        numerator,
        denominator
    from episode_results
),

funnel_results as (
    -- KPI 1 (completeness) has no funnel; the choice is the seed's value_type.
    select
        results.audit_year,
        results.geography_level,
        results.kpi_number,
        results.breakdown,
        results.breakdown_value,
        results.numerator,
        results.denominator,
        kpi_definitions.value_type
    from unioned as results
    inner join kpi_definitions
        on results.kpi_number = kpi_definitions.kpi_number
    where
        kpi_definitions.value_type in ('proportion', 'ratio_to_expected')
        and results.geography_level in ('national', 'fls')
),

national_values as (
    -- p0 (proportions) or r0 (observed/expected), on the 0-1 scale.
    select
        audit_year,
        kpi_number,
        breakdown,
        breakdown_value,
        numerator / denominator as national_value
    from funnel_results
    where geography_level = 'national' and denominator > 0
),

standardised as (
    select
        funnel_results.audit_year,
        funnel_results.kpi_number,
        funnel_results.breakdown,
        funnel_results.breakdown_value,
        funnel_results.value_type,
        national_values.national_value,
        {{ funnel_z_score('funnel_results.value_type', 'funnel_results.numerator',
                          'funnel_results.denominator', 'national_values.national_value') }} as z_score,
        1.0 / nullif(power({{ funnel_standard_error('funnel_results.value_type', 'national_values.national_value',
                                                    'funnel_results.denominator') }}, 2), 0) as precision_weight
    from funnel_results
    inner join national_values
        on
            funnel_results.audit_year = national_values.audit_year
            and funnel_results.kpi_number = national_values.kpi_number
            and funnel_results.breakdown = national_values.breakdown
            and funnel_results.breakdown_value = national_values.breakdown_value
    where funnel_results.geography_level = 'fls' and funnel_results.denominator > 0
),

percentiles as (
    select
        audit_year,
        kpi_number,
        breakdown,
        breakdown_value,
        value_type,
        national_value,
        count(*) as fls_results,
        {{ continuous_percentile('z_score', funnel_winsorising_percentile()) }} as z_score_lower_percentile,
        {{ continuous_percentile('z_score', 1 - funnel_winsorising_percentile()) }} as z_score_upper_percentile,
        sum(precision_weight) as sum_weights,
        sum(precision_weight * precision_weight) as sum_squared_weights
    from standardised
    group by audit_year, kpi_number, breakdown, breakdown_value, value_type, national_value
),

phi_estimated as (
    select
        percentiles.audit_year,
        percentiles.kpi_number,
        percentiles.breakdown,
        percentiles.breakdown_value,
        percentiles.value_type,
        percentiles.national_value,
        percentiles.fls_results,
        percentiles.z_score_lower_percentile,
        percentiles.z_score_upper_percentile,
        percentiles.sum_weights,
        percentiles.sum_squared_weights,
        {{ overdispersion_phi('standardised.z_score', 'percentiles.z_score_lower_percentile',
                              'percentiles.z_score_upper_percentile') }} as overdispersion_phi
    from percentiles
    inner join standardised
        on
            percentiles.audit_year = standardised.audit_year
            and percentiles.kpi_number = standardised.kpi_number
            and percentiles.breakdown = standardised.breakdown
            and percentiles.breakdown_value = standardised.breakdown_value
    group by
        percentiles.audit_year,
        percentiles.kpi_number,
        percentiles.breakdown,
        percentiles.breakdown_value,
        percentiles.value_type,
        percentiles.national_value,
        percentiles.fls_results,
        percentiles.z_score_lower_percentile,
        percentiles.z_score_upper_percentile,
        percentiles.sum_weights,
        percentiles.sum_squared_weights
),

final as (
    select
        cast(audit_year as {{ dbt.type_int() }}) as audit_year,
        cast(kpi_number as {{ dbt.type_int() }}) as kpi_number,
        breakdown,
        breakdown_value,
        value_type,
        cast(national_value as double) as national_value,
        cast(fls_results as {{ dbt.type_int() }}) as fls_results,
        cast(z_score_lower_percentile as double) as z_score_lower_percentile,
        cast(z_score_upper_percentile as double) as z_score_upper_percentile,
        cast(overdispersion_phi as double) as overdispersion_phi,
        cast(
            {{ overdispersion_tau2('fls_results', 'overdispersion_phi', 'sum_weights', 'sum_squared_weights') }}
            as double
        ) as overdispersion_tau2
    from phi_estimated
)

select * from final
