{#-
    Dates and timestamps as FLSs send them (dataset.md). Every engine accepts exactly what DuckDB's
    strptime accepts for these formats: the year in 1 to 4 digits, month, day, hour, minute and
    second in 1 or 2 digits, surrounding whitespace ignored, and nothing else; a date that does
    not exist (31/02/2024) is null. tests/spark checks the engines agree on a list of edge cases.
-#}

{#- A submission date: ISO YYYY-MM-DD or UK DD/MM/YYYY. Null when it is neither or does not exist. -#}
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
        cast(try_strptime({{ raw }}, '%Y-%m-%d') as date),
        cast(try_strptime({{ raw }}, '%d/%m/%Y') as date)
    )
{% endmacro %}

{% macro spark__parse_submission_date(raw) %}
    {%- set iso = spark_regex_literal('^\\s*([0-9]{1,4})-([0-9]{1,2})-([0-9]{1,2})\\s*$') -%}
    {%- set uk = spark_regex_literal('^\\s*([0-9]{1,2})/([0-9]{1,2})/([0-9]{1,4})\\s*$') -%}
    coalesce(
        {{ _spark_date_from_match(raw, iso, 1, 2, 3) }},
        {{ _spark_date_from_match(raw, uk, 3, 2, 1) }}
    )
{% endmacro %}


{#- `Last Updated`: YYYY-MM-DDTHH:MM:SS or YYYY-MM-DD HH:MM:SS (any whitespace between date and
    time), as a timestamp without time zone. -#}
{% macro parse_submission_timestamp(raw) %}
    {{ return(adapter.dispatch('parse_submission_timestamp', 'flsdb')(raw)) }}
{% endmacro %}

{% macro default__parse_submission_timestamp(raw) %}
    {{ exceptions.raise_compiler_error(
        "parse_submission_timestamp has no implementation for " ~ target.type
        ~ ": add " ~ target.type ~ "__parse_submission_timestamp to macros/cross_engine/parse_submission_date.sql") }}
{% endmacro %}

{% macro duckdb__parse_submission_timestamp(raw) %}
    coalesce(try_strptime({{ raw }}, '%Y-%m-%dT%H:%M:%S'), try_strptime({{ raw }}, '%Y-%m-%d %H:%M:%S'))
{% endmacro %}

{#- timestamp_ntz: a wall-clock time, like DuckDB's TIMESTAMP, so no session time zone or daylight
    saving change can move it. -#}
{% macro spark__parse_submission_timestamp(raw) %}
    {%- set pattern = spark_regex_literal(
        '^\\s*([0-9]{1,4})-([0-9]{1,2})-([0-9]{1,2})(?:T|\\s+)([0-9]{1,2}):([0-9]{1,2}):([0-9]{1,2})\\s*$') -%}
    case
        when
            {{ raw }} rlike '{{ pattern }}'
            and cast(regexp_extract({{ raw }}, '{{ pattern }}', 1) as int) >= 1
            -- make_timestamp_ntz turns second 60 into the next minute; strptime refuses it.
            and cast(regexp_extract({{ raw }}, '{{ pattern }}', 6) as int) <= 59
            then try_make_timestamp_ntz(
                {%- for group in range(1, 7) %}
                cast(regexp_extract({{ raw }}, '{{ pattern }}', {{ group }}) as int){{ ',' if not loop.last }}
                {%- endfor %}
            )
    end
{% endmacro %}


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
