{#-
    The five-year age band of the incidence rate table for an age of 50 or more:
    '50-54', '55-59', ..., '85-89', and '90+' (the population estimates' age 90 means 90 and over).
-#}
{% macro five_year_age_band(age) -%}
    case
        when {{ age }} >= 90 then '90+'
        else
            cast(cast(floor({{ age }} / 5) * 5 as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
            || '-'
            || cast(cast(floor({{ age }} / 5) * 5 + 4 as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
    end
{%- endmacro %}
