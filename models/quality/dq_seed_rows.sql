-- One row per row of the seeds people edit by hand to steer the charts and the outlier process
-- (spc_rebase_months, spc_fixed_baselines, outlier_decisions): the row as written, what it matches
-- once its code is read as the warehouse spells codes (normalise_code: `syn012 ` is SYN012), and a
-- sentence naming the row when it matches nothing.
-- Why: a row that matches nothing used to be ignored without a word, so a rebase or a decision
-- someone believed in was silently not applied. dq_checks blocks publication on such rows
-- (check seed_rows_unmatched, naming them) and tests/assert_seed_rows_match.sql warns in the build.

{%- set string = dbt.type_string() %}

with

rebase_months as (
    select * from {{ ref('spc_rebase_months') }}
),

fixed_baselines as (
    select * from {{ ref('spc_fixed_baselines') }}
),

outlier_decisions as (
    select * from {{ ref('outlier_decisions') }}
),

months as (
    select * from {{ ref('int_kpi_months_measured') }}
),

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

series as (
    -- The monthly series of a code and KPI, at every level that uses the code (W92000004 is a
    -- country and a region), with its first and last month.
    select
        geography_code,
        kpi_number,
        min(month_start) as first_month_start,
        max(month_start) as last_month_start
    from months
    group by geography_code, kpi_number
),

fls_results as (
    select distinct
        audit_year,
        geography_code as fls_code,
        kpi_number
    from kpi_results
    where geography_level = 'fls' and breakdown = 'all'
),

seed_rows as (
    select
        'spc_rebase_months' as seed_name,
        geography_code as code_as_written,
        {{ normalise_code('geography_code') }} as code,
        kpi_number,
        'geography_code ''' || coalesce(geography_code, '') || ''', kpi_number '
        || coalesce(cast(kpi_number as {{ string }}), '') || ', rebase_month '
        || coalesce(cast(rebase_month as {{ string }}), '') as row_as_written,
        rebase_month,
        cast(null as {{ dbt.type_int() }}) as audit_year
    from rebase_months
    union all
    select
        'spc_fixed_baselines' as seed_name,
        geography_code as code_as_written,
        {{ normalise_code('geography_code') }} as code,
        kpi_number,
        'geography_code ''' || coalesce(geography_code, '') || ''', kpi_number '
        || coalesce(cast(kpi_number as {{ string }}), '') || ', baseline_points '
        || coalesce(cast(baseline_points as {{ string }}), '') as row_as_written,
        cast(null as date) as rebase_month,
        cast(null as {{ dbt.type_int() }}) as audit_year
    from fixed_baselines
    union all
    select
        'outlier_decisions' as seed_name,
        fls_code as code_as_written,
        {{ normalise_code('fls_code') }} as code,
        kpi_number,
        'audit_year ' || coalesce(cast(audit_year as {{ string }}), '') || ', fls_code '''
        || coalesce(fls_code, '') || ''', kpi_number ' || coalesce(cast(kpi_number as {{ string }}), '')
        || ', status ' || coalesce(status, '') as row_as_written,
        cast(null as date) as rebase_month,
        cast(audit_year as {{ dbt.type_int() }}) as audit_year
    from outlier_decisions
),

seed_rows_read as (
    -- Two rows that say the same once their codes are read (SYN012 and `syn012 `) would both apply.
    select
        *,
        count(*) over (
            partition by seed_name, code, kpi_number, rebase_month, audit_year
        ) as rows_read_alike
    from seed_rows
),

matched as (
    select
        seed_rows_read.*,
        series.first_month_start,
        series.last_month_start,
        series.geography_code is not null as has_series,
        fls_results.fls_code is not null as has_fls_result
    from seed_rows_read
    left join series
        on
            seed_rows_read.code = series.geography_code
            and seed_rows_read.kpi_number = series.kpi_number
    left join fls_results
        on
            seed_rows_read.seed_name = 'outlier_decisions'
            and seed_rows_read.audit_year = fls_results.audit_year
            and seed_rows_read.code = fls_results.fls_code
            and seed_rows_read.kpi_number = fls_results.kpi_number
),

judged as (
    select
        *,
        case
            when seed_name = 'outlier_decisions' and not has_fls_result
                then
                    'no FLS result of KPI ' || cast(kpi_number as {{ string }}) || ' at '
                    || coalesce(code, '(blank)') || ' in ' || cast(audit_year as {{ string }})
                    || ' (breakdown all), so the decision is attached to nothing'
            when seed_name != 'outlier_decisions' and not has_series
                then
                    'no monthly series of KPI ' || coalesce(cast(kpi_number as {{ string }}), '(blank)')
                    || ' at ' || coalesce(code, '(blank)') || ', so the row changes no chart'
            when seed_name = 'spc_rebase_months' and rebase_month <= first_month_start
                then
                    'the rebase month is not after the first month of the series ('
                    || cast(first_month_start as {{ string }}) || '), so it changes nothing'
            when seed_name = 'spc_rebase_months' and rebase_month > last_month_start
                then
                    'the rebase month is after the last month of the series ('
                    || cast(last_month_start as {{ string }}) || '), so it changes nothing yet'
            when rows_read_alike > 1
                then
                    'another row says the same once codes are read as the warehouse spells them ('
                    || code || ')'
        end as problem
    from matched
),

final as (
    select
        seed_name,
        'seeds/' || seed_name || '.csv' as seed_file,
        row_as_written,
        code_as_written,
        code,
        cast(kpi_number as {{ dbt.type_int() }}) as kpi_number,
        problem is null as is_matched,
        problem,
        case
            when problem is not null
                then
                    'seeds/' || seed_name || '.csv, the row ' || row_as_written || ': ' || problem
                    || '. Correct or remove the row.'
        end as description
    from judged
)

select * from final
