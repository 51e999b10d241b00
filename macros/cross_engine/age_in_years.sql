{#- Completed years of age on `on_date` for someone born on `birth_date`. A birthday on 29 February
    is reached on 1 March in a non-leap year (the anniversary has not come on 28 February). -#}
{% macro age_in_years(birth_date, on_date) %}
    {{ return(adapter.dispatch('age_in_years', 'flsdb')(birth_date, on_date)) }}
{% endmacro %}

{#- Portable: whole years between the dates, less one when the anniversary (month, day) has not
    yet come in the later year. Agrees with DuckDB's age() on every pair of dates (checked by
    tests/python/warehouse/test_portability.py). -#}
{% macro default__age_in_years(birth_date, on_date) %}
    cast(
        extract(year from {{ on_date }}) - extract(year from {{ birth_date }})
        - case
            when extract(month from {{ on_date }}) * 100 + extract(day from {{ on_date }})
                < extract(month from {{ birth_date }}) * 100 + extract(day from {{ birth_date }})
                then 1
            else 0
        end
        as {{ dbt.type_int() }}
    )
{% endmacro %}

{% macro duckdb__age_in_years(birth_date, on_date) %}
    cast(date_part('year', age({{ on_date }}, {{ birth_date }})) as integer)
{% endmacro %}

{#- Not months_between(...) / 12: it counts 29 February -> 28 February as a whole year. -#}
{% macro spark__age_in_years(birth_date, on_date) %}
    {{ default__age_in_years(birth_date, on_date) }}
{% endmacro %}
