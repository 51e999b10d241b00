-- One row per audit year: the records submitted nationally (every accepted record, in the cohort
-- or not), the headline of the report at a glance.
-- Why: the row-level episodes never leave the building; this count is all the site needs of them.

with

episodes as (
    select * from {{ ref('fct_episodes') }}
),

final as (
    select
        cast(audit_year as {{ dbt.type_int() }}) as audit_year,
        cast(count(*) as {{ dbt.type_bigint() }}) as records_submitted,
        max(extract_date) as extract_date,
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from episodes
    group by audit_year
)

select * from final
