-- What changed since the last approved extract: the warehouse being validated against the latest
-- publication in the extract history (src/flsdb/publish/history.sql). Read by
-- src/flsdb/quality/changes.py, which runs the named blocks below ("-- name: <block>") on an
-- in-memory DuckDB connection with the warehouse attached read-only as `warehouse` and the history
-- attached read-only as `history`. DuckDB SQL: not a dbt model, never runs on Spark.
--
-- Every publication in the history was approved (`flsdb publish` records only what the gate let
-- through), so "the last approved extract" is the latest publication: latest extract date, then
-- latest publication time, as the history's own latest_two_extracts orders them.
-- A problem is the same problem when its identity matches (history.sql, dq_problem_history: kind,
-- code, service, file, line, field); a KPI value is restated when it moved by the history's own
-- rule (its value_moved macro, called from the history file).


-- name: approved_extract
create or replace temp table approved as
select
    publication_id,
    extract_date,
    published_at,
    dq_problem_source is not null as has_problems
from history.main.extracts
order by extract_date desc, published_at desc, publication_id desc
limit 1;


-- name: problem_changes
-- One row per problem identity new since the approved extract (in the warehouse, not in the
-- approved extract) or resolved (the other way round); none when the approved extract recorded no
-- problems.
create or replace temp table problem_changes as
with

current_problems as (
    select distinct
        problem_kind,
        problem_code,
        fls_code,
        source_file,
        line_number,
        field_name,
        description
    from warehouse.quality.dq_problems
),

approved_problems as (
    select distinct
        problems.problem_kind,
        problems.problem_code,
        problems.fls_code,
        problems.source_file,
        problems.line_number,
        problems.field_name,
        problems.description
    from history.main.dq_problem_history as problems
    inner join approved on problems.publication_id = approved.publication_id
    where approved.has_problems
),

identified as (
    -- a problem's identity, written once (nulls as empty: no part of it is ever empty text)
    select
        problems.*,
        concat_ws(
            chr(31), problem_kind, coalesce(problem_code, ''), coalesce(fls_code, ''),
            coalesce(source_file, ''), coalesce(cast(line_number as varchar), ''),
            coalesce(field_name, '')
        ) as problem_identity
    from (
        select 'current' as side, * from current_problems
        union all
        select 'approved' as side, * from approved_problems
    ) as problems
),

current_identities as (
    select * from identified where side = 'current'
),

approved_identities as (
    select * from identified where side = 'approved'
),

new_problems as (
    select 'new' as change, current_identities.*
    from current_identities
    anti join approved_identities using (problem_identity)
    where (select has_problems from approved)
),

resolved_problems as (
    select 'resolved' as change, approved_identities.*
    from approved_identities
    anti join current_identities using (problem_identity)
)

select * exclude (side, problem_identity) from new_problems
union all
select * exclude (side, problem_identity) from resolved_problems;


-- name: problem_changes_by_service
-- New and resolved problems by service and kind, most first.
select
    change,
    fls_code,
    problem_kind,
    count(*) as problems,
    count(distinct source_file) as files
from problem_changes
group by change, fls_code, problem_kind
order by problems desc, change, fls_code, problem_kind;


-- name: problem_changes_listed
select *
from problem_changes
order by change, fls_code, problem_kind, source_file, line_number, field_name;


-- name: volume_changes
-- One row per service: its cohort records over the audit years both extracts hold, in the approved
-- extract and now, and the move as a share of the approved figure. A service's cohort is the
-- largest denominator of its episode-grain KPIs (breakdown `all`): each is a part of the cohort and
-- those "of all cohort records" are all of it (docs/specification/kpi-definitions.md), and the history holds the
-- KPI results, so both sides are measured the same way. Threshold: dq_thresholds, volume_change_since_approved.
with

threshold as (
    select threshold_value
    from warehouse.reference.dq_thresholds
    where check_name = 'volume_change_since_approved'
),

episode_kpis as (
    select kpi_number
    from warehouse.reference.kpi_definitions
    where grain = 'episode'
),

current_cohorts as (
    select
        results.audit_year,
        results.geography_code as fls_code,
        max(results.geography_name) as fls_name,
        max(results.denominator) as cohort_records
    from warehouse.marts.kpi_results as results
    inner join episode_kpis on results.kpi_number = episode_kpis.kpi_number
    where results.geography_level = 'fls' and results.breakdown = 'all'
    group by results.audit_year, results.geography_code
),

