-- One row per data-quality check of the extract: what it checks in words an audit lead uses,
-- the value measured, the threshold from seeds/dq_thresholds.csv, its severity and whether it
-- passed (measured value at most the threshold; nothing to measure passes).
-- Why: every data-quality fact of `flsdb validate` is computed here, once, in SQL; validate only
-- collects these rows (with the dbt test results and the GX suites) into the report and the gate.
-- `error` checks block publication, `warn` checks are reported.
-- A description may name KPI 1's rule as {key_field_threshold_pct} and
-- {fewest_key_fields_below_threshold_not_met}, and the cohort's age as {minimum_age}: they are
-- filled in from the KPI seed and var minimum_age, so that the seed of checks never writes a rule out.

{%- set kpi_1 = completeness_kpi() %}
{%- set key_field_pct = '%g' % kpi_1.key_field_threshold_pct if kpi_1 else '' %}
{%- set fewest_below = kpi_1.max_key_fields_below_threshold + 1 if kpi_1 else '' %}
{%- set reasons = cohort_exclusion_reasons() %}

with

thresholds as (
    select * from {{ ref('dq_thresholds') }}
),

problems as (
    select * from {{ ref('dq_problems') }}
),

volumes as (
    select * from {{ ref('dq_fls_volumes') }}
),

