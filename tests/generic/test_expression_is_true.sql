{#-
    Fails with every row for which `expression` is not true (false or null).
    Declared on a model (its `data_tests:`), or on a column as a convenience.
-#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not coalesce(({{ expression }}), false)

{% endtest %}
