{#-
    dbt-duckdb's own fast seed load (`duckdb__load_csv_rows`, dbt/include/duckdb/macros/seed.sql)
    writes the seed file's path into a COPY statement between single quotes without escaping it,
    so a project in a folder whose name holds an apostrophe ("St Mary's FLS") fails to load any
    seed. This project-level macro takes precedence over the adapter's (dbt dispatches to the root
    project first) and is the same but for the path (and delimiter), written with sql_string_literal.
    The slow path (config fast: false) binds every value as a parameter and needs no change, so it
    is delegated to the adapter's macro unchanged.
-#}
{% macro duckdb__load_csv_rows(model, agate_table) %}
    {%- if config.get('fast', true) %}
        {%- set seed_file_path = adapter.get_seed_file_path(model) %}
        {%- set delimiter = config.get('delimiter', ',') %}
        {%- set sql -%}
            copy {{ this.render() }} from {{ sql_string_literal(seed_file_path) }} (
                format csv, header true, delimiter {{ sql_string_literal(delimiter) }}
            )
        {%- endset %}
        {%- do adapter.add_query(sql, abridge_sql_log=True) %}
        {{ return(sql) }}
    {%- endif %}
    {{ return(dbt_duckdb.duckdb__load_csv_rows(model, agate_table)) }}
{% endmacro %}
