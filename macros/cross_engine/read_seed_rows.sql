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

{#- In a unit test, ref() names the test's fixture, a CTE of the test's own query that cannot be
    selected from alone; the loaded seed is read instead (`dbt build` loads a model's seeds before
    its unit tests), from the schema dbt_project.yml gives seeds (`+schema: reference`). -#}
{% macro default__read_seed_rows(seed_name) -%}
    {%- set relation = ref(seed_name) -%}
    {%- if (relation | string).startswith('__dbt__cte__') -%}
        {%- set relation = api.Relation.create(
            schema=generate_schema_name('reference', none), identifier=seed_name) -%}
    {%- endif -%}
    {{ return(run_query('select * from ' ~ relation)) }}
{%- endmacro %}

{#- The file is read through seed_file (macros/cross_engine/seed_file.sql). -#}
{% macro duckdb__read_seed_rows(seed_name) -%}
    {{ return(run_query('select * from ' ~ seed_file(seed_name))) }}
{%- endmacro %}
