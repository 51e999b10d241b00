{#-
    String aggregation: the non-null values of `expression` in a group, joined by `delimiter` (a
    plain string, not SQL) in the order of `order_by` (an expression; ties broken by the value),
    or null when there are none. Use this, not string_agg / listagg / group_concat, whose names,
    ordering syntax and null handling differ between engines.
-#}
{% macro aggregate_strings(expression, delimiter, order_by=none) %}
    {{ return(adapter.dispatch('aggregate_strings', 'flsdb')(expression, delimiter, order_by)) }}
{% endmacro %}

{% macro default__aggregate_strings(expression, delimiter, order_by=none) %}
    {{ dbt.listagg(
        expression,
        "'" ~ dbt.escape_single_quotes(delimiter) ~ "'",
        ('order by ' ~ order_by ~ ', ' ~ expression) if order_by else none) }}
{% endmacro %}

{% macro duckdb__aggregate_strings(expression, delimiter, order_by=none) %}
    string_agg(
        {{ expression }},
        '{{ delimiter | replace("'", "''") }}'
        {%- if order_by %} order by {{ order_by }}, {{ expression }}{% endif %}
    )
{% endmacro %}

{#- collect_list skips nulls; sorting structs of (order key, value) gives the order. -#}
{% macro spark__aggregate_strings(expression, delimiter, order_by=none) %}
    case when count({{ expression }}) > 0 then
        array_join(
            {%- if order_by %}
            transform(
                array_sort(collect_list(case when {{ expression }} is not null
                    then named_struct('sort_key', {{ order_by }}, 'value', {{ expression }}) end)),
                item -> item.value
            ),
            {%- else %}
            array_sort(collect_list({{ expression }})),
            {%- endif %}
            '{{ delimiter | replace('\\', '\\\\') | replace("'", "\\'") }}'
        )
    end
{% endmacro %}