completeness as (
    select * from {{ ref('kpi_data_completeness') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

latest_year as (
    select max(audit_year) as audit_year
    from volumes
    where records > 0
),

problem_counts as (
    select
        problem_kind,
        problem_code,
        count(*) as problems
    from problems
    group by problem_kind, problem_code
),

problems_classified as (
    -- each kind (and exclusion reason) of problem counts towards one check of the seed
    select
        problem_code,
        problems,
        case
            when problem_kind = 'file refused' then 'files_refused'
            when problem_kind = 'row rejected' then 'rows_rejected'
            when problem_kind = 'newer version rejected' then 'newer_version_rejected'
            when problem_kind = 'warning' then 'field_warnings'
            when problem_kind = 'exclusion' and problem_code = '{{ reasons.under_minimum_age }}'
                then 'excluded_under_50'
            when problem_kind = 'exclusion' and problem_code = '{{ reasons.duplicate_episode }}'
                then 'excluded_duplicate_episode'
            when problem_kind = 'exclusion' and problem_code = '{{ reasons.fracture_after_extract }}'
                then 'excluded_fracture_after_extract'
        end as check_name
    from problem_counts
),

problem_measures as (
    -- a check with no problem measures 0 (the left join), not nothing
    select
        thresholds.check_name,
        cast(coalesce(sum(problems_classified.problems), 0) as double) as measured_value,
        {{ aggregate_strings(
            "problems_classified.problem_code || ' ' || cast(problems_classified.problems as "
            ~ dbt.type_string() ~ ")", '; ', '-problems_classified.problems') }} as detail
    from thresholds
    left join problems_classified on thresholds.check_name = problems_classified.check_name
    where
        thresholds.check_name in (
            'files_refused',
            'rows_rejected',
            'newer_version_rejected',
            'field_warnings',
            'excluded_under_50',
            'excluded_duplicate_episode',
            'excluded_fracture_after_extract'
        )
    group by thresholds.check_name
),

unknown_deprivation as (
    select
        'unknown_deprivation_share' as check_name,
        max(volumes.unknown_deprivation_share) as measured_value,
        {{ aggregate_strings(
            "case when volumes.unknown_deprivation_share > thresholds.threshold_value then "
            ~ "volumes.fls_code || ' ' || cast(round(100 * volumes.unknown_deprivation_share, 1) as "
            ~ dbt.type_string() ~ ") || '%' end", ', ', 'volumes.fls_code') }} as detail
    from volumes
    inner join latest_year on volumes.audit_year = latest_year.audit_year
    cross join thresholds
    where thresholds.check_name = 'unknown_deprivation_share'
),

kpi_1_not_met as (
    select
        'kpi_1_not_met' as check_name,
        cast(count(*) as double) as measured_value,
        {{ aggregate_strings('not_met.fls_code', ', ', 'not_met.fls_code') }} as detail
    from (
        select distinct completeness.fls_code
        from completeness
        inner join latest_year on completeness.audit_year = latest_year.audit_year
        where not completeness.fls_meets_kpi_1
    ) as not_met
),

volume_drop as (
    select
        'cohort_volume_drop_share' as check_name,
        -- a fall is a negative change: measured as a positive share of the year before
        max(-volumes.cohort_change_share) as measured_value,
        {{ aggregate_strings(
            "case when -volumes.cohort_change_share > thresholds.threshold_value then "
            ~ "volumes.fls_code || ' ' || cast(volumes.audit_year as " ~ dbt.type_string()
            ~ ") || ' ' || cast(round(100 * volumes.cohort_change_share, 1) as "
            ~ dbt.type_string() ~ ") || '%' end", ', ',
            'volumes.audit_year') }} as detail
    from volumes
    cross join thresholds
    where thresholds.check_name = 'cohort_volume_drop_share'
),

kpis_per_level as (
    select
        audit_year,
        geography_level,
        count(distinct kpi_number) as kpis
    from {{ ref('kpi_results') }}
    group by audit_year, geography_level
),

every_kpi as (
    select
        'kpi_results_every_kpi' as check_name,
        cast(count(*) as double) as measured_value,
        {{ aggregate_strings(
            "cast(kpis_per_level.audit_year as " ~ dbt.type_string()
            ~ ") || ' ' || kpis_per_level.geography_level", ', ',
            'kpis_per_level.audit_year') }} as detail
    from kpis_per_level
    where kpis_per_level.kpis != (select count(*) from kpi_definitions)
),

rows_per_geography as (
    select
        audit_year,
        geography_level,
        geography_code,
        count(*) as result_rows
    from {{ ref('kpi_results') }}
    group by audit_year, geography_level, geography_code
),

geography_rows as (
    select
        'kpi_results_geography_rows' as check_name,
        cast(count(*) as double) as measured_value,
        {{ aggregate_strings(
            "cast(geographies.audit_year as " ~ dbt.type_string()
            ~ ") || ' ' || geographies.geography_code", ', ',
            'geographies.audit_year') }} as detail
    from rows_per_geography as geographies
    inner join rows_per_geography as national
        on
            geographies.audit_year = national.audit_year
            and national.geography_level = 'national'
    where geographies.result_rows > national.result_rows
),

seed_rows_unmatched as (
    select
        'seed_rows_unmatched' as check_name,
        cast(count(*) as double) as measured_value,
        {{ aggregate_strings('unmatched.description', '; ', 'unmatched.description') }} as detail
    from {{ ref('dq_seed_rows') }} as unmatched
    where not unmatched.is_matched
),

measures as (
    select * from problem_measures
    union all
    select * from seed_rows_unmatched
    union all
    select * from unknown_deprivation
    union all
    select * from kpi_1_not_met
    union all
    select * from volume_drop
    union all
    select * from every_kpi
    union all
    select * from geography_rows
),

final as (
    select
        thresholds.check_name,
        replace(
            replace(
                replace(thresholds.description, '{key_field_threshold_pct}', '{{ key_field_pct }}'),
                '{fewest_key_fields_below_threshold_not_met}', '{{ fewest_below }}'
            ),
            '{minimum_age}', '{{ var("minimum_age") }}'
        ) as description,
        measures.measured_value,
        thresholds.threshold_value,
        thresholds.severity,
        -- nothing to measure (no year before, no cohort) passes; a seed row that no measure
        -- above computes fails, so that a check cannot be added to the seed and pass unseen
        measures.check_name is not null
        and coalesce(measures.measured_value <= thresholds.threshold_value, true) as passed,
        measures.detail
    from thresholds
    left join measures on thresholds.check_name = measures.check_name
)

select * from final
