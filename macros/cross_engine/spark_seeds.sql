{#-
    Seeds on Spark: dbt-spark's own spark__load_csv_rows passes values as bindings that its
    session-mode cursor pastes into the SQL unescaped, so a value with a quote ("King's Lynn")
    breaks the insert and an empty cell becomes the text 'None'. This override (dbt prefers a root
    project's implementation of its own dispatched macros) writes each value as a proper Spark SQL
    literal instead: null for an empty cell, quotes and backslashes escaped.
-#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set batch_size = get_batch_size() -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set types = [] -%}
    {%- for col_name in agate_table.column_names -%}
        {%- do types.append(column_override.get(col_name, adapter.convert_type(agate_table, loop.index0))) -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(batch_size) %}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {%- for row in chunk %}
            ({%- for value in row -%}
                cast({{ spark_seed_literal(value) }} as {{ types[loop.index0] }}){{ ', ' if not loop.last }}
            {%- endfor -%}){{ ',' if not loop.last }}
            {%- endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first -%}
            {%- do statements.append(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(statements[0] if statements else '') }}
{% endmacro %}

{% macro spark_seed_literal(value) -%}
    {%- if value is none -%}
        null
    {%- elif value is number and value is not boolean -%}
        '{{ value }}'
    {%- else -%}
        {{ sql_string_literal(value) }}
    {%- endif -%}
{%- endmacro %}
