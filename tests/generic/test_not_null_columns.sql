{#-
    Fails with one row per null cell of the listed columns, naming its column: one data test per
    model for what were one `not_null` test per column (issue 21: each dbt test node costs dbt's
    per-node overhead, about 25 ms of CPU, whatever it checks). Declared on a model:
        data_tests:
          - not_null_columns:
              arguments:
                column_names: [a, b]
-#}
{% test not_null_columns(model, column_names) %}

{% for column in column_names %}
    select {{ sql_string_literal(column) }} as null_column
    from {{ model }}
    where {{ column }} is null
    {% if not loop.last %}union all{% endif %}
{% endfor %}

{% endtest %}
