-- One row per file the loader has seen (its content sha256, or a key for a file it did not read):
-- loaded, refused whole, unreadable or skipped by rule.
-- Why: the data-quality models (models/quality/) count refused files and rows read, accepted and
-- rejected per file; they read the loader's bookkeeping through this model, never raw directly.
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
        status = 'loaded' as is_loaded
    from load_files
)

select * from final
