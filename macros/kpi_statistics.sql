{#- Confidence intervals, funnel limits, ratings and suppression for KPI results (kpi-spec.md). -#}

{#- Wilson score interval for numerator/denominator, as a percentage. `bound` is 'lower' or 'upper'. -#}
{#- Clipped to [0, 100]: at 0/n or n/n rounding would otherwise leave about 1e-15 outside. -#}
{% macro wilson_interval_pct(numerator, denominator, bound, z=1.959964) %}
    case when {{ denominator }} > 0 then
        least(100.0, greatest(0.0, 100.0 * (
            ({{ numerator }} / {{ denominator }}) + {{ z * z }} / (2.0 * {{ denominator }})
            {{ '-' if bound == 'lower' else '+' }} {{ z }} * sqrt(
                ({{ numerator }} / {{ denominator }}) * (1 - {{ numerator }} / {{ denominator }}) / {{ denominator }}
                + {{ z * z }} / (4.0 * {{ denominator }} * {{ denominator }})
            )
        ) / (1 + {{ z * z }} / {{ denominator }})))
    end
{% endmacro %}

{#- Funnel-plot control limit for an FLS proportion around the national proportion p0 (0-1), with
    n records, at z standard deviations; as a percentage clipped to [0, 100]. -#}
{% macro proportion_funnel_limit_pct(national_proportion, denominator, z) %}
    case when {{ denominator }} > 0 and {{ national_proportion }} is not null then
        100.0 * least(1.0, greatest(0.0,
            {{ national_proportion }}
            + {{ z }} * sqrt({{ national_proportion }} * (1 - {{ national_proportion }}) / {{ denominator }})
        ))
    end
{% endmacro %}

{#- Funnel-plot control limit for an observed/expected ratio (KPI 2 and 3) around the national
    ratio r0: the FLS's count is Poisson with mean r0 * expected. As a percentage. -#}
{% macro ratio_funnel_limit_pct(national_ratio, expected, z) %}
    case when {{ expected }} > 0 and {{ national_ratio }} > 0 then
        100.0 * greatest(0.0, {{ national_ratio }} + {{ z }} * sqrt({{ national_ratio }} / {{ expected }}))
    end
{% endmacro %}

{#- Small-number suppression for publication: denominator below the minimum, numerator 1-4, or
    denominator - numerator 1-4 (limits are vars). -#}
{% macro is_suppressed(numerator, denominator) %}
    (
        coalesce({{ denominator }}, 0) < {{ var('suppression_min_denominator') }}
        or {{ numerator }} between 1 and {{ var('suppression_max_small_count') }}
        or ({{ denominator }} - {{ numerator }}) between 1 and {{ var('suppression_max_small_count') }}
    )
{% endmacro %}
