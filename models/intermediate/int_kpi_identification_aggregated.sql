-- One row per audit year x geography x breakdown (all, sex, age band) x KPI for KPIs 2 and 3:
-- identified cohort records against the expected fragility fractures in the catchments of the
-- FLSs active that year. An active FLS that identified nobody still counts (numerator 0); the
-- records of an FLS in a year it is not registered for count in neither numerator nor denominator
-- (int_episodes_kpi_flagged), and it gets no KPI 2/3 row that year. Each row carries the note on
-- the population estimate behind its expected count (int_expected_fractures_calculated).

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
        breakdown_age_band,
        sum({{ count_if_true('kpi_2_in_numerator') }}) as kpi_2_numerator,
        sum({{ count_if_true('kpi_3_in_numerator') }}) as kpi_3_numerator,
        0 as kpi_2_denominator,
        0 as kpi_3_denominator
    from episodes
    where is_fls_registered_for_audit_year
    group by audit_year, fls_code, country_code, region_code, breakdown_sex, breakdown_age_band
),

expected_by_fls as (
    -- Expected counts split by the same breakdown values as the episodes (sex Male/Female), for
    -- the audit years that have cohort records, where results are reported.
    select
        expected_fractures.audit_year,
        expected_fractures.fls_code,
        fls_registry.country_code,
        fls_registry.region_code,
        case expected_fractures.sex when 'male' then 'Male' when 'female' then 'Female' end as breakdown_sex,
        expected_fractures.breakdown_age_band,
        0 as kpi_2_numerator,
        0 as kpi_3_numerator,
        case when expected_fractures.fracture_site != 'Spine' then expected_fractures.expected_fractures else 0 end
            as kpi_2_denominator,
        case when expected_fractures.fracture_site = 'Spine' then expected_fractures.expected_fractures else 0 end
            as kpi_3_denominator
    from expected_fractures
    inner join fls_registry
        on expected_fractures.fls_code = fls_registry.fls_code
),

observed_and_expected as (
    select * from expected_by_fls
    union all
    select * from identified_by_fls
),

aggregated as (
    {{ aggregate_to_levels_and_breakdowns(
        'observed_and_expected',
        [{'name': 'kpi_2_numerator', 'expression': 'kpi_2_numerator'},
         {'name': 'kpi_2_denominator', 'expression': 'kpi_2_denominator'},
         {'name': 'kpi_3_numerator', 'expression': 'kpi_3_numerator'},
         {'name': 'kpi_3_denominator', 'expression': 'kpi_3_denominator'}],
        identification_breakdowns()) }}
),

unpivoted as (
    {{ unpivot_kpis('aggregated', [2, 3]) }}
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
