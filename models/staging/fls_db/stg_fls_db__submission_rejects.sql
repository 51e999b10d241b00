-- One row per rejected submission row: its file, line, the rule it broke and the FLS and
-- Record ID it named.
-- Why: the data-quality models list every reject with its file and line, and find records whose
-- newest version was rejected (docs/specification/submission-format.md, "Versions and duplicates"). The raw row as sent
-- (`raw_line`, which may hold an NHS number, date of birth or postcode) stays in the raw schema:
-- only lineage, the rule, the field at fault and the loader's reason (which names no identifier)
-- are staged. Rows a withdrawal covers are left out (macros/withdrawals.sql).

with

rejects as (
    select * from {{ source('fls_db', 'submission_rejects') }}
),

final as (
    select
        _file_sha256 as file_sha256,
        _source_file as source_file,
        _line_number as line_number,
        _load_order as load_order,
        _loaded_at as loaded_at,
        reject_code,
        column_name,
        reject_reason,
        nullif(upper(trim(fls_code)), '') as fls_code,
        nullif(trim(record_id), '') as record_id
    from rejects
    -- rows a withdrawal covers (`flsdb withdraw`) are not staged, as for accepted rows
    where not {{ is_withdrawn(
        'rejects._file_sha256',
        'upper(' ~ normalise_code_text('rejects.fls_code') ~ ')',
        'trim(rejects.record_id)') }}
)

select * from final
