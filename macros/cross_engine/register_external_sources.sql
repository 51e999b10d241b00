{#-
    Make the loader's raw tables visible to the warehouse, as the `fls_db` source names them.

        dbt run-operation register_external_sources [--args '{raw_path: <folder>}']

    - duckdb: nothing to do: `flsdb load` writes raw.* into the warehouse file itself.
    - spark: `python -m flsdb.spark_export` writes each raw table as Parquet to
      <raw_path>/<table>/; this registers each folder as the external table raw.<table> (dropping
      any previous definition; the files are never copied or deleted). raw_path defaults to var
      `spark_raw_path` (dbt_project.yml: $FLSDB_SPARK_RAW, else warehouse/spark/raw; relative paths are
      relative to the dbt project directory). Run it after each export and before `dbt build`.
-#}
{% macro register_external_sources(raw_path=none) %}
    {{ return(adapter.dispatch('register_external_sources', 'flsdb')(raw_path)) }}
{% endmacro %}

{% macro default__register_external_sources(raw_path=none) %}
    {{ log("register_external_sources: nothing to register on " ~ target.type
        ~ " (flsdb load writes the raw tables into the warehouse)", info=true) }}
{% endmacro %}

{% macro spark__register_external_sources(raw_path=none) %}
    {%- set root = raw_path or var('spark_raw_path') -%}
    {%- set root = spark_absolute_path(root).rstrip('/') -%}
    {%- set tables = graph.sources.values() | selectattr('source_name', 'equalto', 'fls_db') | list -%}
    {%- for node in tables | sort(attribute='name') %}
        {%- set relation = source(node.source_name, node.name) -%}
        {%- do run_query('create schema if not exists ' ~ relation.schema) -%}
        {%- do run_query('drop table if exists ' ~ relation) -%}
        {%- do run_query('create table ' ~ relation ~ " using parquet location " ~ sql_string_literal(root ~ '/' ~ node.identifier)) -%}
        {%- set rows = run_query('select count(*) from ' ~ relation).columns[0].values()[0] -%}
        {{ log("registered " ~ relation ~ " (" ~ rows ~ " rows) <- " ~ root ~ "/" ~ node.identifier, info=true) }}
    {%- endfor %}
{% endmacro %}
