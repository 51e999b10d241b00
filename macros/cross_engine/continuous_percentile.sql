{#-
    Continuous percentile of `expression` in a group (an aggregate): linear interpolation between
    the order statistics at position (n - 1) x `fraction` (Hyndman and Fan type 7, R's default,
    numpy's `linear`). Nulls are ignored. Use this, not quantile_cont / percentile / percentile_cont,
    whose names and syntax differ between engines.
-#}
{% macro continuous_percentile(expression, fraction) %}
    {{ return(adapter.dispatch('continuous_percentile', 'flsdb')(expression, fraction)) }}
{% endmacro %}

{% macro default__continuous_percentile(expression, fraction) %}
    percentile_cont({{ fraction }}) within group (order by {{ expression }})
{% endmacro %}

{% macro duckdb__continuous_percentile(expression, fraction) %}
    quantile_cont({{ expression }}, {{ fraction }})
{% endmacro %}

{#- Spark's percentile (exact, not percentile_approx) interpolates the same way. -#}
{% macro spark__continuous_percentile(expression, fraction) %}
    percentile({{ expression }}, {{ fraction }})
{% endmacro %}
