{#-
    XmR ("plot the dots") charts of NHS "Making Data Count", exactly as docs/specification/monitoring.md section 2.
    The chart is four models, one step each (lineage: int_kpi_months_measured ->
    int_spc_months_grouped -> int_spc_groups_limited -> int_spc_points_ruled ->
    int_kpi_months_charted); these macros hold only what those models share. NHSRplotthedots (the
    NHS-R community's R package) is the reference where the spec is silent; every such reading is
    listed in DEVELOPERS.md, "SPC readings".

    The constants of the method:
    - 2.66 = 3 / d2 (d2 = 1.128 for moving ranges of 2): process limits = mean +- 2.66 x AMR;
    - near-limit lines at 2/3 of that distance (the "2 sigma" lines);
    - 3.267 = D4 for n = 2: a moving range at or above 3.267 x AMR is screened out;
    - 12 points: fewer make a run chart (no limits, no flags);
    - 7 points: a shift (same side of the mean) or a trend (each strictly higher or lower);
    - 9 decimal places: the chart reads each value to a billionth of a percentage point. Finer
      differences are floating-point noise, which would otherwise make moving ranges of 1e-15 and
      special causes out of them (a national KPI 2/3 series of one complete audit year is flat by
      construction, and DuckDB and Spark add up its parts in different orders).
-#}

{% macro spc_constants() %}
    {{ return({
        'limit_multiplier': 2.66,
        'screening_multiplier': 3.267,
        'minimum_points_for_limits': 12,
        'run_points': 7,
        'value_decimal_places': 9,
    }) }}
{% endmacro %}

{#- The columns that identify one series (one chart). -#}
{% macro spc_series_columns() %}
    {{ return(['geography_level', 'geography_code', 'kpi_number']) }}
{% endmacro %}

{#- `<prefix>.column, ...` (or bare names) for the series columns. -#}
{% macro spc_series_list(prefix=none) -%}
    {%- for column in spc_series_columns() -%}
        {{ prefix ~ '.' if prefix }}{{ column }}{{ ', ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- `a.column = b.column and ...` over the series columns (and `extra` columns, e.g. spc_group). -#}
{% macro spc_series_join(left, right, extra=[]) -%}
    {%- for column in spc_series_columns() + extra -%}
        {{ left }}.{{ column }} = {{ right }}.{{ column }}{{ ' and ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}

{#- A chart line (limit or near-limit line) as stored and drawn: clipped to the range the value can
    take (docs/specification/monitoring.md section 2): 0 to 100 for proportions, at least 0 for identification
    ratios (value_type ratio_to_expected, which can exceed 100). The rules use the line unclipped. -#}
{% macro spc_line_clipped(line, value_type) -%}
    case
        when {{ line }} is null then null
        when {{ value_type }} = 'ratio_to_expected' then greatest(0.0, {{ line }})
        else least(100.0, greatest(0.0, {{ line }}))
    end
{%- endmacro %}

{#-
    Assurance of a series against the KPI's target (docs/specification/monitoring.md): target above the upper
    limit of the latest group -> consistent_fail (higher is better); below the lower limit ->
    consistent_pass; otherwise inconsistent. No target: none. No limits (a run chart, or a series
    with no points): null, since there is no process capability to judge.
-#}
{% macro spc_assurance(target, lower_limit, upper_limit) -%}
    case
        when {{ target }} is null then 'none'
        when {{ upper_limit }} is null or {{ lower_limit }} is null then null
        when {{ target }} > {{ upper_limit }} then 'consistent_fail'
        when {{ target }} < {{ lower_limit }} then 'consistent_pass'
        else 'inconsistent'
    end
{%- endmacro %}
