{#-
    Withdrawals (`flsdb withdraw`, raw.withdrawals, staged by stg_fls_db__withdrawals): the one
    rule for which staged rows a withdrawal covers, used by the staging models' filters and by the
    pre-hook that deletes rows already staged.

    is_withdrawn(file_sha256, fls_code, record_id): true when an active withdrawal covers a row
    with that file content, or that FLS code and Record ID (each as staging reads them: the code
    trimmed and upper-cased, the Record ID trimmed).
-#}
{% macro is_withdrawn(file_sha256, fls_code, record_id) %}
    exists (
        select 1
        from {{ ref('stg_fls_db__withdrawals') }} as withdrawals
        where
            withdrawals.is_active
            and (
                withdrawals.file_sha256 = {{ file_sha256 }}
                or (withdrawals.fls_code = {{ fls_code }} and withdrawals.record_id = {{ record_id }})
            )
    )
{% endmacro %}

{#- The pre-hook of stg_fls_db__submission_records: on an incremental run, delete the staged rows
    a withdrawal made since the last build covers (rows of new files are left out by the model
    itself). A revocation changes the staging inputs fingerprint, so the rows come back through a
    restage (macros/staging_inputs_fingerprint.sql). -#}
{% macro delete_withdrawn_rows() %}
    {%- if is_incremental() %}
        delete from {{ this }} as staged
        where {{ is_withdrawn('staged.file_sha256', 'staged.fls_code', 'staged.record_id') }}
    {%- endif %}
{% endmacro %}
