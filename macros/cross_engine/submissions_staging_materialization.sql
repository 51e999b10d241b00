{#-
    How stg_fls_db__submission_records is materialised. DuckDB: incremental, appending the files
    loaded since the last build (rows staged under other inputs are deleted first: see
    macros/staging_inputs_fingerprint.sql). Spark: a table rebuilt whole, because the pre-hook's
    DELETE needs a table format that supports it (Delta, Iceberg), and the default is parquet.
-#}
{% macro submissions_staging_materialization() %}
    {{ return(adapter.dispatch('submissions_staging_materialization', 'flsdb')()) }}
{% endmacro %}

{% macro default__submissions_staging_materialization() %}
    {{ return('table') }}
{% endmacro %}

{% macro duckdb__submissions_staging_materialization() %}
    {{ return('incremental') }}
{% endmacro %}
