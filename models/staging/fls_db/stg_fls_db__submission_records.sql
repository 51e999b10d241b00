-- One row per accepted submission row (every version of every record), typed and coded, with
-- identifiers replaced: NHS number -> keyed pseudonym, date of birth -> age at fracture,
-- postcode -> LSOA 2011. Materialised as a table, not a view: the pseudonym key is read at build
-- time (see macros/cross_engine/pseudonymise.sql) and BI readers never need it.
-- Incremental on DuckDB: raw.submission_records only ever gains files, each under a new, higher
-- load_order, so a build stages only the files loaded since the last one. Rows staged under
-- another pseudonym key, postcode lookup, field list or code list are deleted first and staged
-- again (macros/staging_inputs_fingerprint.sql); a change of columns stops the build and asks for
-- `--full-refresh` (DuckDB cannot delete from and alter one table in one transaction). Spark
-- builds it whole each time.
-- Rows an active withdrawal covers (`flsdb withdraw`: a file's content, or a record in every file)
-- are not staged; rows staged before the withdrawal are deleted by the second pre-hook, so a
-- withdrawal needs no full restage (macros/withdrawals.sql).
{{ config(
    materialized=submissions_staging_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook=[
        '{{ delete_rows_staged_under_other_inputs() }}',
        '{{ delete_withdrawn_rows() }}',
    ],
) }}

{%- set fields = submission_fields() %}

with

source as (
    select * from {{ source('fls_db', 'submission_records') }}
    {%- if is_incremental() %}
        where _load_order > (select coalesce(max(load_order), 0) from {{ this }})
    {%- endif %}
),

postcode_lookup as (
    select * from {{ ref('stg_reference__postcode_lookups') }}
),

pseudonym_key_pads as (
    {{ pseudonym_key_pads() }}
),

trimmed as (
    select
        {%- for field in fields %}
            {{ normalise_code_text(adapter.quote(field.column)) }} as {{ field.name }}__raw,
        {%- endfor %}
        _file_sha256 as file_sha256,
        _source_file as source_file,
        cast(_line_number as integer) as line_number,
        cast(_load_order as integer) as load_order,
        {{ normalise_code(adapter.quote('FLS Code')) }} as fls_code,
        trim({{ adapter.quote('Record ID') }}) as record_id,
        {{ parse_submission_timestamp('trim(' ~ adapter.quote('Last Updated') ~ ')') }} as last_updated_at,
        {{ regex_remove(adapter.quote('1.01 NHS Number'), '[^0-9]') }} as nhs_number_digits,
        {{ parse_submission_date('trim(' ~ adapter.quote('1.02 Date of Birth') ~ ')') }} as birth_date,
        {{ normalise_postcode(adapter.quote('1.04 Post Code')) }} as postcode_key,
        nullif(trim({{ adapter.quote('1.04 Post Code') }}), '') as postcode_raw,
        {{ parse_submission_date('trim(' ~ adapter.quote('1.09 Date Index Frac Diagnosed') ~ ')') }}
            as fracture_date,
        {{ recode_answer(normalise_code_text(adapter.quote('1.11 SiteFirstFrac')), 'fracture_site') }}
            as fracture_site
    from source
),

kept as (
    -- rows no withdrawal covers
    select * from trimmed
    where not {{ is_withdrawn('trimmed.file_sha256', 'trimmed.fls_code', 'trimmed.record_id') }}
),

typed as (
    select
        {%- for field in fields %}
            {{ stage_field_value(field, field.name ~ '__raw') }} as {{ field.name }}__value,
        {%- endfor %}
        *
    from kept
),

warned as (
    select
        {%- for field in fields %}
            {{ field_warning_reason(field, field.name ~ '__raw', field.name ~ '__value', 'fracture_date') }}
                as {{ field.name }}_warning,
        {%- endfor %}
        case
            when
                postcode_raw is not null
                and not {{ regex_full_match('postcode_key', '[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}') }}
                then 'not a valid UK postcode'
        end as postcode_warning,
        *
    from typed
),

final as (
    select
        {%- for field in fields %}
            case when warned.{{ field.name }}_warning is null then warned.{{ field.name }}__value end
                as {{ field.name }},
            warned.{{ field.name }}_warning,
        {%- endfor %}
        warned.file_sha256,
        warned.source_file,
        warned.line_number,
        warned.load_order,
        warned.fls_code,
        warned.record_id,
        warned.last_updated_at,
        {{ pseudonymise('warned.nhs_number_digits', 'pseudonym_key_pads') }} as patient_pseudonym,
        {{ age_in_years('warned.birth_date', 'warned.fracture_date') }} as age_at_fracture,
        warned.fracture_date,
        cast(extract(year from warned.fracture_date) as integer) as audit_year,
        warned.fracture_site,
        case when warned.postcode_warning is null then postcode_lookup.lsoa11_code end as lsoa11_code,
        case
            when warned.postcode_raw is null then 'not recorded'
            when warned.postcode_warning is not null then 'invalid postcode'
            when postcode_lookup.lsoa11_code is null then 'postcode not in lookup'
            else 'matched'
        end as postcode_match_status,
        warned.postcode_warning,
        {{ staging_inputs_fingerprint() }} as staging_inputs_fingerprint
    from warned
    cross join pseudonym_key_pads
    left join postcode_lookup
        on warned.postcode_key = postcode_lookup.postcode_key
)

select * from final