approved_cohorts as (
    select
        results.audit_year,
        results.geography_code as fls_code,
        max(results.geography_name) as fls_name,
        max(results.denominator) as cohort_records
    from history.main.kpi_result_history as results
    inner join approved on results.publication_id = approved.publication_id
    inner join episode_kpis on results.kpi_number = episode_kpis.kpi_number
    where results.geography_level = 'fls' and results.breakdown = 'all'
    group by results.audit_year, results.geography_code
),

common_years as (
    select audit_year from current_cohorts
    intersect
    select audit_year from approved_cohorts
),

per_service as (
    select
        coalesce(current_cohorts.fls_code, approved_cohorts.fls_code) as fls_code,
        max(coalesce(current_cohorts.fls_name, approved_cohorts.fls_name)) as fls_name,
        coalesce(sum(approved_cohorts.cohort_records), 0) as approved_cohort_records,
        coalesce(sum(current_cohorts.cohort_records), 0) as current_cohort_records
    from current_cohorts
    full outer join approved_cohorts
        on
            current_cohorts.fls_code = approved_cohorts.fls_code
            and current_cohorts.audit_year = approved_cohorts.audit_year
    where coalesce(current_cohorts.audit_year, approved_cohorts.audit_year) in (select audit_year from common_years)
    group by coalesce(current_cohorts.fls_code, approved_cohorts.fls_code)
),

final as (
    select
        per_service.*,
        (select string_agg(cast(audit_year as varchar), ', ' order by audit_year) from common_years)
            as audit_years,
        (current_cohort_records - approved_cohort_records)
        / nullif(approved_cohort_records, 0) as change_share,
        threshold.threshold_value,
        -- a service with no cohort before and one now has moved by more than any share
        coalesce(
            abs(current_cohort_records - approved_cohort_records)
            > threshold.threshold_value * approved_cohort_records,
            false
        ) and current_cohort_records != approved_cohort_records as is_above_threshold
    from per_service
    cross join threshold
)

select * from final
order by is_above_threshold desc, abs(coalesce(change_share, 1e9)) desc, fls_code;


-- name: kpi_changes
-- Every KPI result (breakdown `all`) restated since the approved extract (its value moved by the
-- history's rule), added (a result the approved extract did not have) or removed.
with

current_results as (
    select *
    from warehouse.marts.kpi_results
    where breakdown = 'all'
),

approved_results as (
    select results.*
    from history.main.kpi_result_history as results
    inner join approved on results.publication_id = approved.publication_id
    where results.breakdown = 'all'
),

compared as (
    select
        coalesce(current_results.audit_year, approved_results.audit_year) as audit_year,
        coalesce(current_results.geography_level, approved_results.geography_level) as geography_level,
        coalesce(current_results.geography_code, approved_results.geography_code) as geography_code,
        coalesce(current_results.geography_name, approved_results.geography_name) as geography_name,
        coalesce(current_results.kpi_number, approved_results.kpi_number) as kpi_number,
        coalesce(current_results.kpi_name, approved_results.kpi_name) as kpi_name,
        approved_results.numerator as approved_numerator,
        current_results.numerator as current_numerator,
        approved_results.denominator as approved_denominator,
        current_results.denominator as current_denominator,
        approved_results.value_pct as approved_value_pct,
        current_results.value_pct as current_value_pct,
        current_results.value_pct - approved_results.value_pct as value_move,
        case
            when approved_results.kpi_number is null then 'added'
            when current_results.kpi_number is null then 'removed'
            when history.main.value_moved(approved_results.value_pct, current_results.value_pct)
                then 'restated'
        end as change
    from current_results
    full outer join approved_results
        on
            current_results.audit_year = approved_results.audit_year
            and current_results.geography_level = approved_results.geography_level
            and current_results.geography_code = approved_results.geography_code
            and current_results.kpi_number = approved_results.kpi_number
)

select *
from compared
where change is not null
order by
    case geography_level when 'national' then 1 when 'country' then 2 when 'region' then 3 else 4 end,
    change, abs(coalesce(value_move, 0)) desc, kpi_number, audit_year, geography_code;
