{#-
    Dates and timestamps as FLSs send them (docs/specification/submission-format.md), in the formats of vars
    submission_date_formats and submission_timestamp_formats (strftime codes, held once: the loader
    and the GX suites read them too, through flsdb/contract.py). Every engine accepts exactly what
    DuckDB's strptime accepts for these formats: the year in 1 to 4 digits, month, day, hour, minute
    and second in 1 or 2 digits, surrounding whitespace ignored, and nothing else; a date that does
    not exist (31/02/2024) is null. tests/spark checks the engines agree on a list of edge cases.
-#}

{#- A submission date, in any of var submission_date_formats. Null when it is in none of them or
    does not exist. -#}
{% macro parse_submission_date(raw) %}
    {{ return(adapter.dispatch('parse_submission_date', 'flsdb')(raw)) }}
{% endmacro %}

{% macro default__parse_submission_date(raw) %}
    {{ exceptions.raise_compiler_error(
        "parse_submission_date has no implementation for " ~ target.type
        ~ ": add " ~ target.type ~ "__parse_submission_date to macros/cross_engine/parse_submission_date.sql") }}
{% endmacro %}

{% macro duckdb__parse_submission_date(raw) %}
    coalesce(
        {%- for format in var('submission_date_formats') %}
        cast(try_strptime({{ raw }}, '{{ format }}') as date){{ ',' if not loop.last }}
        {%- endfor %}
    )
{% endmacro %}

{% macro spark__parse_submission_date(raw) %}
    coalesce(
        {%- for format in var('submission_date_formats') %}
        {{ _spark_date_from_match(
            raw, spark_regex_literal(_spark_format_regex(format)),
            _spark_format_group(format, 'Y'), _spark_format_group(format, 'm'),
            _spark_format_group(format, 'd')) }}{{ ',' if not loop.last }}
        {%- endfor %}
    )
{% endmacro %}


{#- `Last Updated`: any of var submission_timestamp_formats (a space in a format stands for any
    whitespace), as a timestamp without time zone. -#}
{% macro parse_submission_timestamp(raw) %}
    {{ return(adapter.dispatch('parse_submission_timestamp', 'flsdb')(raw)) }}
{% endmacro %}

{% macro default__parse_submission_timestamp(raw) %}
    {{ exceptions.raise_compiler_error(
        "parse_submission_timestamp has no implementation for " ~ target.type
        ~ ": add " ~ target.type ~ "__parse_submission_timestamp to macros/cross_engine/parse_submission_date.sql") }}
{% endmacro %}

{% macro duckdb__parse_submission_timestamp(raw) %}
    coalesce(
        {%- for format in var('submission_timestamp_formats') %}
        try_strptime({{ raw }}, '{{ format }}'){{ ',' if not loop.last }}
        {%- endfor %}
    )
{% endmacro %}

{#- timestamp_ntz: a wall-clock time, like DuckDB's TIMESTAMP, so no session time zone or daylight
    saving change can move it. -#}
{% macro spark__parse_submission_timestamp(raw) %}
    coalesce(
        {%- for format in var('submission_timestamp_formats') %}
        {{ _spark_timestamp_from_match(raw, format) }}{{ ',' if not loop.last }}
        {%- endfor %}
    )
{% endmacro %}

{% macro _spark_timestamp_from_match(raw, format) %}
    {%- set pattern = spark_regex_literal(_spark_format_regex(format)) -%}
    case
        when
            {{ raw }} rlike '{{ pattern }}'
            and cast(regexp_extract({{ raw }}, '{{ pattern }}', {{ _spark_format_group(format, 'Y') }}) as int) >= 1
            -- make_timestamp_ntz turns second 60 into the next minute; strptime refuses it.
            and cast(regexp_extract({{ raw }}, '{{ pattern }}', {{ _spark_format_group(format, 'S') }}) as int) <= 59
            then try_make_timestamp_ntz(
                {%- for code in ['Y', 'm', 'd', 'H', 'M', 'S'] %}
                cast(regexp_extract({{ raw }}, '{{ pattern }}', {{ _spark_format_group(format, code) }}) as int){{ ',' if not loop.last }}
                {%- endfor %}
            )
    end
{% endmacro %}


{#- The Java regex of a strftime format as DuckDB's strptime reads it: %Y a year of 1 to 4 digits,
    %m %d %H %M %S 1 or 2 digits (each a capture group, in the format's order), a space any run of
    whitespace, other characters themselves (escaped when special), whitespace around ignored. The
    text of the regex, before spark_regex_literal. -#}
{% macro _spark_format_regex(format) -%}
    {%- set parts = format.split('%') -%}
    ^\s*{{ _spark_regex_literal_text(parts[0]) }}
    {%- for part in parts[1:] -%}
        {%- if part[:1] == 'Y' -%}([0-9]{1,4})
        {%- elif part[:1] in ('m', 'd', 'H', 'M', 'S') -%}([0-9]{1,2})
        {%- else -%}{{ exceptions.raise_compiler_error("date format '" ~ format ~ "': %" ~ part[:1] ~ " is not supported") }}
        {%- endif -%}
        {{ _spark_regex_literal_text(part[1:]) }}
    {%- endfor -%}
    \s*$
{%- endmacro %}

{#- Literal format text as regex: a space is any run of whitespace, special characters escaped. -#}
{% macro _spark_regex_literal_text(text) -%}
    {%- for character in text -%}
        {%- if character == ' ' -%}\s+
        {%- elif character in '.^$*+?()[]{}|\\' -%}\{{ character }}
        {%- else -%}{{ character }}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}

{#- The capture group (1-based) of strftime code `code` in `format`. -#}
{% macro _spark_format_group(format, code) -%}
    {%- set codes = format.split('%')[1:] | map('first') | list -%}
    {{ codes.index(code) + 1 }}
{%- endmacro %}


{#- The date of the year, month and day captured by `pattern` (already a Spark SQL literal body:
    see spark_regex_literal), or
    null. Year 0 is refused up front (Spark's parser raises an error for it rather than a null;
    DuckDB reads it as 1 BC, which no real submission uses). -#}
{% macro _spark_date_from_match(raw, pattern, year_group, month_group, day_group) %}
    case
        when
            {{ raw }} rlike '{{ pattern }}'
            and cast(regexp_extract({{ raw }}, '{{ pattern }}', {{ year_group }}) as int) >= 1
            then try_to_date(
                concat_ws(
                    '-',
                    lpad(regexp_extract({{ raw }}, '{{ pattern }}', {{ year_group }}), 4, '0'),
                    lpad(regexp_extract({{ raw }}, '{{ pattern }}', {{ month_group }}), 2, '0'),
                    lpad(regexp_extract({{ raw }}, '{{ pattern }}', {{ day_group }}), 2, '0')
                ),
                'yyyy-MM-dd'
            )
    end
{% endmacro %}
