{#- KPI 1's 17 key fields (docs/specification/kpi-definitions.md), read from the submission contract
    (seeds/submission_fields.csv, column is_kpi_1_key_field): the field, and when an episode counts
    as having it recorded (kpi_1_recorded_when). "Not known" and "Don't know" are recorded; blank or
    warned values are not (warned values are already null in staging). A field with kpi_1_measured_over (6.01 and 6.06:
    is_due_at_16_weeks; 7.01: is_due_at_52_weeks, flags of int_episodes_kpi_flagged whose days are
    var follow_up_due_days) is measured over the records due; the rest over every cohort record. -#}
{% macro kpi_1_key_fields() %}
    {%- set key_fields = [] -%}
    {%- for field in submission_contract() if field.is_kpi_1_key_field -%}
        {%- set key_field = {'field': field.column_name, 'recorded': field.kpi_1_recorded_when} -%}
        {%- if field.kpi_1_measured_over -%}
            {%- do key_field.update({'measured_over': field.kpi_1_measured_over}) -%}
        {%- endif -%}
        {%- do key_fields.append(key_field) -%}
    {%- endfor -%}
    {{ return(key_fields) }}
{% endmacro %}
