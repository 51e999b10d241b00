{#-
    The one aggregation behind every KPI result: sum episode-level (or expected-count) measures to
    every geography level and breakdown of docs/specification/kpi-definitions.md, as one long row shape.
-#}

{#- Geography levels: name and the episode column that holds its code. -#}
{% macro kpi_geography_levels() %}
    {{ return([
        {'level': 'national', 'code': "'K04000001'"},
        {'level': 'country', 'code': 'country_code'},
        {'level': 'region', 'code': 'region_code'},
        {'level': 'fls', 'code': 'fls_code'},
    ]) }}
{% endmacro %}

{#- Breakdowns of the episode KPIs: name and the episode column that holds its value. -#}
{% macro kpi_breakdowns() %}
    {{ return([
        {'breakdown': 'all', 'column': "'all'"},
        {'breakdown': 'deprivation_quintile', 'column': 'deprivation_quintile'},
        {'breakdown': 'sex', 'column': 'breakdown_sex'},
        {'breakdown': 'age_band', 'column': 'breakdown_age_band'},
        {'breakdown': 'fracture_site', 'column': 'fracture_site'},
        {'breakdown': 'care_home', 'column': 'breakdown_care_home'},
    ]) }}
{% endmacro %}

{#- Breakdowns of the expected-caseload KPIs (2 and 3): only those the expected counts split by. -#}
{% macro identification_breakdowns() %}
    {{ return(kpi_breakdowns() | selectattr('breakdown', 'in', ['all', 'sex', 'age_band']) | list) }}
{% endmacro %}

{#-
    sum(<expression>) as <name> for each measure, grouped by audit year, each geography level and
    each breakdown. `measures` is a list of {'name': ..., 'expression': ...}. `period` is the time
    column to group by: the audit year for the yearly results, the month for kpi_monthly.
-#}
{% macro aggregate_to_levels_and_breakdowns(relation, measures, breakdowns, period='audit_year') %}
    {%- for level in kpi_geography_levels() %}
        {%- set is_last_level = loop.last %}
        {%- for breakdown in breakdowns %}
    select
        {{ period }},
        '{{ level.level }}' as geography_level,
        {{ level.code }} as geography_code,
        '{{ breakdown.breakdown }}' as breakdown,
        cast({{ breakdown.column }} as {{ dbt.type_string() }}) as breakdown_value,
        {%- for measure in measures %}
        sum({{ measure.expression }}) as {{ measure.name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ relation }}
    group by
        {{ period }},
        {{ level.code }},
        cast({{ breakdown.column }} as {{ dbt.type_string() }})
            {%- if not (loop.last and is_last_level) %}

    union all
            {%- endif %}
        {%- endfor %}
    {%- endfor %}
{% endmacro %}

{#- Turn wide kpi_<n>_numerator / kpi_<n>_denominator columns into one row per KPI. -#}
{% macro unpivot_kpis(relation, kpi_numbers, period='audit_year') %}
    {%- for kpi_number in kpi_numbers %}
    select
        {{ period }},
        geography_level,
        geography_code,
        {{ kpi_number }} as kpi_number,
        breakdown,
        breakdown_value,
        cast(kpi_{{ kpi_number }}_numerator as double) as numerator,
        cast(kpi_{{ kpi_number }}_denominator as double) as denominator
    from {{ relation }}
        {%- if not loop.last %}

    union all
        {%- endif %}
    {%- endfor %}
{% endmacro %}

{#- 1 when a boolean flag is true, else 0, for summing. -#}
{% macro count_if_true(flag) -%}
    case when {{ flag }} then 1 else 0 end
{%- endmacro %}
