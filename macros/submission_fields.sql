{#-
    The raw submission contract of docs/specification/submission-format.md, read from its one home, the seed
    seeds/submission_fields.csv (DEVELOPERS.md, "The submission contract"): one row per raw column,
    in docs/specification/submission-format.md's order. flsdb/contract.py reads the same file for Python.

    submission_contract() returns the seed's rows as dicts ordered by field_number, typed by
    seed_records (macros/seed_records.sql): `is_*` columns booleans, `field_number` and
    `max_days_after_fracture` integers, empty cells none, the rest text (min and max as written).
-#}
{% macro submission_contract() %}
    {{ return(seed_records('submission_fields', 'field_number')) }}
{% endmacro %}


{#-
    The optional clinical fields of a submission, as one list that staging loops over: every
    contract column that is neither required nor an identifier (those are staged by hand in the
    model). Each entry: the raw column name, the staged column name, and how it is checked:
      code:<list>       a coded answer, matched trimmed and case-insensitively against
                        code_list(list) and stored in its listed spelling;
      number:<min>:<max> a number in a range (kinds number and integer);
      date_after_fracture:<max days>  a date that may not fall before the fracture (nor, when
                        max days is given, more than that many days after it);
      date              a date with no rule relative to the fracture.
    A value that breaks its rule is a warning: the field is set to not recorded and the reason kept.
-#}
{% macro submission_fields() %}
    {%- set fields = [] -%}
    {%- for field in submission_contract() if not field.is_required and not field.is_identifier -%}
        {%- if field.kind == 'code' -%}
            {%- set check = 'code:' ~ field.code_list -%}
        {%- elif field.kind in ('number', 'integer') -%}
            {%- set check = 'number:' ~ field.min_value ~ ':' ~ field.max_value -%}
        {%- elif field.kind == 'date' and field.date_rule == 'not_before_fracture' -%}
            {%- set check = 'date_after_fracture:' ~ (field.max_days_after_fracture or '') -%}
        {%- elif field.kind == 'date' and field.date_rule is none -%}
            {%- set check = 'date' -%}
        {%- else -%}
            {{ exceptions.raise_compiler_error(
                "seeds/submission_fields.csv: no staging rule for optional field '" ~ field.column_name
                ~ "' of kind " ~ field.kind ~ " (date rule " ~ field.date_rule ~ ")") }}
        {%- endif -%}
        {%- do fields.append({'column': field.column_name, 'name': field.staged_name, 'check': check}) -%}
    {%- endfor -%}
    {{ return(fields) }}
{% endmacro %}


{#- The staged (typed, not yet warned) value of one field, from its trimmed raw text. -#}
{% macro stage_field_value(field, raw) %}
    {%- set kind = field.check.split(':')[0] -%}
    {%- if kind == 'code' -%}
        {{ recode_answer(raw, field.check.split(':')[1]) }}
    {%- elif kind == 'number' -%}
        try_cast({{ raw }} as double)
    {%- else -%}
        {{ parse_submission_date(raw) }}
    {%- endif -%}
{% endmacro %}


{#- Why a field's value is a warning (null when it is not): the rule it breaks, in plain English.
    `raw` is the trimmed raw text, `value` the staged value, `fracture_date` the parsed 1.09. -#}
{% macro field_warning_reason(field, raw, value, fracture_date) %}
    {%- set parts = field.check.split(':') -%}
    {%- set kind = parts[0] -%}
    case
        when {{ raw }} is null then null
        {%- if kind == 'code' %}
        when {{ value }} is null then 'not one of the listed codes'
        {%- elif kind == 'number' %}
        when {{ value }} is null then 'not a number'
        when {{ value }} < {{ parts[1] }} or {{ value }} > {{ parts[2] }}
            then 'outside the range {{ parts[1] }} to {{ parts[2] }}'
        {%- else %}
        when {{ value }} is null then 'not a valid date'
        {%- endif %}
        {%- if kind == 'date_after_fracture' %}
        when {{ value }} < {{ fracture_date }} then 'dated before the fracture'
        {%- if parts[1] %}
        when {{ value }} > {{ dbt.dateadd('day', parts[1], fracture_date) }}
            then 'dated more than {{ (parts[1] | int) // 365 }} years after the fracture'
        {%- endif %}
        {%- endif %}
    end
{% endmacro %}


{#- A coded answer, already normalised (normalise_code_text), matched case-insensitively against the
    codes of var('submission_code_lists')[list_name] and their documented wordings, and returned in
    its listed spelling. The wordings are derived as flsdb/contract.py code_wordings() does. -#}
{% macro recode_answer(raw, list_name) %}
    {%- set codes = code_list(list_name) %}
    {%- set wordings = code_wordings(list_name) %}
    case lower({{ raw }})
        {%- for code in codes %}
        when '{{ code | lower | replace("'", "''") }}' then '{{ code | replace("'", "''") }}'
        {%- endfor %}
        {%- for wording, code in wordings.items() %}
        when '{{ wording | lower | replace("'", "''") }}' then '{{ code | replace("'", "''") }}'
        {%- endfor %}
    end
{% endmacro %}


{#- The codes of var('submission_code_lists')[list_name], in order; an item that is a list (the
    named drugs, written once as *named_drugs in dbt_project.yml) stands for its codes. -#}
{% macro code_list(list_name) %}
    {%- set codes = [] %}
    {%- for item in var('submission_code_lists')[list_name] %}
        {%- if item is string %}
            {%- do codes.append(item) %}
        {%- else %}
            {%- do codes.extend(item) %}
        {%- endif %}
    {%- endfor %}
    {{ return(codes) }}
{% endmacro %}


{#- The documented wordings of a code list, wording -> code (dbt_project.yml, the coded-answer
    block): the explicit ones, and every named drug followed by the list's wording suffix. -#}
{% macro code_wordings(list_name) %}
    {%- set wordings = {} %}
    {%- do wordings.update(var('submission_code_wordings', {}).get(list_name, {})) %}
    {%- set suffix = var('named_drug_wording_suffixes', {}).get(list_name) %}
    {%- if suffix %}
        {%- for drug in var('named_drugs') %}
            {%- do wordings.update({drug ~ ' ' ~ suffix: drug}) %}
        {%- endfor %}
    {%- endif %}
    {{ return(wordings) }}
{% endmacro %}


{#- A submitted text with whitespace of any kind (var code_whitespace_pattern: tabs, CR, no-break
    and other Unicode spaces) removed around it and every run inside made one space; null when
    nothing is left. The loader reads answers the same way (flsdb/contract.py). -#}
{% macro normalise_code_text(expression) %}
    {%- set pattern = var('code_whitespace_pattern') %}
    nullif({{ regex_replace_all(
        regex_replace_all(expression, '^' ~ pattern ~ '|' ~ pattern ~ '$', ''),
        pattern, ' ') }}, '')
{% endmacro %}
