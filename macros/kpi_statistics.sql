{#- Confidence intervals, funnel limits, ratings and suppression for KPI results
    (docs/specification/kpi-definitions.md). -#}

{#- Wilson score interval for numerator/denominator, as a percentage. `bound` is 'lower' or 'upper'. -#}
{#- Clipped to [0, 100]: at 0/n or n/n rounding would otherwise leave about 1e-15 outside. The bound
    at the edge is exact: 0 for the lower bound of 0/n, 100 for the upper bound of n/n (the formula
    gives them in exact arithmetic, and floating point could leave 99.99999999999999, an interval
    that misses its own 100% value). Null without a denominator (not applicable). -#}
{% macro wilson_interval_pct(numerator, denominator, bound, z=1.959964) %}
    case
        when {{ denominator }} > 0 and {{ numerator }} = {{ '0' if bound == 'lower' else denominator }}
            then {{ '0.0' if bound == 'lower' else '100.0' }}
        when {{ denominator }} > 0 then
        least(100.0, greatest(0.0, 100.0 * (
            ({{ numerator }} / {{ denominator }}) + {{ z * z }} / (2.0 * {{ denominator }})
            {{ '-' if bound == 'lower' else '+' }} {{ z }} * sqrt(
                ({{ numerator }} / {{ denominator }}) * (1 - {{ numerator }} / {{ denominator }}) / {{ denominator }}
                + {{ z * z }} / (4.0 * {{ denominator }} * {{ denominator }})
            )
        ) / (1 + {{ z * z }} / {{ denominator }})))
    end
{% endmacro %}

{#- Funnel-plot limits: macros/funnel_overdispersion.sql. -#}

{#- Small-number suppression for publication (docs/specification/kpi-definitions.md, "Publication and small
    numbers"; limits are vars). The rules count patients, so which apply depends on what the KPI seed's value_type
    counts:
    - `proportion` (patients over patients): denominator below the minimum, numerator 1-4, or
      denominator - numerator 1-4;
    - `ratio_to_expected` (KPI 2/3: patients over an expected count, which is no patient count):
      numerator 1-4 only;
    - `completeness` (KPI 1: key fields or services, never patients): never suppressed. -#}
{% macro is_suppressed(numerator, denominator, value_type) %}
    case
        when {{ value_type }} = 'completeness' then false
        when {{ value_type }} = 'ratio_to_expected'
            then coalesce({{ numerator }} between 1 and {{ var('suppression_max_small_count') }}, false)
        else coalesce(
            coalesce({{ denominator }}, 0) < {{ var('suppression_min_denominator') }}
            or {{ numerator }} between 1 and {{ var('suppression_max_small_count') }}
            or ({{ denominator }} - {{ numerator }}) between 1 and {{ var('suppression_max_small_count') }},
            true
        )
    end
{% endmacro %}
