{#- Funnel plots with overdispersion (docs/specification/monitoring.md section 3; Spiegelhalter, Stat Med
    2005;24:1185). The statistics live here once: int_kpi_funnel_overdispersion_estimated estimates
    phi and tau2 with them, kpi_results draws the limits with them. Every choice between the
    proportion and the observed/expected scale is made on the KPI seed's value_type. -#}

{#- z of the two funnel limits: 95% and 99.8% (two-sided). -#}
{% macro funnel_z_scores() %}
    {{ return({'95': 1.959964, '998': 3.090232}) }}
{% endmacro %}

{#- Fewer FLS results than this: no random-effects variance (tau2 = 0). -#}
{% macro funnel_overdispersion_min_results() %}
    {{ return(10) }}
{% endmacro %}

{#- The z-scores are winsorised at this percentile and at 1 minus it. -#}
{% macro funnel_winsorising_percentile() %}
    {{ return(0.1) }}
{% endmacro %}

{#- Standard error s of an FLS result under the null, on the 0-1 scale: proportions
    sqrt(p0 (1 - p0) / n); observed/expected ratios (KPI 2/3) sqrt(r0 / expected). Null without a
    denominator or for a value type that has no funnel (KPI 1 completeness). -#}
{% macro funnel_standard_error(value_type, national_value, denominator) %}
    case
        when {{ denominator }} > 0 and {{ value_type }} = 'proportion'
            then sqrt({{ national_value }} * (1 - {{ national_value }}) / {{ denominator }})
        when {{ denominator }} > 0 and {{ value_type }} = 'ratio_to_expected'
            then sqrt({{ national_value }} / {{ denominator }})
    end
{% endmacro %}

{#- A funnel limit as a percentage: p0 + z * sqrt(s^2 + tau2), with tau2 the between-FLS variance
    (0 gives the unadjusted limit). Proportions are clipped to [0, 100], ratios at 0. Null ("not
    applicable") only when there is no national value or no denominator. A degenerate national
    value (0% or 100%, or an identification ratio of 0) has s = 0: the limits collapse onto it,
    since every FLS result equals it (DEVELOPERS.md, "Degenerate years"). -#}
{% macro funnel_limit_pct(value_type, national_value, denominator, z, tau2=0) %}
    case
        when {{ denominator }} > 0 and {{ value_type }} = 'proportion' and {{ national_value }} is not null
            then 100.0 * least(1.0, greatest(0.0,
                {{ national_value }} + {{ z }} * sqrt(
                    power({{ funnel_standard_error(value_type, national_value, denominator) }}, 2) + {{ tau2 }}
                )
            ))
        when {{ denominator }} > 0 and {{ value_type }} = 'ratio_to_expected' and {{ national_value }} >= 0
            then 100.0 * greatest(0.0,
                {{ national_value }} + {{ z }} * sqrt(
                    power({{ funnel_standard_error(value_type, national_value, denominator) }}, 2) + {{ tau2 }}
                )
            )
    end
{% endmacro %}

{#- z-score of an FLS result against the national value. Where s is 0 (a national proportion of 0
    or 1, or an identification ratio of 0) every FLS result equals the national value: z = 0, the
    result sits on the centre line, so phi = 0 and tau2 = 0 (no variation between services). -#}
{% macro funnel_z_score(value_type, numerator, denominator, national_value) %}
    coalesce(
        ({{ numerator }} / {{ denominator }} - {{ national_value }})
        / nullif({{ funnel_standard_error(value_type, national_value, denominator) }}, 0),
        case when {{ numerator }} / {{ denominator }} = {{ national_value }} then 0.0 end
    )
{% endmacro %}

{#- The winsorised overdispersion factor phi = (1/k) sum z_w^2, z_w the z-score clipped to the
    group's lower and upper winsorising percentiles (null z-scores are left out: least/greatest
    would turn them into a percentile). An aggregate. -#}
{% macro overdispersion_phi(z_score, lower_percentile, upper_percentile) %}
    avg(case when {{ z_score }} is not null
        then power(least(greatest({{ z_score }}, {{ lower_percentile }}), {{ upper_percentile }}), 2) end)
{% endmacro %}

{#- The additive random-effects variance tau2 = max(0, (k phi - (k - 1)) / (sum w - sum w^2 / sum w)),
    w = 1/s^2; 0 with fewer than funnel_overdispersion_min_results() results, or when phi is
    undefined. Arguments are the group's k, phi, sum w and sum w^2. -#}
{% macro overdispersion_tau2(results, phi, sum_weights, sum_squared_weights) %}
    case
        when {{ results }} < {{ funnel_overdispersion_min_results() }} or {{ phi }} is null then 0.0
        else greatest(0.0, coalesce(
            ({{ results }} * {{ phi }} - ({{ results }} - 1))
            / nullif({{ sum_weights }} - {{ sum_squared_weights }} / {{ sum_weights }}, 0),
            0.0
        ))
    end
{% endmacro %}

{#- The funnel plots' one grid of denominators, for the internal curves (kpi_funnel_limits) and the
    published ones (published_funnel_limits): var funnel_curve_steps + 1 points (step_number 0 to
    funnel_curve_steps), evenly spaced on a log scale from 0.9 x the smallest to 1.1 x the largest
    FLS denominator of each curve. `curves` has one row per curve, with smallest_fls_denominator and
    largest_fls_denominator (over the FLS results each model may show). -#}
{% macro funnel_curve_grid(curves) %}
    {%- set steps = var('funnel_curve_steps') %}
    select
        curves.*,
        cast(grid_steps.generated_number - 1 as {{ dbt.type_int() }}) as step_number,
        0.9 * curves.smallest_fls_denominator * power(
            1.1 * curves.largest_fls_denominator / (0.9 * curves.smallest_fls_denominator),
            (grid_steps.generated_number - 1) / {{ steps }}.0
        ) as denominator
    from {{ curves }} as curves
    cross join ({{ dbt.generate_series(steps + 1) }}) as grid_steps
{% endmacro %}

{#- The 8 limit columns of a funnel curve at `denominator`: <prefix><lower|upper>_<95|998>_pct
    (adjusted by tau2) and ..._unadjusted_pct (tau2 = 0). -#}
{% macro funnel_curve_limits(value_type, national_value, denominator, tau2, prefix='') %}
    {%- for label, z in funnel_z_scores().items() %}
        {%- for bound, sign in [('lower', -1), ('upper', 1)] %}
        {{ funnel_limit_pct(value_type, national_value, denominator, sign * z, tau2) }}
            as {{ prefix }}{{ bound }}_{{ label }}_pct,
        {{ funnel_limit_pct(value_type, national_value, denominator, sign * z) }}
            as {{ prefix }}{{ bound }}_{{ label }}_unadjusted_pct{{ ',' if not loop.last }}
        {%- endfor %}{{ ',' if not loop.last }}
    {%- endfor %}
{% endmacro %}
