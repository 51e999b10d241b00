{#-
    A SQL string literal holding `value` exactly: the one way a file path (or any text the project
    does not control, such as a folder named "St Mary's FLS – ü") is written into SQL text.
    - default (DuckDB and standard SQL): single quotes, a quote inside doubled ('').
    - spark: Spark SQL reads a backslash in a literal as an escape, so backslashes are doubled and
      quotes escaped with one (\').
-#}
{% macro string_literal(value) -%}
    {{ return(adapter.dispatch('string_literal', 'flsdb')(value)) }}
{%- endmacro %}

{% macro default__string_literal(value) -%}
    {{ return("'" ~ (value | string | replace("'", "''")) ~ "'") }}
{%- endmacro %}

{% macro spark__string_literal(value) -%}
    {{ return("'" ~ (value | string | replace('\\', '\\\\') | replace("'", "\\'")) ~ "'") }}
{%- endmacro %}
