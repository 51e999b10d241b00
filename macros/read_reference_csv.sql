{#-
    The relation to select from for a file-backed reference source.

    Staging models call `{{ read_reference_csv('reference', '<table>') }}` instead of
    `{{ source(...) }}` directly; the macro still calls source(), so lineage is kept.
    The source's `meta.file_path` (relative to the dbt project directory) names the file, or
    `meta.file_path_var` names the dbt var that holds it (read at run time, so that env_var
    defaults in dbt_project.yml vars are honoured).

    - duckdb: reads the CSV (gzipped or not) straight from disk, every column as text, so that
      staging does all the casting and no value is guessed at by type sniffing.
    - default (any other warehouse, e.g. Spark): the source is expected to exist as a table
      (for example `create table ... using csv location ...`), so it is returned as is.
-#}
{% macro read_reference_csv(source_name, table_name) -%}
    {{ return(adapter.dispatch('read_reference_csv', 'flsdb')(source_name, table_name)) }}
{%- endmacro %}

{% macro default__read_reference_csv(source_name, table_name) -%}
    {{ return(source(source_name, table_name)) }}
{%- endmacro %}

{% macro duckdb__read_reference_csv(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        {{ return(relation) }}
    {%- endif -%}
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
    {{ return("read_csv('" ~ file_path | replace("'", "''") ~ "', header = true, all_varchar = true)") }}
{%- endmacro %}
