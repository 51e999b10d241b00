{#- 'a', 'b', 'c' from a list of strings, for SQL `in (...)`. -#}
{% macro quoted_list(values) -%}
    {%- for value in values -%}
        '{{ value | replace("'", "''") }}'{{ ', ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
