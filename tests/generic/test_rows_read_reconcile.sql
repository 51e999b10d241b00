{#-
    Reconciliation per file (docs/specification/submission-format.md: rows read = rows accepted + rows rejected).
    Fails with one row per loaded file whose counts do not add up: rows_read != rows_accepted + rows_rejected,
    or, when `records` / `rejects` relations are given, rows_accepted / rows_rejected differ from
    the rows actually stored for that file (joined on `key`). Refused files (status != 'loaded')
    load nothing, so none of their rows may be stored either.
-#}
{% test rows_read_reconcile(model, records=none, rejects=none, key='file_sha256', row_key='_file_sha256') %}

with

files as (
    select * from {{ model }}
)
{%- if records is not none %},

stored_records as (
    select
        {{ row_key }} as stored_key,
        count(*) as stored_rows
    from {{ records }}
    group by {{ row_key }}
)
{%- endif %}
{%- if rejects is not none %},

stored_rejects as (
    select
        {{ row_key }} as stored_key,
        count(*) as stored_rows
    from {{ rejects }}
    group by {{ row_key }}
)
{%- endif %}

select
    files.{{ key }},
    files.source_file,
    files.status,
    files.rows_read,
    files.rows_accepted,
    files.rows_rejected
    {%- if records is not none %},
    coalesce(stored_records.stored_rows, 0) as stored_records
    {%- endif %}
    {%- if rejects is not none %},
    coalesce(stored_rejects.stored_rows, 0) as stored_rejects
    {%- endif %}
from files
{%- if records is not none %}
left join stored_records
    on files.{{ key }} = stored_records.stored_key
{%- endif %}
{%- if rejects is not none %}
left join stored_rejects
    on files.{{ key }} = stored_rejects.stored_key
{%- endif %}
where
    (
        files.status = 'loaded'
        and coalesce(files.rows_read, -1)
        != coalesce(files.rows_accepted, 0) + coalesce(files.rows_rejected, 0)
    )
    {%- if records is not none %}
    or coalesce(stored_records.stored_rows, 0)
    != case when files.status = 'loaded' then coalesce(files.rows_accepted, 0) else 0 end
    {%- endif %}
    {%- if rejects is not none %}
    or coalesce(stored_rejects.stored_rows, 0)
    != case when files.status = 'loaded' then coalesce(files.rows_rejected, 0) else 0 end
    {%- endif %}

{% endtest %}
