-- One row per accepted submission row, marked current or superseded. The same FLS Code + Record ID
-- seen more than once is one record: the latest Last Updated wins; ties go to the file loaded
-- last, then the later line (dataset.md, "Versions and duplicates").
-- A view: the window costs little, writing every staged column again as a table cost most of
-- this model's time (see DEVELOPERS.md, "Performance").
{{ config(materialized='view') }}

with

records as (
    select * from {{ ref('stg_fls_db__submission_records') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by fls_code, record_id
            order by last_updated_at desc, load_order desc, line_number desc
        ) as version_rank,
        count(*) over (partition by fls_code, record_id) as versions_seen
    from records
),

final as (
    select
        *,
        version_rank = 1 as is_current_version,
        case when version_rank > 1 then 'superseded by a later version of the record' end
            as superseded_reason
    from ranked
)

select * from final
