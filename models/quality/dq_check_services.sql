-- One row per data-quality check that counts problems (a row of seeds/dq_thresholds.csv with a
-- problem_kind) x service that sent anything (and one row, fls_code null, for problems of no
-- service: files refused whole): the problems of the check at the service, the rows or records
-- they touch, what the service sent (rows submitted, records or cohort records: the seed's
-- measured_as) and the share.
-- Why: the report ranks each warning by the share of a service's records it touches and names the
-- services above the threshold; dq_checks takes its measures from here. A problem belongs to a
-- check when its kind is the check's problem_kind and its code matches the check's problem_code
-- (a like pattern; none = every code): each check's problems are named once, in the seed.

with

thresholds as (
    select * from {{ ref('dq_thresholds') }}
    where problem_kind is not null
),

problems as (
    select * from {{ ref('dq_problems') }}
),

submitted_rows as (
    select * from {{ ref('stg_fls_db__submission_records') }}
),

volumes as (
    select * from {{ ref('dq_fls_volumes') }}
),

withdrawals as (
    select * from {{ ref('stg_fls_db__withdrawals') }}
    where is_active
),

check_problems as (
    select
        thresholds.check_name,
        -- '' stands for "no service" until the last step, so that it joins like a code
        coalesce(problems.fls_code, '') as service_key,
        problems.source_file,
        problems.line_number
    from problems
    inner join thresholds
        on
            problems.problem_kind = thresholds.problem_kind
            and (thresholds.problem_code is null or problems.problem_code like thresholds.problem_code)
),

problem_counts as (
    select
        check_name,
        service_key,
        count(*) as problems
    from check_problems
    group by check_name, service_key
),

affected_lines as (
    -- a row with two unusable values is one row affected
    select distinct
        check_name,
        service_key,
        source_file,
        line_number
    from check_problems
),

affected_counts as (
    select
        check_name,
        service_key,
        count(*) as rows_affected
    from affected_lines
    group by check_name, service_key
),

accepted_per_service as (
    select
        fls_code,
        count(*) as rows_accepted
    from submitted_rows
    group by fls_code
),

rejected_per_service as (
    -- a rejected row counts against the service whose file it came from (dq_problems)
    select
        fls_code,
        count(*) as rows_rejected
    from problems
    where problem_kind = 'row rejected' and fls_code is not null
    group by fls_code
),

withdrawn_per_service as (
    -- withdrawn rows were submitted too: they are out of staging, so counted from the withdrawals
    select
        owning_fls_code as fls_code,
        cast(sum(rows_covered) as {{ dbt.type_bigint() }}) as rows_withdrawn
    from withdrawals
    where owning_fls_code is not null
    group by owning_fls_code
),

records_per_service as (
    select
        fls_code,
        cast(sum(records) as {{ dbt.type_bigint() }}) as records,
        cast(sum(cohort_records) as {{ dbt.type_bigint() }}) as cohort_records
    from volumes
    group by fls_code
),

service_codes as (
    select fls_code as service_key from accepted_per_service
    union
    select fls_code as service_key from rejected_per_service
    union
    select fls_code as service_key
    from records_per_service
    where records > 0
    union
    select fls_code as service_key from withdrawn_per_service
    union
    select service_key from problem_counts
),

services as (
    select
        service_codes.service_key,
        coalesce(accepted_per_service.rows_accepted, 0)
        + coalesce(rejected_per_service.rows_rejected, 0)
        + coalesce(withdrawn_per_service.rows_withdrawn, 0) as rows_submitted,
        coalesce(records_per_service.records, 0) as records,
        coalesce(records_per_service.cohort_records, 0) as cohort_records
    from service_codes
    left join accepted_per_service on service_codes.service_key = accepted_per_service.fls_code
    left join rejected_per_service on service_codes.service_key = rejected_per_service.fls_code
    left join withdrawn_per_service on service_codes.service_key = withdrawn_per_service.fls_code
    left join records_per_service on service_codes.service_key = records_per_service.fls_code
),

grid as (
    select
        thresholds.check_name,
        thresholds.measured_as,
        thresholds.severity,
        thresholds.threshold_value,
        services.service_key,
        coalesce(problem_counts.problems, 0) as problems,
        coalesce(affected_counts.rows_affected, 0) as rows_affected,
        case thresholds.measured_as
            when 'service share of records' then 'records'
            when 'service share of cohort records' then 'cohort records'
            else 'rows submitted'
        end as measured_over,
        case
            when services.service_key = '' then null
            when thresholds.measured_as = 'service share of records' then services.records
            when thresholds.measured_as = 'service share of cohort records' then services.cohort_records
            else services.rows_submitted
        end as service_total
    from thresholds
    cross join services
    left join problem_counts
        on
            thresholds.check_name = problem_counts.check_name
            and services.service_key = problem_counts.service_key
    left join affected_counts
        on
            thresholds.check_name = affected_counts.check_name
            and services.service_key = affected_counts.service_key
),

final as (
    select
        check_name,
        nullif(service_key, '') as fls_code,
        problems,
        rows_affected,
        measured_over,
        service_total,
        case
            when service_total > 0 then cast(rows_affected as double) / service_total
        end as share_of_service,
        -- a check measured as a count is above its threshold at a service with more problems than
        -- it; a share, with a larger share; information never is
        severity != 'info'
        and coalesce(
            case
                when measured_as = 'problems' then problems > threshold_value
                else cast(rows_affected as double) / nullif(service_total, 0) > threshold_value
            end,
            false
        ) as is_above_threshold
    from grid
    -- the "no service" row only where there is something to show
    where service_key != '' or problems > 0
)

select * from final
