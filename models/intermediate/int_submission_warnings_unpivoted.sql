-- One row per warning on a staged submission row: the field (named as in docs/specification/submission-format.md)
-- and why its value was set to not recorded. Traceable to its file and line.

with

warnings as (
    -- The model itself, not an import CTE, in each of the union's branches: DuckDB materialises a
    -- CTE that is read more than once, with all its columns (DEVELOPERS.md, "Performance").
    select
        fls_code,
        record_id,
        source_file,
        file_sha256,
        line_number,
        '1.04 Post Code' as field_name,
        postcode_warning as warning_reason
    from {{ ref('stg_fls_db__submission_records') }}
    where postcode_warning is not null
    {%- for field in submission_fields() %}

        union all

        select
            fls_code,
            record_id,
            source_file,
            file_sha256,
            line_number,
            '{{ field.column }}' as field_name,
            {{ field.name }}_warning as warning_reason
        from {{ ref('stg_fls_db__submission_records') }}
        where {{ field.name }}_warning is not null
    {%- endfor %}
)

select * from warnings
