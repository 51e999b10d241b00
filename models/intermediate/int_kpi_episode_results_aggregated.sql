-- One row per audit year x geography x breakdown x KPI for the episode KPIs (grain `episode` in the
-- kpi_definitions seed, KPIs 4-11): the numerator and denominator counts summed from the episode
-- flags, by the one shared aggregation macro. The KPI list comes from the seed, so a new episode KPI
-- needs only its seed row and its flags in int_episodes_kpi_flagged.

{%- set kpi_numbers = kpi_numbers(grain='episode') %}
{%- set measures = [] %}
{%- for kpi_number in kpi_numbers %}
    {%- do measures.append({'name': 'kpi_' ~ kpi_number ~ '_numerator',
        'expression': count_if_true('kpi_' ~ kpi_number ~ '_in_numerator')}) %}
    {%- do measures.append({'name': 'kpi_' ~ kpi_number ~ '_denominator',
        'expression': count_if_true('kpi_' ~ kpi_number ~ '_in_denominator')}) %}
{%- endfor %}

with

aggregated as (
    -- The model itself, not an import CTE, in each of the union's branches: DuckDB materialises a
    -- CTE that is read more than once, with all its columns (DEVELOPERS.md, "Performance").
    {{ aggregate_to_levels_and_breakdowns(ref('int_episodes_kpi_flagged'), measures, kpi_breakdowns()) }}
),

final as (
    {{ unpivot_kpis('aggregated', kpi_numbers) }}
)

select * from final
