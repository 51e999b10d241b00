{#-
    Fails with every row whose `numerator` is greater than its `denominator` (a proportion can
    never exceed its base). KPI 2 and 3 compare identified records with an *expected* count and
    may exceed it: exclude them with `exempt_kpi_grains: [expected_caseload]` (the KPIs of those
    grains in the kpi_definitions seed, on a model with a `kpi_number` column), or with the test's
    `where` config. A small tolerance absorbs floating-point rounding. Nulls are left to not_null tests.
-#}
{% test numerator_at_most_denominator(model, numerator='numerator', denominator='denominator', tolerance=0.000001,
                                      exempt_kpi_grains=[]) %}

{%- set exempt_kpi_numbers = [] %}
{%- for grain in exempt_kpi_grains %}
    {%- do exempt_kpi_numbers.extend(kpi_numbers(grain=grain)) %}
{%- endfor %}

select *
from {{ model }}
where
    {{ numerator }} is not null
    and {{ denominator }} is not null
    and {{ numerator }} > {{ denominator }} + {{ tolerance }}
    {%- if exempt_kpi_numbers %}
    and kpi_number not in ({{ exempt_kpi_numbers | join(', ') }})
    {%- endif %}

{% endtest %}
