-- One row per accepted submission row, marked current or superseded. The same FLS Code + Record ID
-- seen more than once is one record: the latest Last Updated wins; ties go to the file loaded
-- last, then the later line (dataset.md, "Versions and duplicates").
-- A view: the window costs little, writing every staged column again as a table cost most of
-- this model's time (see DEVELOPERS.md, "Performance"). The window sees only the key columns and
-- is joined back to the full row on (load_order, line_number), which names one accepted row: a
-- window over every staged column held them all in memory and ran out of it at 100x.
{{ config(materialized='view') }}

with

records as (
    select * from {{ ref('stg_fls_db__submission_records') }}
),

version_ranks as (
    select
        load_order,
        line_number,
        row_number() over (
            partition by fls_code, record_id
            order by last_updated_at desc, load_order desc, line_number desc
        ) as version_rank,
        count(*) over (partition by fls_code, record_id) as versions_seen
    -- read from the model, not from the records CTE: a CTE read twice is materialised whole
    from {{ ref('stg_fls_db__submission_records') }}
),

final as (
    select
        records.*,
        version_ranks.version_rank,
        version_ranks.versions_seen,
        version_ranks.version_rank = 1 as is_current_version,
        case when version_ranks.version_rank > 1 then 'superseded by a later version of the record' end
            as superseded_reason
    from records
    inner join version_ranks
        on
            records.load_order = version_ranks.load_order
            and records.line_number = version_ranks.line_number
)

select * from final
