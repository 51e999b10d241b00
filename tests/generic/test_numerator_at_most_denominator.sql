{#-
    Fails with every row whose `numerator` is greater than its `denominator` (a proportion can
    never exceed its base). KPI 2 and 3 compare identified records with an *expected* count and
    may exceed it: exclude them with the test's `where` config. A small tolerance absorbs
    floating-point rounding. Nulls are left to not_null tests.
-#}
{% test numerator_at_most_denominator(model, numerator='numerator', denominator='denominator', tolerance=0.000001) %}

select *
from {{ model }}
where
    {{ numerator }} is not null
    and {{ denominator }} is not null
    and {{ numerator }} > {{ denominator }} + {{ tolerance }}

{% endtest %}
