{#-
    Fails with one row per column of `model` that holds, or is named like, a patient identifier:
    an NHS number (10 digits, spaces or hyphens allowed), a UK postcode, or a date of birth.
    Identifiers may exist in the raw schema only (docs/specification/submission-format.md, "Identifiers and privacy").
-#}
{% test no_identifiers(model) %}
    {%- set nhs_number_pattern = '^[0-9]{3}[ -]?[0-9]{3}[ -]?[0-9]{4}$' %}
    {%- set postcode_pattern = '^[A-Za-z]{1,2}[0-9][A-Za-z0-9]? ?[0-9][A-Za-z]{2}$' %}
    {%- set identifier_names = ['nhs_number', 'nhs number', 'date_of_birth', 'date of birth', 'birth_date', 'postcode', 'post code'] %}
    {%- set columns = adapter.get_columns_in_relation(model) if execute else [] %}

    select
        'column name' as finding,
        '' as column_name,
        0 as matching_rows
    where false
    {%- for column in columns %}
        {%- set name = column.name | lower %}
        {%- for identifier_name in identifier_names if identifier_name in name and name != 'postcode_match_status' %}
            {%- if loop.first %}

    union all

    select
        'identifier-like column name' as finding,
        '{{ column.name }}' as column_name,
        1 as matching_rows
            {%- endif %}
        {%- endfor %}
        {%- if column.is_string() %}

    union all

    select
        'identifier-like values' as finding,
        '{{ column.name }}' as column_name,
        count(*) as matching_rows
    from {{ model }}
    where
        {{ regex_full_match(adapter.quote(column.name), nhs_number_pattern) }}
        or {{ regex_full_match(adapter.quote(column.name), postcode_pattern) }}
    having count(*) > 0
        {%- elif column.dtype | lower == 'date' and ('birth' in name or 'dob' in name) %}

    union all

    select
        'date of birth column' as finding,
        '{{ column.name }}' as column_name,
        1 as matching_rows
        {%- endif %}
    {%- endfor %}
{% endtest %}
