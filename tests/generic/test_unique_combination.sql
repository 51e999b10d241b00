{#- Fails with one row per combination of `combination` (a list of columns) that occurs more than once. -#}
{% test unique_combination(model, combination) %}

select
    {{ combination | join(', ') }},
    count(*) as row_count
from {{ model }}
group by {{ combination | join(', ') }}
having count(*) > 1

{% endtest %}
