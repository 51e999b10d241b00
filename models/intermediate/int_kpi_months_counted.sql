-- One row per geography level x geography x KPI 2-11 (breakdown all) x calendar month of the
-- fracture date F with cohort records there: the month's numerator and (KPIs 4-11) denominator.
-- Why: the counts behind the monthly series (docs/specification/monitoring.md section 1), counted once; the
-- seasonal shares of KPI 2/3 (int_kpi_seasonal_shares_estimated) are taken from the national
-- rows, and int_kpi_months_measured adds the calendar and the KPI 2/3 expected counts.
{#- The KPIs, their value type and completeness lag come from the KPI seed (macros/kpi_monthly_series.sql). -#}
{%- set kpis = kpi_monthly_series() %}
{%- set proportion_kpis = kpis | selectattr('value_type', '!=', 'ratio_to_expected') | list %}
{%- set measures = [] %}
{%- for kpi in kpis %}
    {%- do measures.append({'name': 'kpi_' ~ kpi.number ~ '_numerator',
        'expression': count_if_true('kpi_' ~ kpi.number ~ '_in_numerator')}) %}
    {#- KPI 2/3 denominators are expected counts (int_kpi_months_measured); 0 here keeps the long row shape. #}
    {%- do measures.append({'name': 'kpi_' ~ kpi.number ~ '_denominator',
        'expression': count_if_true('kpi_' ~ kpi.number ~ '_in_denominator')
            if kpi in proportion_kpis else '0'}) %}
{%- endfor %}

with

episodes as (
    -- Only the month, the geography and the flags: the aggregation below reads this once per level.
    select
        cast({{ dbt.date_trunc('month', 'episodes.fracture_date') }} as date) as month_start,
        episodes.country_code,
        episodes.region_code,
        episodes.fls_code,
        {%- for kpi in kpis %}
            {%- if kpi in proportion_kpis %}
                episodes.kpi_{{ kpi.number }}_in_numerator,
                episodes.kpi_{{ kpi.number }}_in_denominator,
            {%- else %}
                -- Identification counts only FLSs with an expected caseload that year, like its denominator.
                episodes.kpi_{{ kpi.number }}_in_numerator and fls_years_with_expected_count.fls_code is not null
                    as kpi_{{ kpi.number }}_in_numerator,
            {%- endif %}
        {%- endfor %}
        1 as cohort_records
    from {{ ref('int_episodes_kpi_flagged') }} as episodes
    left join (
        select distinct
            fls_code,
            audit_year
        from {{ ref('int_expected_fractures_calculated') }}
    ) as fls_years_with_expected_count
        on
            episodes.fls_code = fls_years_with_expected_count.fls_code
            and episodes.audit_year = fls_years_with_expected_count.audit_year
),

monthly_counts_wide as (
    {{ aggregate_to_levels_and_breakdowns(
        'episodes',
        measures + [{'name': 'cohort_records', 'expression': 'cohort_records'}],
        kpi_breakdowns() | selectattr('breakdown', 'equalto', 'all') | list,
        period='month_start') }}
),

monthly_counts as (
    {{ unpivot_kpis('monthly_counts_wide', kpis | map(attribute='number') | list, period='month_start') }}
),

final as (
    select
        geography_level,
        geography_code,
        cast(kpi_number as {{ dbt.type_int() }}) as kpi_number,
        month_start,
        numerator,
        denominator
    from monthly_counts
)

select * from final
