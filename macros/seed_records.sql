{#-
    A seed's rows at compile time as dicts, ordered by `order_by`, for the macros that generate SQL
    from a seed (kpi_definitions(), submission_contract()). One typing rule for every seed: an
    empty cell is none; an `is_*` column a boolean; a `*_pct` column a float; a `*_number` or
    `*_days` column, or one named in `integer_columns`, an integer; anything else text.
    It refs the seed, so every model that calls it depends on the seed (lineage and build order),
    and reads the rows through the dispatch macro read_seed_rows (on DuckDB the CSV file itself, so
    it also works in unit tests and under sqlfluff's in-memory lint target). At parse time
    (`execute` false) it returns no rows.
-#}
{% macro seed_records(seed_name, order_by, integer_columns=[]) %}
    {%- set seed_relation = ref(seed_name) -%}
    {%- if not execute -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set table = read_seed_rows(seed_name) -%}
    {%- set records = [] -%}
    {%- for row in table.rows -%}
        {%- set record = {} -%}
        {%- for column_name in table.column_names -%}
            {%- set value = row[column_name] -%}
            {%- if value is none or (value | string | trim) == '' -%}
                {%- set value = none -%}
            {%- elif column_name.startswith('is_') -%}
                {%- set value = (value | string | lower) == 'true' -%}
            {%- elif column_name.endswith('_pct') -%}
                {%- set value = value | float -%}
            {%- elif column_name in integer_columns or column_name.endswith(('_number', '_days')) -%}
                {%- set value = value | int -%}
            {%- else -%}
                {%- set value = value | string -%}
            {%- endif -%}
            {%- do record.update({column_name: value}) -%}
        {%- endfor -%}
        {%- do records.append(record) -%}
    {%- endfor -%}
    {{ return(records | sort(attribute=order_by)) }}
{% endmacro %}
