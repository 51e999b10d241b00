-- One row per audit year x geography x KPI x breakdown value: every published KPI number, with
-- its confidence interval, rating, funnel-plot outlier flags and small-number suppression flag.
-- This is the results table of docs/specification/kpi-definitions.md, the contract BI tools rely on.

{%- set z_95 = funnel_z_scores()['95'] %}

with

completeness_results as (
    select * from {{ ref('int_kpi_completeness_aggregated') }}
),

identification_results as (
    select * from {{ ref('int_kpi_identification_aggregated') }}
),

episode_results as (
    select * from {{ ref('int_kpi_episode_results_aggregated') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

geographies as (
    select * from {{ ref('dim_geography') }}
),

poisson_exact_limits as (
    select * from {{ ref('poisson_exact_limits') }}
),

funnel_overdispersion as (
    select * from {{ ref('int_kpi_funnel_overdispersion_estimated') }}
),

unioned as (
    -- Only KPI 2/3 results carry a denominator note (int_kpi_identification_aggregated).
    select
        *,
        cast(null as {{ dbt.type_string() }}) as denominator_note
    from completeness_results
    union all
    select * from identification_results
    union all
    select
        *,
        cast(null as {{ dbt.type_string() }}) as denominator_note
    from episode_results
),

with_values as (
    select
        *,
        case when denominator > 0 then 100.0 * numerator / denominator end as value_pct
    from unioned
),

national_values as (
    select
        audit_year,
        kpi_number,
        breakdown,
        breakdown_value,
        value_pct as national_value_pct
    from with_values
    where geography_level = 'national'
),

compared as (
    select
        with_values.*,
        national_values.national_value_pct,
        kpi_definitions.kpi_name,
        kpi_definitions.value_type,
        kpi_definitions.rating_rule,
        kpi_definitions.green_threshold_pct,
        kpi_definitions.amber_threshold_pct,
        kpi_definitions.target_pct,
        kpi_definitions.max_key_fields_below_threshold,
        geographies.geography_name,
        poisson_exact_limits.lower_95 as exact_poisson_lower_count,
        poisson_exact_limits.upper_95 as exact_poisson_upper_count
    from with_values
    inner join kpi_definitions
        on with_values.kpi_number = kpi_definitions.kpi_number
    left join national_values
        on
            with_values.audit_year = national_values.audit_year
            and with_values.kpi_number = national_values.kpi_number
            and with_values.breakdown = national_values.breakdown
            and with_values.breakdown_value = national_values.breakdown_value
    left join geographies
        on
            with_values.geography_level = geographies.geography_level
            and with_values.geography_code = geographies.geography_code
    left join poisson_exact_limits
        on
            kpi_definitions.value_type = 'ratio_to_expected'
            and with_values.numerator = poisson_exact_limits.observed_count
),

-- Overdispersion of the FLS results (docs/specification/monitoring.md section 3): phi and tau2 of the same year,
-- KPI and breakdown value, on FLS rows only, as the funnel limits.
overdispersion_joined as (
    select
        compared.*,
        funnel_overdispersion.overdispersion_phi,
        funnel_overdispersion.overdispersion_tau2
    from compared
    left join funnel_overdispersion
        on
            compared.geography_level = 'fls'
            and compared.audit_year = funnel_overdispersion.audit_year
            and compared.kpi_number = funnel_overdispersion.kpi_number
            and compared.breakdown = funnel_overdispersion.breakdown
            and compared.breakdown_value = funnel_overdispersion.breakdown_value
),

intervals as (
    select
        *,
        case
            when value_type = 'ratio_to_expected' and denominator > 0
                then
                    100.0 * coalesce(exact_poisson_lower_count, {{ poisson_limit_byar('numerator', 'lower') }})
                    / denominator
            when value_type = 'proportion' or (value_type = 'completeness' and geography_level != 'fls')
                then {{ wilson_interval_pct('numerator', 'denominator', 'lower', z_95) }}
        end as ci_lower_pct,
        case
            when value_type = 'ratio_to_expected' and denominator > 0
                then
                    100.0 * coalesce(exact_poisson_upper_count, {{ poisson_limit_byar('numerator', 'upper') }})
                    / denominator
            when value_type = 'proportion' or (value_type = 'completeness' and geography_level != 'fls')
                then {{ wilson_interval_pct('numerator', 'denominator', 'upper', z_95) }}
        end as ci_upper_pct,
        case
            when value_type = 'ratio_to_expected' then 'exact Poisson on the observed count'
            when value_type = 'proportion' or (value_type = 'completeness' and geography_level != 'fls')
                then 'Wilson score'
        end as ci_method,
        -- Funnel limits for FLS results around the national value of the same KPI and breakdown:
        -- adjusted for overdispersion (tau2; these drive the flags) and unadjusted (tau2 = 0).
        {%- for bound, sign in [('lower', -1), ('upper', 1)] %}
            {%- for label, z in funnel_z_scores().items() %}
                case
                    when geography_level = 'fls'
                        then {{ funnel_limit_pct('value_type', 'national_value_pct / 100.0', 'denominator',
                                                 sign * z, 'coalesce(overdispersion_tau2, 0.0)') }}
                end as funnel_{{ bound }}_{{ label }}_pct,
                case
                    when geography_level = 'fls'
                        then {{ funnel_limit_pct('value_type', 'national_value_pct / 100.0', 'denominator', sign * z) }}
                end as funnel_{{ bound }}_{{ label }}_unadjusted_pct,
            {%- endfor %}
        {%- endfor %}
        -- The small-number rule protects patients: KPI 1 counts fields and services (exempt), KPI 2/3
        -- divide by an expected count (numerator rule only); the macro decides on value_type.
        {{ is_suppressed('numerator', 'denominator', 'value_type') }} as is_suppressed
    from overdispersion_joined
),

final as (
    select
        cast(audit_year as {{ dbt.type_int() }}) as audit_year,
        geography_level,
        geography_code,
        geography_name,
        cast(kpi_number as {{ dbt.type_int() }}) as kpi_number,
        kpi_name,
        breakdown,
        breakdown_value,
        numerator,
        denominator,
        value_pct,
        denominator_note,
        ci_lower_pct,
        ci_upper_pct,
        ci_method,
        national_value_pct,
        cast(target_pct as double) as target_pct,
        case
            when rating_rule = 'met_not_met' and geography_level = 'fls'
                then case when denominator - numerator <= max_key_fields_below_threshold then 'met' else 'not met' end
            when value_pct is null then null
            when rating_rule = 'green_amber_red'
                then case
                    when value_pct >= green_threshold_pct then 'green'
                    when value_pct >= amber_threshold_pct then 'amber'
                    else 'red'
                end
            when rating_rule = 'green_red'
                then case when value_pct >= green_threshold_pct then 'green' else 'red' end
        end as rating,
        funnel_lower_95_pct,
        funnel_upper_95_pct,
        funnel_lower_998_pct,
        funnel_upper_998_pct,
        coalesce(value_pct < funnel_lower_95_pct or value_pct > funnel_upper_95_pct, false) as is_outlier_alert,
        coalesce(value_pct < funnel_lower_998_pct or value_pct > funnel_upper_998_pct, false) as is_outlier_alarm,
        case
            when value_pct < funnel_lower_95_pct then 'low'
            when value_pct > funnel_upper_95_pct then 'high'
        end as outlier_direction,
        -- Overdispersion (docs/specification/monitoring.md section 3): the flags above use the adjusted limits;
        -- the unadjusted ones are kept for the funnel plot's dotted lines.
        funnel_lower_95_unadjusted_pct,
        funnel_upper_95_unadjusted_pct,
        funnel_lower_998_unadjusted_pct,
        funnel_upper_998_unadjusted_pct,
        overdispersion_phi,
        overdispersion_tau2,
        is_suppressed,
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from intervals
)

select * from final
