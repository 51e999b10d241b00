{#-
    Incremental staging of the submissions (stg_fls_db__submission_records appends only the files
    loaded since its last build) is only right while everything else a staged row depends on is
    unchanged. Those other inputs, fingerprinted:
      - the pseudonym key, through the keyed pseudonym of a fixed text (which tells no more about
        the key than any stored pseudonym does);
      - the postcode lookup's contents (row count and a sum of row hashes);
      - the staging model's own code, its field list (seeds/submission_fields.csv through
        macros/submission_fields.sql), and the code lists, wordings, whitespace rule and date
        formats in dbt_project.yml;
      - the number of rows `flsdb recheck-rejects` moved from rejected to accepted;
      - the number of withdrawals revoked (`flsdb withdraw --revoke`: the rows come back).
    Every staged row carries the fingerprint it was staged under. Before each incremental run,
    `delete_rows_staged_under_other_inputs` deletes the rows whose fingerprint differs from the
    current one (all of them, when anything changed), and the run stages them again: rotating the
    key or loading a new postcode lookup restages everything without a --full-refresh to remember.
    Not seen: edits to the staging macros' rules themselves (macros/cross_engine/*, how a check
    is applied in macros/submission_fields.sql); after those run `dbt build --full-refresh`, as for any dbt
    incremental model (DEVELOPERS.md, "Performance").
-#}
{% macro staging_inputs_fingerprint() %}
    {%- set code = model.raw_code ~ tojson(submission_fields()) ~ tojson(var('submission_code_lists'))
        ~ tojson(var('submission_code_wordings', {})) ~ tojson(var('named_drug_wording_suffixes', {}))
        ~ var('code_whitespace_pattern')
        ~ tojson(var('submission_date_formats')) ~ tojson(var('submission_timestamp_formats')) %}
    (
        select
            {{ dbt.hash(dbt.concat([
                pseudonymise("'flsdb staging inputs fingerprint'", 'key_pads'),
                "'|'",
                "lookup_contents.fingerprint",
                "'|" ~ local_md5(code) ~ "'",
                "'|'",
                "rechecks.rows_moved",
                "'|'",
                "revocations.revoked",
            ])) }}
        from ({{ pseudonym_key_pads() }}) as key_pads
        cross join (
            select
                cast(count(*) as {{ dbt.type_string() }})
                || ':'
                || cast(coalesce(sum(hash(postcode_key, lsoa11_code)), 0) as {{ dbt.type_string() }})
                    as fingerprint
            from {{ ref('stg_reference__postcode_lookups') }}
        ) as lookup_contents
        {#- Rows `flsdb recheck-rejects` moved into raw.submission_records under an old load_order:
            appending by load_order would never stage them, so a recheck restages everything. #}
        cross join (
            select cast(coalesce(sum(rows_accepted_on_recheck), 0) as {{ dbt.type_string() }}) as rows_moved
            from {{ source('fls_db', 'load_files') }}
        ) as rechecks
        {#- A revoked withdrawal's rows lie under old load_orders: appending would never stage
            them again, so a revocation restages everything (a new withdrawal deletes instead:
            macros/withdrawals.sql). #}
        cross join (
            select cast(count(revoked_at) as {{ dbt.type_string() }}) as revoked
            from {{ source('fls_db', 'withdrawals') }}
        ) as revocations
    )
{% endmacro %}

{#- The pre-hook of stg_fls_db__submission_records: on an incremental run, delete the rows staged
    under other inputs, so that the run stages them again. A table staged before fingerprints were
    kept lacks the column: nothing is deleted and on_schema_change='fail' asks for --full-refresh. -#}
{% macro delete_rows_staged_under_other_inputs() %}
    {%- if is_incremental() %}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list %}
        {%- if 'staging_inputs_fingerprint' in columns %}
            delete from {{ this }}
            where staging_inputs_fingerprint is distinct from {{ staging_inputs_fingerprint() }}
        {%- endif %}
    {%- endif %}
{% endmacro %}
