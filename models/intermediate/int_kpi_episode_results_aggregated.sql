-- One row per audit year x geography x breakdown x KPI for KPIs 4-11: the numerator and
-- denominator counts summed from the episode flags, by the one shared aggregation macro.

{%- set kpi_numbers = range(4, 12) %}
{%- set measures = [] %}
{%- for kpi_number in kpi_numbers %}
    {%- do measures.append({'name': 'kpi_' ~ kpi_number ~ '_numerator',
        'expression': count_if_true('kpi_' ~ kpi_number ~ '_in_numerator')}) %}
    {%- do measures.append({'name': 'kpi_' ~ kpi_number ~ '_denominator',
        'expression': count_if_true('kpi_' ~ kpi_number ~ '_in_denominator')}) %}
{%- endfor %}

with

episodes as (
    select * from {{ ref('int_episodes_kpi_flagged') }}
),

aggregated as (
    {{ aggregate_to_levels_and_breakdowns('episodes', measures, kpi_breakdowns()) }}
),

final as (
    {{ unpivot_kpis('aggregated', kpi_numbers) }}
)

select * from final
