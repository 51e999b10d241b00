{#-
    The KPI list, read from the kpi_definitions seed (seeds/kpi_definitions.csv) at compile time, so
    that no model or macro counts the KPIs by hand: a new seed row is a new KPI everywhere that loops
    over these macros (DEVELOPERS.md, "Adding or changing a KPI").

    kpi_definitions() returns the seed's rows as dicts, ordered by kpi_number, typed by seed_records
    (macros/seed_records.sql): `kpi_number`, `max_key_fields_below_threshold` and every `*_days`
    column an integer, every `*_pct` column a float, empty cells none, the rest text.
-#}
{% macro kpi_definitions() %}
    {{ return(seed_records('kpi_definitions', 'kpi_number', integer_columns=['max_key_fields_below_threshold'])) }}
{% endmacro %}

{#- The seed rows of one grain (`episode`, `expected_caseload` or `completeness`), or all. -#}
{% macro kpis_of_grain(grain=none) %}
    {%- if grain is not none and grain not in ('episode', 'expected_caseload', 'completeness') -%}
        {{ exceptions.raise_compiler_error("unknown KPI grain '" ~ grain ~ "'") }}
    {%- endif -%}
    {%- set kpis = kpi_definitions() -%}
    {%- if grain is none -%}
        {{ return(kpis) }}
    {%- endif -%}
    {{ return(kpis | selectattr('grain', 'equalto', grain) | list) }}
{% endmacro %}

{#- The KPI numbers of one grain, or all, in order. -#}
{% macro kpi_numbers(grain=none) %}
    {{ return(kpis_of_grain(grain) | map(attribute='kpi_number') | list) }}
{% endmacro %}

{#-
    The one completeness KPI (KPI 1): the models of that grain measure the key fields of
    macros/kpi_1_key_fields.sql, so the seed must hold exactly one. Parse time: an empty dict.
-#}
{% macro completeness_kpi() %}
    {%- set kpis = kpis_of_grain('completeness') -%}
    {%- if not execute -%}
        {{ return({}) }}
    {%- endif -%}
    {%- if kpis | length != 1 -%}
        {{ exceptions.raise_compiler_error(
            "seeds/kpi_definitions.csv must hold exactly one KPI of grain completeness, not "
            ~ kpis | length) }}
    {%- endif -%}
    {{ return(kpis[0]) }}
{% endmacro %}

{#-
    The episode flag columns of a KPI in int_episodes_kpi_flagged, as fct_episodes publishes them:
    episode KPIs have `in_denominator`, `in_numerator` and `reason`; expected-caseload KPIs a
    numerator flag only (their denominators are expected counts, not episodes).
-#}
{% macro kpi_episode_flag_columns(kpi) %}
    {%- if kpi.grain == 'episode' -%}
        {{ return(['kpi_' ~ kpi.kpi_number ~ '_in_denominator', 'kpi_' ~ kpi.kpi_number ~ '_in_numerator',
                   'kpi_' ~ kpi.kpi_number ~ '_reason']) }}
    {%- elif kpi.grain == 'expected_caseload' -%}
        {{ return(['kpi_' ~ kpi.kpi_number ~ '_in_numerator']) }}
    {%- endif -%}
    {{ return([]) }}
{% endmacro %}
