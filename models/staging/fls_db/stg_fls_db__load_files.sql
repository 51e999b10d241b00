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

final as (
    select
        file_sha256,
        source_file,
        status,
        rejection_reason,
        rows_read,
        rows_accepted,
        rows_rejected,
        file_extract_date,
        load_order,
        loaded_at,
        missing_since as missing_from_landing_since,
        status = 'loaded' as is_loaded,
        {{ is_withdrawn('load_files.file_sha256', 'null', 'null') }} as is_withdrawn
    from load_files
)

select * from final
