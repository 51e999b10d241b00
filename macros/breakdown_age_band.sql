{#- The KPI breakdown age band of docs/specification/kpi-definitions.md: 50-59, 60-69, 70-79, 80-89, 90+. -#}
{% macro breakdown_age_band(age) %}
    case
        when {{ age }} >= 90 then '90+'
        when {{ age }} >= 80 then '80-89'
        when {{ age }} >= 70 then '70-79'
        when {{ age }} >= 60 then '60-69'
        when {{ age }} >= 50 then '50-59'
    end
{% endmacro %}
