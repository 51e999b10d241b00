{#-
    Regular expressions. Patterns are written in the common subset of RE2 (DuckDB) and
    java.util.regex (Spark): character classes, quantifiers, groups and alternation.
-#}

{#- True when the whole of `expression` matches the regular expression `pattern`. -#}
{% macro regex_full_match(expression, pattern) %}
    {{ return(adapter.dispatch('regex_full_match', 'flsdb')(expression, pattern)) }}
{% endmacro %}

{% macro default__regex_full_match(expression, pattern) %}
    {{ exceptions.raise_compiler_error(
        "regex_full_match has no implementation for " ~ target.type
        ~ ": add " ~ target.type ~ "__regex_full_match to macros/cross_engine/regex_full_match.sql") }}
{% endmacro %}

{% macro duckdb__regex_full_match(expression, pattern) %}
    regexp_full_match({{ expression }}, '{{ pattern }}')
{% endmacro %}

{#- Anchored with \z (end of input), not $, which in Java also matches before a final newline.
    Backslashes are doubled because Spark SQL string literals treat the backslash as an escape. -#}
{% macro spark__regex_full_match(expression, pattern) %}
    ({{ expression }} rlike '^(?:{{ spark_regex_literal(pattern) }})\\z')
{% endmacro %}


{#- `expression` with every match of `pattern` removed. -#}
{% macro regex_remove(expression, pattern) %}
    {{ return(adapter.dispatch('regex_remove', 'flsdb')(expression, pattern)) }}
{% endmacro %}

{% macro default__regex_remove(expression, pattern) %}
    {{ exceptions.raise_compiler_error(
        "regex_remove has no implementation for " ~ target.type
        ~ ": add " ~ target.type ~ "__regex_remove to macros/cross_engine/regex_full_match.sql") }}
{% endmacro %}

{% macro duckdb__regex_remove(expression, pattern) %}
    regexp_replace({{ expression }}, '{{ pattern }}', '', 'g')
{% endmacro %}

{#- Spark's regexp_replace replaces every match. -#}
{% macro spark__regex_remove(expression, pattern) %}
    regexp_replace({{ expression }}, '{{ spark_regex_literal(pattern) }}', '')
{% endmacro %}


{#- `expression` with every match of `pattern` replaced by the plain text `replacement`. -#}
{% macro regex_replace_all(expression, pattern, replacement) %}
    {{ return(adapter.dispatch('regex_replace_all', 'flsdb')(expression, pattern, replacement)) }}
{% endmacro %}

{% macro default__regex_replace_all(expression, pattern, replacement) %}
    {{ exceptions.raise_compiler_error(
        "regex_replace_all has no implementation for " ~ target.type
        ~ ": add " ~ target.type ~ "__regex_replace_all to macros/cross_engine/regex_full_match.sql") }}
{% endmacro %}

{% macro duckdb__regex_replace_all(expression, pattern, replacement) %}
    regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{% endmacro %}

{% macro spark__regex_replace_all(expression, pattern, replacement) %}
    regexp_replace({{ expression }}, '{{ spark_regex_literal(pattern) }}', '{{ replacement }}')
{% endmacro %}


{#- A regular expression as the body of a Spark SQL string literal: backslashes doubled, quotes escaped. -#}
{% macro spark_regex_literal(pattern) -%}
    {{- pattern | replace('\\', '\\\\') | replace("'", "\\'") -}}
{%- endmacro %}
