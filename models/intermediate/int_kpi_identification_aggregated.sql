-- One row per audit year x geography x breakdown (all, sex, age band) x KPI for KPIs 2 and 3:
-- identified cohort records against the expected fragility fractures in the catchments of the
-- FLSs active that year. An active FLS that identified nobody still counts (numerator 0); the
-- records of an FLS in a year it is not registered for count in neither numerator nor denominator
-- (int_episodes_kpi_flagged), and it gets no KPI 2/3 row that year. Each row carries the note on
-- the population estimate behind its expected count (int_expected_fractures_calculated).
-- The KPIs are the kpi_definitions seed's rows of grain `expected_caseload`: each counts its
-- `kpi_<n>_in_numerator` flag against the expected fractures its `expected_fractures_filter` picks.

{%- set identification_kpis = kpis_of_grain('expected_caseload') %}
{%- set measures = [] %}
{%- for kpi in identification_kpis %}
    {%- for part in ['numerator', 'denominator'] %}
        {%- set column = 'kpi_' ~ kpi.kpi_number ~ '_' ~ part %}
        {%- do measures.append({'name': column, 'expression': column}) %}
    {%- endfor %}
{%- endfor %}

with

episodes as (
    select * from {{ ref('int_episodes_kpi_flagged') }}
),

expected_fractures as (
    select * from {{ ref('int_expected_fractures_calculated') }}
),

fls_registry as (
    select * from {{ ref('fls_registry') }}
),

identified_by_fls as (
    -- Counted per FLS and breakdown first: the union below is read once per level and breakdown,
    -- and DuckDB materialises a CTE that is read more than once (DEVELOPERS.md, "Performance").
    select
        audit_year,
        fls_code,
        country_code,
        region_code,
        breakdown_sex,
        {%- for kpi in identification_kpis %}
            sum({{ count_if_true('kpi_' ~ kpi.kpi_number ~ '_in_numerator') }}) as kpi_{{ kpi.kpi_number }}_numerator,
            0 as kpi_{{ kpi.kpi_number }}_denominator,
        {%- endfor %}
        breakdown_age_band
    from episodes
    where is_fls_registered_for_audit_year
    group by audit_year, fls_code, country_code, region_code, breakdown_sex, breakdown_age_band
),

expected_by_kpi as (
    -- Each KPI's denominator: the expected fractures its seed row's expected_fractures_filter picks
    -- (a condition on this model's columns, e.g. the fracture site).
    select
        audit_year,
        fls_code,
        sex,
        {%- for kpi in identification_kpis %}
            case when {{ kpi.expected_fractures_filter }} then expected_fractures else 0 end
                as kpi_{{ kpi.kpi_number }}_denominator,
        {%- endfor %}
        breakdown_age_band
    from expected_fractures
),

expected_by_fls as (
    -- Expected counts split by the same breakdown values as the episodes (sex Male/Female), for
    -- the audit years that have cohort records, where results are reported.
    select
        expected_by_kpi.audit_year,
        expected_by_kpi.fls_code,
        fls_registry.country_code,
        fls_registry.region_code,
        case expected_by_kpi.sex when 'male' then 'Male' when 'female' then 'Female' end as breakdown_sex,
        -- In the order of identified_by_fls: the union below is by position.
        {%- for kpi in identification_kpis %}
            0 as kpi_{{ kpi.kpi_number }}_numerator,
            expected_by_kpi.kpi_{{ kpi.kpi_number }}_denominator,
        {%- endfor %}
        expected_by_kpi.breakdown_age_band
    from expected_by_kpi
    inner join fls_registry
        on expected_by_kpi.fls_code = fls_registry.fls_code
),

observed_and_expected as (
    select * from expected_by_fls
    union all
    select * from identified_by_fls
),

aggregated as (
    {{ aggregate_to_levels_and_breakdowns('observed_and_expected', measures, identification_breakdowns()) }}
),

unpivoted as (
    {{ unpivot_kpis('aggregated', identification_kpis | map(attribute='kpi_number') | list) }}
),

denominator_notes as (
    -- One note per audit year: the population estimate is chosen per year, not per FLS.
    select distinct
        audit_year,
        denominator_note
    from {{ ref('int_expected_fractures_calculated') }}
),

final as (
    select
        unpivoted.*,
        denominator_notes.denominator_note
    from unpivoted
    left join denominator_notes
        on unpivoted.audit_year = denominator_notes.audit_year
)

select * from final
