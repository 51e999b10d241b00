{#-
    The KPIs with a monthly series (monitoring-spec.md section 1), read from the KPI seed: every KPI
    whose value_type is not `completeness`, with its value_type and its completeness lag. The KPI
    list lives in the seed only; SQL never counts KPIs by hand. Returns [] while dbt parses (the
    seed is read when the model is compiled to run, after the seed is loaded); before the seed is
    loaded (sqlfluff's in-memory lint target) its CSV file is read instead (macros/cross_engine/seed_file.sql).
-#}
{% macro kpi_monthly_series() %}
    {%- set kpi_definitions = ref('kpi_definitions') %}
    {%- if not execute %}
        {{ return([]) }}
    {%- endif %}
    {%- set seed_relation = kpi_definitions if load_relation(kpi_definitions) is not none
        else seed_file('kpi_definitions') %}
    {%- set result = run_query(
        "select cast(kpi_number as integer), value_type, cast(completeness_lag_days as integer) from "
        ~ seed_relation ~ " where value_type != 'completeness' order by 1") %}
    {%- set kpis = [] %}
    {%- for row in result.rows %}
        {%- do kpis.append({'number': row[0] | int, 'value_type': row[1], 'lag_days': row[2] | int}) %}
    {%- endfor %}
    {{ return(kpis) }}
{% endmacro %}
