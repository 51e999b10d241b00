{#- A select of one row per first day of a month, `month_start` (date), from `first_month` to
    `last_month` (both included; date columns of `relation`, a one-row relation, holding firsts of
    months). The calendar comes from the data this way, never from the clock. No rows when
    first_month is null. -#}
{% macro month_starts(relation, first_month, last_month) %}
    {{ return(adapter.dispatch('month_starts', 'flsdb')(relation, first_month, last_month)) }}
{% endmacro %}

{#- Portable: offsets 0 to 1199 (a century of months), kept up to last_month. -#}
{% macro default__month_starts(relation, first_month, last_month) %}
    select cast({{ dbt.dateadd('month', 'offsets.generated_number - 1', first_month) }} as date) as month_start
    from {{ relation }}
    cross join ({{ dbt.generate_series(1200) }}) as offsets
    where {{ dbt.dateadd('month', 'offsets.generated_number - 1', first_month) }} <= {{ last_month }}
{% endmacro %}

{% macro duckdb__month_starts(relation, first_month, last_month) %}
    select cast(unnest(generate_series({{ first_month }}, {{ last_month }}, interval 1 month)) as date) as month_start
    from {{ relation }}
{% endmacro %}

{% macro spark__month_starts(relation, first_month, last_month) %}
    select explode(sequence({{ first_month }}, {{ last_month }}, interval 1 month)) as month_start
    from {{ relation }}
{% endmacro %}
