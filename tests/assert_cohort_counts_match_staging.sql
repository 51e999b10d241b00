-- Reconciliation: every distinct record (FLS Code + Record ID) staged appears once in
-- fct_episodes, and each year's cohort size equals the national KPI 4 denominator (KPI 4 counts
-- every cohort record). Returns a row for each mismatch.

with

staged as (
    select count(distinct fls_code || '|' || record_id) as records
    from {{ ref('stg_fls_db__submission_records') }}
),

episodes as (
    select count(*) as records from {{ ref('fct_episodes') }}
),

cohort as (
    select
        audit_year,
        count(*) as cohort_records
    from {{ ref('fct_episodes') }}
    where is_in_cohort
    group by audit_year
),

kpi_4 as (
    select
        audit_year,
        denominator
    from {{ ref('kpi_results') }}
    where kpi_number = 4 and geography_level = 'national' and breakdown = 'all'
)

select
    'records' as check_name,
    cast(null as integer) as audit_year,
    staged.records as expected_count,
    episodes.records as actual_count
from staged
cross join episodes
where staged.records != episodes.records

union all

select
    'cohort' as check_name,
    cohort.audit_year,
    cohort.cohort_records as expected_count,
    kpi_4.denominator as actual_count
from cohort
full outer join kpi_4
    on cohort.audit_year = kpi_4.audit_year
where coalesce(cohort.cohort_records, -1) != coalesce(kpi_4.denominator, -2)
