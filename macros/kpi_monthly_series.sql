{#-
    The KPIs with a monthly series (docs/specification/monitoring.md section 1), read from the KPI seed: every KPI
    whose value_type is not `completeness`, with its value_type and its completeness lag. The KPI
    list lives in the seed only; SQL never counts KPIs by hand. The seed is read by kpi_definitions()
    (macros/kpi_definitions.sql: [] while dbt parses; on DuckDB the CSV file itself, so it also works
    under sqlfluff's in-memory lint target).
-#}
{% macro kpi_monthly_series() %}
    {%- set kpis = [] %}
    {%- for kpi in kpi_definitions() if kpi.value_type != 'completeness' %}
        {%- do kpis.append({'number': kpi.kpi_number, 'value_type': kpi.value_type,
                            'lag_days': kpi.completeness_lag_days}) %}
    {%- endfor %}
    {{ return(kpis) }}
{% endmacro %}
