{#-
    Fails with one row per group whose `column_name` sums to more than `max_value`
    (for example: the catchment shares of one local authority must sum to at most 1).
    `group_by` is a list of columns; a small tolerance absorbs rounding in the data.
-#}
{% test sum_at_most(model, column_name, group_by, max_value, tolerance=0.000001) %}

select
    {{ group_by | join(', ') }},
    sum({{ column_name }}) as total
from {{ model }}
group by {{ group_by | join(', ') }}
having sum({{ column_name }}) > {{ max_value }} + {{ tolerance }}

{% endtest %}
