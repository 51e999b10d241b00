{#- A submission date: ISO YYYY-MM-DD or UK DD/MM/YYYY (dataset.md). Null when it is neither or
    does not exist (31/02/2024). -#}
{% macro parse_submission_date(raw) %}
    {{ return(adapter.dispatch('parse_submission_date', 'flsdb')(raw)) }}
{% endmacro %}

{% macro default__parse_submission_date(raw) %}
    coalesce(
        cast(try_strptime({{ raw }}, '%Y-%m-%d') as date),
        cast(try_strptime({{ raw }}, '%d/%m/%Y') as date)
    )
{% endmacro %}

{% macro spark__parse_submission_date(raw) %}
    coalesce(try_to_date({{ raw }}, 'yyyy-MM-dd'), try_to_date({{ raw }}, 'dd/MM/yyyy'))
{% endmacro %}


{#- `Last Updated`: YYYY-MM-DDTHH:MM:SS or YYYY-MM-DD HH:MM:SS. -#}
{% macro parse_submission_timestamp(raw) %}
    {{ return(adapter.dispatch('parse_submission_timestamp', 'flsdb')(raw)) }}
{% endmacro %}

{% macro default__parse_submission_timestamp(raw) %}
    coalesce(try_strptime({{ raw }}, '%Y-%m-%dT%H:%M:%S'), try_strptime({{ raw }}, '%Y-%m-%d %H:%M:%S'))
{% endmacro %}

{% macro spark__parse_submission_timestamp(raw) %}
    coalesce(try_to_timestamp({{ raw }}, "yyyy-MM-dd'T'HH:mm:ss"), try_to_timestamp({{ raw }}, 'yyyy-MM-dd HH:mm:ss'))
{% endmacro %}
