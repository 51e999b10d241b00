{#-
    Byar's approximation to the exact (Garwood) 95% Poisson limits of an observed count k:
        lower = k * (1 - 1/(9k) - z/(3 sqrt(k)))^3
        upper = (k+1) * (1 - 1/(9(k+1)) + z/(3 sqrt(k+1)))^3,   z = 1.959964
    Used above the range of the seed `poisson_exact_limits` (k > 2000), where it differs from the
    exact limits by less than 0.00002%. `bound` is 'lower' or 'upper'.
-#}
{% macro poisson_limit_byar(observed_count, bound) -%}
    {%- set z = 1.959963984540054 -%}
    {%- if bound == 'lower' -%}
        case
            when {{ observed_count }} <= 0 then 0.0
            else {{ observed_count }} * power(
                1.0 - 1.0 / (9.0 * {{ observed_count }}) - {{ z }} / (3.0 * sqrt({{ observed_count }})), 3
            )
        end
    {%- elif bound == 'upper' -%}
        ({{ observed_count }} + 1.0) * power(
            1.0 - 1.0 / (9.0 * ({{ observed_count }} + 1.0)) + {{ z }} / (3.0 * sqrt({{ observed_count }} + 1.0)), 3
        )
    {%- else -%}
        {{ exceptions.raise_compiler_error("poisson_limit_byar: bound must be 'lower' or 'upper'") }}
    {%- endif -%}
{%- endmacro %}
