-- One row per data-quality check of the extract (each row of seeds/dq_thresholds.csv measured in
-- the warehouse): what it checks in words an audit lead uses, the value measured, the threshold,
-- its severity, whether it passed (measured value at most the threshold; nothing to measure
-- passes; information always does), the share of the nation's rows or records it touches and the
-- services it concerns.
-- Why: every data-quality fact of `flsdb validate` is computed here, once, in SQL; validate only
-- collects these rows (with the dbt test results and the GX suites) into the report and the gate.
-- `error` checks block publication, `warn` checks are reported, `info` checks are information.
-- A check that counts problems is measured from dq_check_services; the others (measured_as
-- `own measure`) each have a step below. Seed rows measured as `change since approved` are the
-- report's comparison with the last approved extract, not checks of the warehouse.
-- A description may name KPI 1's rule as {key_field_threshold_pct} and
-- {fewest_key_fields_below_threshold_not_met}, and the cohort's age as {minimum_age}: they are
-- filled in from the KPI seed and var minimum_age, so that the seed of checks never writes a rule out.

{%- set kpi_1 = completeness_kpi() %}
{%- set key_field_pct = '%g' % kpi_1.key_field_threshold_pct if kpi_1 else '' %}
{%- set fewest_below = kpi_1.max_key_fields_below_threshold + 1 if kpi_1 else '' %}

with

thresholds as (
    select * from {{ ref('dq_thresholds') }}
    where measured_as != 'change since approved'
),

check_services as (
    select * from {{ ref('dq_check_services') }}
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

problem_measures as (
    -- a count of problems in the whole extract, or the largest share at any one service
    select
        check_services.check_name,
        case
            when max(thresholds.measured_as) = 'problems' then cast(sum(check_services.problems) as double)
            else max(check_services.share_of_service)
        end as measured_value,
        -- of every service's rows or records; unknown when the problems belong to no service
        -- (a file refused whole)
        case
            when sum(case when check_services.fls_code is null then check_services.problems end) > 0
                then null
            else
                cast(sum(check_services.rows_affected) as double)
                / nullif(sum(check_services.service_total), 0)
        end as national_share,
        {{ aggregate_strings(
            "case when check_services.is_above_threshold then check_services.fls_code end", ', ',
            '-check_services.share_of_service') }} as services_concerned,
        {{ aggregate_strings(
            "case when check_services.is_above_threshold then check_services.fls_code || ' '"
            ~ " || cast(check_services.rows_affected as " ~ dbt.type_string() ~ ") || ' of '"
            ~ " || cast(check_services.service_total as " ~ dbt.type_string() ~ ") || ' '"
            ~ " || check_services.measured_over end", '; ', '-check_services.share_of_service') }} as detail
    from check_services
    inner join thresholds on check_services.check_name = thresholds.check_name
    group by check_services.check_name
),

kpi_1_not_met as (
    select
        'kpi_1_not_met' as check_name,
        cast(count(*) as double) as measured_value,
        cast(null as double) as national_share,
        {{ aggregate_strings('not_met.fls_code', ', ', 'not_met.fls_code') }} as services_concerned,
        {{ aggregate_strings('not_met.fls_code', ', ', 'not_met.fls_code') }} as detail
    from (
        select distinct completeness.fls_code
        from completeness
        inner join latest_year on completeness.audit_year = latest_year.audit_year
        where not completeness.fls_meets_kpi_1
    ) as not_met
),

volume_drop as (
    -- nothing to measure (no volumes) is one row with no value, which passes
    select
        thresholds.check_name,
        -- a fall is a negative change: measured as a positive share of the year before
        max(-volumes.cohort_change_share) as measured_value,
        cast(null as double) as national_share,
        {{ aggregate_strings(
            "case when -volumes.cohort_change_share > thresholds.threshold_value then volumes.fls_code end",
            ', ', 'volumes.cohort_change_share') }} as services_concerned,
        {{ aggregate_strings(
            "case when -volumes.cohort_change_share > thresholds.threshold_value then "
            ~ "volumes.fls_code || ' ' || cast(volumes.audit_year as " ~ dbt.type_string()
            ~ ") || ' ' || cast(round(100 * volumes.cohort_change_share, 1) as "
            ~ dbt.type_string() ~ ") || '%' end", ', ',
            'volumes.audit_year') }} as detail
    from thresholds
    left join volumes on true
    where thresholds.check_name = 'cohort_volume_drop_share'
    group by thresholds.check_name
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
        cast(null as double) as national_share,
        cast(null as {{ dbt.type_string() }}) as services_concerned,
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
        cast(null as double) as national_share,
        cast(null as {{ dbt.type_string() }}) as services_concerned,
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
        cast(null as double) as national_share,
        cast(null as {{ dbt.type_string() }}) as services_concerned,
        {{ aggregate_strings('unmatched.description', '; ', 'unmatched.description') }} as detail
    from {{ ref('dq_seed_rows') }} as unmatched
    where not unmatched.is_matched
),

measures as (
    select * from problem_measures
    union all
    select * from seed_rows_unmatched
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
        thresholds.short_label,
        thresholds.measured_as,
        measures.measured_value,
        thresholds.threshold_value,
        thresholds.severity,
        -- nothing to measure (no year before, no cohort) passes and information always does; a
        -- seed row that no measure above computes fails, so that a check cannot be added to the
        -- seed and pass unseen
        measures.check_name is not null
        and (
            thresholds.severity = 'info'
            or coalesce(measures.measured_value <= thresholds.threshold_value, true)
        ) as passed,
        measures.national_share,
        measures.services_concerned,
        measures.detail,
        thresholds.threshold_rationale
    from thresholds
    left join measures on thresholds.check_name = measures.check_name
)

select * from final
