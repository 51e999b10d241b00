-- One row per monthly series (geography level x geography x KPI 2-11, breakdown all) and complete
-- calendar month of the fracture date F: numerator, denominator and value (monitoring-spec.md
-- section 1). Why: services need a monthly view to see whether a change worked; the SPC charts
-- (int_kpi_months_charted) are drawn from these rows.
{#- The KPIs, their value type and completeness lag come from the KPI seed (macros/kpi_monthly_series.sql). -#}
{%- set kpis = kpi_monthly_series() %}
{%- set proportion_kpis = kpis | selectattr('value_type', '!=', 'ratio_to_expected') | list %}
{%- set measures = [] %}
{%- for kpi in kpis %}
    {%- do measures.append({'name': 'kpi_' ~ kpi.number ~ '_numerator',
        'expression': count_if_true('kpi_' ~ kpi.number ~ '_in_numerator')}) %}
    {#- KPI 2/3 denominators are expected counts, joined below; 0 here keeps the long row shape. #}
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

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
    where value_type != 'completeness'
),

yearly_expected_counts as (
    -- The audit year's expected count of KPI 2/3 at each geography (breakdown all).
    select
        audit_year,
        geography_level,
        geography_code,
        kpi_number,
        denominator as expected_fractures
    from {{ ref('int_kpi_identification_aggregated') }}
    where breakdown = 'all'
),

calendar_bounds as (
    -- The calendar runs from the first month with cohort records to the month of E: from the data,
    -- never from the clock. (An E before the first month leaves that one month, which the
    -- completeness rule below then drops.)
    select
        min(month_start) as first_month_start,
        greatest(
            min(month_start),
            cast({{ dbt.date_trunc('month', extract_date()) }} as date)
        ) as last_month_start
    from episodes
),

calendar_months as (
    {{ month_starts('calendar_bounds', 'calendar_bounds.first_month_start', 'calendar_bounds.last_month_start') }}
),

calendar_months_measured as (
    select
        month_start,
        cast(
            {{ dbt.dateadd('day', -1, dbt.dateadd('month', 1, 'month_start')) }}
            as date
        ) as month_end,
        {{ dbt.datediff(
            'month_start',
            dbt.dateadd('month', 1, 'month_start'),
            'day'
        ) }} as days_in_month,
        {{ dbt.datediff(
            dbt.date_trunc('year', 'month_start'),
            dbt.dateadd('year', 1, dbt.date_trunc('year', 'month_start')),
            'day'
        ) }} as days_in_year,
        cast(extract(year from month_start) as integer) as audit_year
    from calendar_months
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

series_starts as (
    -- A series starts at the geography's first month with cohort records.
    select
        geography_level,
        geography_code,
        min(month_start) as first_month_start
    from monthly_counts_wide
    group by geography_level, geography_code
),

series_months as (
    -- A month belongs to a KPI's series once complete for that KPI: its last day + lag <= E.
    select
        series_starts.geography_level,
        series_starts.geography_code,
        kpi_definitions.kpi_number,
        kpi_definitions.value_type,
        calendar_months_measured.month_start,
        calendar_months_measured.audit_year,
        calendar_months_measured.days_in_month,
        calendar_months_measured.days_in_year
    from series_starts
    cross join kpi_definitions
    inner join calendar_months_measured
        on series_starts.first_month_start <= calendar_months_measured.month_start
    where
        {{ dbt.dateadd('day', 'kpi_definitions.completeness_lag_days', 'calendar_months_measured.month_end') }}
        <= {{ extract_date() }}
),

measured as (
    select
        series_months.geography_level,
        series_months.geography_code,
        series_months.kpi_number,
        series_months.value_type,
        series_months.month_start,
        cast(coalesce(monthly_counts.numerator, 0) as double) as numerator,
        cast(
            case
                when series_months.value_type = 'ratio_to_expected'
                    then
                        coalesce(yearly_expected_counts.expected_fractures, 0)
                        * series_months.days_in_month / series_months.days_in_year
                else coalesce(monthly_counts.denominator, 0)
            end as double
        ) as denominator
    from series_months
    left join monthly_counts
        on
            series_months.geography_level = monthly_counts.geography_level
            and series_months.geography_code = monthly_counts.geography_code
            and series_months.kpi_number = monthly_counts.kpi_number
            and series_months.month_start = monthly_counts.month_start
    left join yearly_expected_counts
        on
            series_months.geography_level = yearly_expected_counts.geography_level
            and series_months.geography_code = yearly_expected_counts.geography_code
            and series_months.kpi_number = yearly_expected_counts.kpi_number
            and series_months.audit_year = yearly_expected_counts.audit_year
),

final as (
    select
        geography_level,
        geography_code,
        kpi_number,
        value_type,
        month_start,
        numerator,
        denominator,
        case when denominator > 0 then 100.0 * numerator / denominator end as value_pct
    from measured
)

select * from final
