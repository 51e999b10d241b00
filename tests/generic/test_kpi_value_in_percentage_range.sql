{#-
    Fails with every row whose KPI value (`column_name`, a percentage) lies outside [0, 100],
    except for the KPIs in `unbounded_kpis` (2 and 3: identification against an expected caseload,
    which can exceed 100), whose value must still not be negative. Nulls (denominator 0) pass.
-#}
{% test kpi_value_in_percentage_range(model, column_name, kpi_column='kpi_number', unbounded_kpis=[2, 3]) %}

select *
from {{ model }}
where
    {{ column_name }} is not null
    and (
        {{ column_name }} < 0
        or (
            {{ column_name }} > 100
            and {{ kpi_column }} not in ({{ unbounded_kpis | join(', ') }})
        )
    )

{% endtest %}
