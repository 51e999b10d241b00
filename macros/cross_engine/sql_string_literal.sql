{#-
    A SQL string literal holding `value` exactly: the one way a file path (or any text the project
    does not control, such as a folder named "St Mary's FLS – ü") is written into SQL text.
    - default (DuckDB and standard SQL): single quotes, a quote inside doubled ('').
    - spark: Spark SQL reads a backslash in a literal as an escape, so backslashes are doubled and
      quotes escaped with one (\').
    Not named `string_literal`: dbt has a macro of that name, and a root project's
    `default__string_literal` replaces dbt's own (dispatch looks in the root project first), so
    dbt's unit-test fixtures, which escape their strings before calling it, had their quotes
    doubled twice ('syn999 ' read as ''syn999 '').
-#}
{% macro sql_string_literal(value) -%}
    {{ return(adapter.dispatch('sql_string_literal', 'flsdb')(value)) }}
{%- endmacro %}

{% macro default__sql_string_literal(value) -%}
    {{ return("'" ~ (value | string | replace("'", "''")) ~ "'") }}
{%- endmacro %}

{% macro spark__sql_string_literal(value) -%}
    {{ return("'" ~ (value | string | replace('\\', '\\\\') | replace("'", "\\'")) ~ "'") }}
{%- endmacro %}
