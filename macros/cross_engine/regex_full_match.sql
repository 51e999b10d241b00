{#- True when the whole of `expression` matches the regular expression `pattern`. -#}
{% macro regex_full_match(expression, pattern) %}
    {{ return(adapter.dispatch('regex_full_match', 'flsdb')(expression, pattern)) }}
{% endmacro %}

{% macro default__regex_full_match(expression, pattern) %}
    regexp_full_match({{ expression }}, '{{ pattern }}')
{% endmacro %}

{% macro spark__regex_full_match(expression, pattern) %}
    ({{ expression }} rlike '^(?:{{ pattern }})$')
{% endmacro %}


{#- `expression` with every match of `pattern` removed. -#}
{% macro regex_remove(expression, pattern) %}
    {{ return(adapter.dispatch('regex_remove', 'flsdb')(expression, pattern)) }}
{% endmacro %}

{% macro default__regex_remove(expression, pattern) %}
    regexp_replace({{ expression }}, '{{ pattern }}', '', 'g')
{% endmacro %}

{% macro spark__regex_remove(expression, pattern) %}
    regexp_replace({{ expression }}, '{{ pattern }}', '')
{% endmacro %}
