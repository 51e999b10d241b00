{#-
    The relation to select from for a file-backed reference source.

    Staging models call `{{ read_reference_csv('reference', '<table>') }}` instead of
    `{{ source(...) }}` directly; the macro still calls source(), so lineage is kept.
    The source's `meta.file_path` (relative to the dbt project directory) names the file, or
    `meta.file_path_var` names the dbt var that holds it (read at run time, so that env_var
    defaults in dbt_project.yml vars are honoured).

    - duckdb: reads the CSV (gzipped or not) straight from disk, every column as text, so that
      staging does all the casting and no value is guessed at by type sniffing.
    - spark: registers the file, where it lies, as an external CSV table named as the source
      (`<target schema>.<table>`: header row, every column text, RFC 4180 quoting), dropping and
      re-creating the table definition each time a model reads it, so that the path in force
      (for example FLSDB_POSTCODE_LOOKUP) is always the one read. The data is never copied.
      Relative paths are relative to the dbt project directory, as on DuckDB (Spark itself would
      resolve them against the schema's directory, so they are made absolute first); on a cluster,
      where the project directory is not visible, var `reference_file_root` (e.g. `dbfs:/flsdb`
      or `s3://bucket/flsdb`) is put in front of them instead (docs/spark.md).
    - default (any other warehouse): the source is expected to exist as a table, so it is
      returned as is.
-#}
{% macro read_reference_csv(source_name, table_name) -%}
    {{ return(adapter.dispatch('read_reference_csv', 'flsdb')(source_name, table_name)) }}
{%- endmacro %}

{% macro default__read_reference_csv(source_name, table_name) -%}
    {{ return(source(source_name, table_name)) }}
{%- endmacro %}

{#- The file behind a file-backed reference source: meta.file_path, or the var meta.file_path_var names. -#}
{% macro reference_csv_path(source_name, table_name) -%}
    {%- set node = graph.sources.values()
        | selectattr('source_name', 'equalto', source_name)
        | selectattr('name', 'equalto', table_name)
        | first -%}
    {%- if node.meta.get('file_path_var') -%}
        {%- set file_path = var(node.meta.get('file_path_var')) -%}
    {%- else -%}
        {%- set file_path = node.meta.get('file_path') -%}
    {%- endif -%}
    {%- if not file_path -%}
        {{ exceptions.raise_compiler_error(
            "source " ~ source_name ~ "." ~ table_name ~ " has no meta.file_path or meta.file_path_var") }}
    {%- endif -%}
    {{ return(file_path) }}
{%- endmacro %}

{% macro duckdb__read_reference_csv(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set file_path = reference_csv_path(source_name, table_name) -%}
    {{ return("read_csv(" ~ sql_string_literal(file_path) ~ ", header = true, all_varchar = true)") }}
{%- endmacro %}

{% macro spark__read_reference_csv(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set file_path = reference_csv_path(source_name, table_name) -%}
    {%- set file_path = spark_absolute_path(file_path, var('reference_file_root', none)) -%}
    {%- do run_query('create schema if not exists ' ~ relation.schema) -%}
    {%- do run_query('drop table if exists ' ~ relation) -%}
    {%- do run_query(
        'create table ' ~ relation ~ " using csv options ("
        ~ "path " ~ sql_string_literal(file_path) ~ ", header 'true', inferSchema 'false', "
        ~ "quote '\"', escape '\"', multiLine 'true', encoding 'UTF-8')") -%}
    {{ return(relation) }}
{%- endmacro %}


{#- `path` made absolute for Spark: kept when it is absolute or a URI (`s3://...`), else put under
    `root`, else under the dbt project directory ($FLSDB_PROJECT_DIR, which the Makefile and the
    flsdb command set, else the shell's working directory). -#}
{% macro spark_absolute_path(path, root=none) -%}
    {%- if path.startswith('/') or ':' in path -%}
        {{ return(path) }}
    {%- endif -%}
    {%- set base = root or env_var('FLSDB_PROJECT_DIR', env_var('PWD', '')) -%}
    {%- if not base -%}
        {{ exceptions.raise_compiler_error(
            "cannot make '" ~ path ~ "' absolute: set FLSDB_PROJECT_DIR to the dbt project directory") }}
    {%- endif -%}
    {{ return(base.rstrip('/') ~ '/' ~ path) }}
{%- endmacro %}
