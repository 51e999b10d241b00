{#- Completed years of age on `on_date` for someone born on `birth_date`. -#}
{% macro age_in_years(birth_date, on_date) %}
    {{ return(adapter.dispatch('age_in_years', 'flsdb')(birth_date, on_date)) }}
{% endmacro %}

{% macro default__age_in_years(birth_date, on_date) %}
    cast(date_part('year', age({{ on_date }}, {{ birth_date }})) as integer)
{% endmacro %}

{% macro spark__age_in_years(birth_date, on_date) %}
    cast(floor(months_between({{ on_date }}, {{ birth_date }}) / 12) as int)
{% endmacro %}
