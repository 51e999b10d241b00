-- One row per file the loader has seen (its content sha256, or a key for a file it did not read):
-- loaded, refused whole, unreadable or skipped by rule.
-- Why: the data-quality models (models/quality/) count refused files and rows read, accepted and
-- rejected per file; they read the loader's bookkeeping through this model, never raw directly.
-- A loaded file no longer in the landing folder is noticed by the next load (missing_since); a
-- file withdrawn by `flsdb withdraw` is flagged (is_withdrawn).
-- Lineage and counts only: no row content.

with

load_files as (
    select * from {{ source('fls_db', 'load_files') }}
),

withdrawn_files as (
    select distinct file_sha256
    from {{ ref('stg_fls_db__withdrawals') }}
    where is_active and withdrawal_kind = 'file'
),

final as (
    select
        load_files.file_sha256,
        load_files.source_file,
        load_files.status,
        load_files.rejection_reason,
        load_files.rows_read,
        load_files.rows_accepted,
        load_files.rows_rejected,
        load_files.file_extract_date,
        load_files.load_order,
        load_files.loaded_at,
        load_files.missing_since as missing_from_landing_since,
        load_files.status = 'loaded' as is_loaded,
        withdrawn_files.file_sha256 is not null as is_withdrawn
    from load_files
    left join withdrawn_files on load_files.file_sha256 = withdrawn_files.file_sha256
)

select * from final
