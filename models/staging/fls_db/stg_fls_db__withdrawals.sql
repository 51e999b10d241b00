-- One row per withdrawal (`flsdb withdraw`): a file's content or a record taken out of the audit,
-- with who, when and why, whether it is still active (not revoked), and the accepted raw rows it
-- covers.
-- Why: staging leaves out every row an active withdrawal covers (stg_fls_db__submission_records
-- and stg_fls_db__submission_rejects, through macros/withdrawals.sql), and the data-quality facts
-- list each withdrawal with its row count, so that withdrawn rows are counted, not lost. The FLS
-- code and Record ID are read as staging reads a submission's (code text trimmed and upper-cased,
-- Record ID trimmed), so a withdrawal matches exactly the rows staging would have staged.
-- A table: staging's filter and pre-hook read it on every build; counting reads raw once.
{{ config(materialized='table') }}

with

withdrawals as (
    select * from {{ source('fls_db', 'withdrawals') }}
),

records as (
    select * from {{ source('fls_db', 'submission_records') }}
),

normalised as (
    select
        withdrawal_id,
        withdrawal_kind,
        file_sha256,
        source_file,
        upper({{ normalise_code_text('fls_code') }}) as fls_code,
        nullif(trim(record_id), '') as record_id,
        withdrawn_by,
        withdrawn_at,
        reason,
        revoked_by,
        revoked_at,
        revoke_reason,
        revoked_at is null as is_active
    from withdrawals
),

file_rows as (
    select
        normalised.withdrawal_id,
        count(*) as rows_covered,
        -- the service that sent the file (its rows' FLS code; the first, if they differ)
        min(upper({{ normalise_code_text('records.' ~ adapter.quote('FLS Code')) }})) as file_fls_code
    from normalised
    inner join records on normalised.file_sha256 = records._file_sha256
    where normalised.withdrawal_kind = 'file'
    group by normalised.withdrawal_id
),

record_rows as (
    select
        normalised.withdrawal_id,
        count(*) as rows_covered
    from normalised
    inner join records
        on
            normalised.record_id = trim(records.{{ adapter.quote('Record ID') }})
            and normalised.fls_code = upper({{ normalise_code_text('records.' ~ adapter.quote('FLS Code')) }})
    where normalised.withdrawal_kind = 'record'
    group by normalised.withdrawal_id
),

final as (
    select
        normalised.*,
        coalesce(file_rows.rows_covered, record_rows.rows_covered, 0) as rows_covered,
        coalesce(normalised.fls_code, file_rows.file_fls_code) as owning_fls_code
    from normalised
    left join file_rows on normalised.withdrawal_id = file_rows.withdrawal_id
    left join record_rows on normalised.withdrawal_id = record_rows.withdrawal_id
)

select * from final
