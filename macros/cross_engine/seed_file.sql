{#-
    A select-able relation over a seed's CSV file, for reading a seed at compile time before it is
    loaded (sqlfluff's in-memory `lint` target, a first `dbt compile`). `columns` are read as text.
    - duckdb: read_csv on the file in the project (the same file `dbt seed` loads).
    - default: no way to read a file from SQL; the seed must be loaded first (`dbt seed`).
-#}
{% macro seed_file(seed_name) -%}
    {{ return(adapter.dispatch('seed_file', 'flsdb')(seed_name)) }}
{%- endmacro %}

{% macro default__seed_file(seed_name) -%}
    {{ exceptions.raise_compiler_error("Seed " ~ seed_name ~ " is not loaded: run `dbt seed` first.") }}
{%- endmacro %}

{#- A unit test compiles with an empty `graph`: there the seed is seeds/<name>.csv of the project
    directory (--project-dir, else the working directory, where dbt then runs). -#}
{% macro duckdb__seed_file(seed_name) -%}
    {%- set node = graph.get('nodes', {}).values()
        | selectattr('resource_type', 'equalto', 'seed')
        | selectattr('name', 'equalto', seed_name)
        | first -%}
    {%- if node -%}
        {%- set path = node.root_path ~ "/" ~ node.original_file_path -%}
    {%- else -%}
        {%- set path = (invocation_args_dict.get('project_dir') or '.') ~ "/seeds/" ~ seed_name ~ ".csv" -%}
    {%- endif -%}
    {{ return("read_csv(" ~ sql_string_literal(path) ~ ", header = true, all_varchar = true)") }}
{%- endmacro %}
