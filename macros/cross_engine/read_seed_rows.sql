{#-
    A seed's rows at compile time (an agate table), for macros that generate SQL from a seed
    (macros/kpi_definitions.sql). Called only when `execute` is true.

    - duckdb: reads the seed's CSV file itself (`read_csv`, every column as text), so that it works
      wherever the project's files are, also where the seed table does not exist: unit tests,
      `dbt compile` before `dbt seed`, and sqlfluff's dbt templater, which compiles against the
      in-memory `lint` target of profiles.yml.
    - default (Spark and any other warehouse): selects from the seed table. The caller refs the seed
      at parse time, so `dbt build` loads it before any model that reads it.
-#}
{% macro read_seed_rows(seed_name) -%}
    {{ return(adapter.dispatch('read_seed_rows', 'flsdb')(seed_name)) }}
{%- endmacro %}

{% macro default__read_seed_rows(seed_name) -%}
    {{ return(run_query('select * from ' ~ ref(seed_name))) }}
{%- endmacro %}

{#- The seed's CSV file: the seed node's project directory and its path in it. -#}
{% macro seed_file_path(seed_name) -%}
    {%- set node = graph.nodes.values()
        | selectattr('resource_type', 'equalto', 'seed')
        | selectattr('name', 'equalto', seed_name)
        | first -%}
    {%- if not node -%}
        {{ exceptions.raise_compiler_error("no seed named " ~ seed_name) }}
    {%- endif -%}
    {{ return(node.root_path.rstrip('/') ~ '/' ~ node.original_file_path) }}
{%- endmacro %}

{% macro duckdb__read_seed_rows(seed_name) -%}
    {%- set file_path = seed_file_path(seed_name) -%}
    {{ return(run_query(
        "select * from read_csv('" ~ file_path | replace("'", "''") ~ "', header = true, all_varchar = true)")) }}
{%- endmacro %}
