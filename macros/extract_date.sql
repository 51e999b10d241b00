{#- The extract date E (docs/specification/kpi-definitions.md): the dbt var extract_date when set, otherwise the
    date part of the latest `Last Updated` among accepted records, so a rebuild of the same data
    gives the same results. -#}
{% macro extract_date() %}
    {%- if var('extract_date') -%}
        cast('{{ var("extract_date") }}' as date)
    {%- else -%}
        (select cast(max(last_updated_at) as date) from {{ ref('stg_fls_db__submission_records') }})
    {%- endif -%}
{% endmacro %}
