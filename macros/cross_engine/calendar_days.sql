{#- A select of one row per calendar day from `start_date` (included) to `end_date` (excluded),
    both 'YYYY-MM-DD', in one date column `date_day`. -#}
{% macro calendar_days(start_date, end_date) %}
    {{ return(adapter.dispatch('calendar_days', 'flsdb')(start_date, end_date)) }}
{% endmacro %}

{% macro default__calendar_days(start_date, end_date) %}
    select cast(date_day as date) as date_day
    from (
        {{ dbt.date_spine('day', "cast('" ~ start_date ~ "' as date)", "cast('" ~ end_date ~ "' as date)") }}
    ) as spine
{% endmacro %}

{% macro duckdb__calendar_days(start_date, end_date) %}
    select cast(range as date) as date_day
    from range(date '{{ start_date }}', date '{{ end_date }}', interval 1 day)
{% endmacro %}

{% macro spark__calendar_days(start_date, end_date) %}
    select explode(sequence(date '{{ start_date }}', date_sub(date '{{ end_date }}', 1), interval 1 day)) as date_day
{% endmacro %}
