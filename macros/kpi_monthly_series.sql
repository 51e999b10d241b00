{#-
    The KPIs with a monthly series (monitoring-spec.md section 1), read from the KPI seed: every KPI
    whose value_type is not `completeness`, with its value_type and its completeness lag. The KPI
    list lives in the seed only; SQL never counts KPIs by hand. Returns [] while dbt parses (the
    seed is read when the model is compiled to run, after the seed is loaded).
-#}
{% macro kpi_monthly_series() %}
    {%- set kpi_definitions = ref('kpi_definitions') %}
    {%- if not execute %}
        {{ return([]) }}
    {%- endif %}
    {%- set result = run_query(
        "select kpi_number, value_type, completeness_lag_days from " ~ kpi_definitions
        ~ " where value_type != 'completeness' order by kpi_number") %}
    {%- set kpis = [] %}
    {%- for row in result.rows %}
        {%- do kpis.append({'number': row[0] | int, 'value_type': row[1], 'lag_days': row[2] | int}) %}
    {%- endfor %}
    {{ return(kpis) }}
{% endmacro %}
