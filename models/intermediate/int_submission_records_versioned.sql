-- One row per accepted submission row, marked current or superseded, and ranked among duplicate
-- episodes (docs/specification/submission-format.md, "Versions and duplicates"):
-- - the same FLS Code + Record ID seen more than once is one record: the latest Last Updated wins;
--   ties go to the file loaded last, then the later line;
-- - among current versions, the same patient with the same index fracture date at the same FLS
--   under different Record IDs is one episode: the latest Last Updated is kept (episode_rank 1).
-- A view: the windows cost little, writing every staged column again as a table cost most of this
-- model's time (see DEVELOPERS.md, "Performance"). Both windows see only key columns, in one
-- narrow pipeline read once, and their ranks are joined back to the full row on
-- (load_order, line_number), which names one accepted row: windows over every staged column held
-- them all in memory and ran out of it at 100x.
{{ config(materialized='view') }}

with

records as (
    select * from {{ ref('stg_fls_db__submission_records') }}
),

version_ranks as (
    select
        load_order,
        line_number,
        fls_code,
        patient_pseudonym,
        fracture_date,
        last_updated_at,
        row_number() over (
            partition by fls_code, record_id
            order by last_updated_at desc, load_order desc, line_number desc
        ) as version_rank,
        count(*) over (partition by fls_code, record_id) as versions_seen
    -- read from the model, not from the records CTE: a CTE read twice is materialised whole
    from {{ ref('stg_fls_db__submission_records') }}
),

ranks as (
    select
        load_order,
        line_number,
        version_rank,
        versions_seen,
        -- ranked among current versions only (the partition sets superseded versions apart)
        case
            when version_rank = 1
                then row_number() over (
                    partition by fls_code, patient_pseudonym, fracture_date, version_rank = 1
                    order by last_updated_at desc, load_order desc, line_number desc
                )
        end as episode_rank
    from version_ranks
),

final as (
    select
        records.*,
        ranks.version_rank,
        ranks.versions_seen,
        ranks.episode_rank,
        ranks.version_rank = 1 as is_current_version,
        case when ranks.version_rank > 1 then 'superseded by a later version of the record' end
            as superseded_reason
    from records
    inner join ranks
        on
            records.load_order = ranks.load_order
            and records.line_number = ranks.line_number
)

select * from final
