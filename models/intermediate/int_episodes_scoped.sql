-- One row per record (current version only), with the deprivation of its LSOA, the extract date,
-- and whether it is in the audit cohort or why not (kpi-spec.md, "Cohort(Y)"): aged 50 or over at
-- the fracture, not a duplicate episode, and fractured on or before the extract date.
-- A view, like int_submission_records_versioned: its readers take a few of its columns each. As
-- there, the episode window sees only key columns and is joined back on FLS code + Record ID,
-- which names one current record.
{{ config(materialized='view') }}

with

records as (
    select * from {{ ref('int_submission_records_versioned') }}
    where is_current_version
),

fls_registry as (
    select * from {{ ref('fls_registry') }}
),

lsoa_deprivation as (
    select * from {{ ref('int_lsoas_deprivation_joined') }}
),

extract_date as (
    select {{ extract_date() }} as extract_date
),

episode_ranks as (
    -- The same patient with the same index fracture date at the same FLS under different
    -- Record IDs is one episode: the latest Last Updated is kept.
    select
        fls_code,
        record_id,
        row_number() over (
            partition by fls_code, patient_pseudonym, fracture_date
            order by last_updated_at desc, load_order desc, line_number desc
        ) as episode_rank
    -- read from the model, not from the records CTE: a CTE read twice is materialised whole
    from {{ ref('int_submission_records_versioned') }}
    where is_current_version
),

episodes_ranked as (
    select
        records.*,
        episode_ranks.episode_rank
    from records
    inner join episode_ranks
        on
            records.fls_code = episode_ranks.fls_code
            and records.record_id = episode_ranks.record_id
),

final as (
    select
        episodes_ranked.*,
        extract_date.extract_date,
        fls_registry.country_code,
        fls_registry.region_code,
        lsoa_deprivation.deprivation_index,
        lsoa_deprivation.deprivation_decile,
        coalesce(cast(lsoa_deprivation.deprivation_quintile as {{ dbt.type_string() }}), 'unknown')
            as deprivation_quintile,
        case
            when episodes_ranked.age_at_fracture < {{ var('minimum_age') }} then 'aged under 50 at the fracture'
            when episodes_ranked.episode_rank > 1 then 'duplicate episode'
            when episodes_ranked.fracture_date > extract_date.extract_date then 'fracture after the extract date'
        end as exclusion_reason
    from episodes_ranked
    cross join extract_date
    left join fls_registry
        on episodes_ranked.fls_code = fls_registry.fls_code
    left join lsoa_deprivation
        on episodes_ranked.lsoa11_code = lsoa_deprivation.lsoa11_code
)

select
    *,
    exclusion_reason is null as is_in_cohort
from final
