{#-
    Keyed pseudonym of an identifier: hex HMAC-SHA256(key, value), per RFC 2104.

    The key is never written into SQL, compiled files, logs, configuration or query plans: it is
    read from the environment variable FLSDB_PSEUDONYM_KEY at query time, by the engine itself.
    - DuckDB: the function flsdb_pseudonym_key(), registered by the dbt-duckdb plugin
      flsdb.dbt_duckdb_plugin, reads it from the dbt process's environment.
    - Spark: reflect('java.lang.System', 'getenv', ...) reads it from the environment of the JVM
      that runs the query (in session mode, the one dbt starts, which inherits dbt's environment;
      on a cluster, the driver's and executors' environment: see docs/spark.md).
    Without it a fixed, clearly labelled development key is used, which is refused unless
    var('data_is_synthetic') is true. A key longer than 64 characters or not ASCII is refused.
    Both engines give the same pseudonym for the same key and value (tests/spark checks it).

    Usage: `{{ pseudonym_key_pads() }}` as a one-row CTE, cross joined, then
    `{{ pseudonymise('column', 'that_cte') }}`.
-#}
{% macro pseudonym_key_pads() %}
    {{ return(adapter.dispatch('pseudonym_key_pads', 'flsdb')()) }}
{% endmacro %}

{% macro pseudonymise(expression, pads) %}
    {{ return(adapter.dispatch('pseudonymise', 'flsdb')(expression, pads)) }}
{% endmacro %}

{#- The key XORed with the HMAC inner (0x36) and outer (0x5c) pads, byte by byte, once. -#}
{% macro default__pseudonym_key_pads() %}
    {{ exceptions.raise_compiler_error(
        "pseudonym_key_pads has no implementation for " ~ target.type
        ~ ": add " ~ target.type ~ "__pseudonym_key_pads to macros/cross_engine/pseudonymise.sql") }}
{% endmacro %}

{% macro duckdb__pseudonym_key_pads() %}
    select
        {%- for name, pad_byte in [('inner_pad', 54), ('outer_pad', 92)] %}
            unhex(array_to_string(list_transform(
                range(1, 65),
                i -> printf('%02x', xor(coalesce(ascii(substr(key, cast(i as integer), 1)), 0), {{ pad_byte }}))
            ), '')) as {{ name }},
        {%- endfor %}
        key = 'DEVELOPMENT-KEY-SYNTHETIC-DATA-ONLY' as is_development_key
    from (select flsdb_pseudonym_key() as key) as configured_key
    {%- if not var('data_is_synthetic') %}
        where
            not (key = 'DEVELOPMENT-KEY-SYNTHETIC-DATA-ONLY')
            or error('FLSDB_PSEUDONYM_KEY is not set: real data must not be pseudonymised with the development key')
    {%- endif %}
{% endmacro %}

{% macro default__pseudonymise(expression, pads) %}
    {{ exceptions.raise_compiler_error(
        "pseudonymise has no implementation for " ~ target.type
        ~ ": add " ~ target.type ~ "__pseudonymise to macros/cross_engine/pseudonymise.sql") }}
{% endmacro %}

{% macro duckdb__pseudonymise(expression, pads) %}
    sha256({{ pads }}.outer_pad || unhex(sha256({{ pads }}.inner_pad || cast({{ expression }} as blob))))
{% endmacro %}


{#- The same pads on Spark. reflect() returns the text 'null' for an unset variable. -#}
{% macro spark__pseudonym_key_pads() %}
    {%- set development_key = 'DEVELOPMENT-KEY-SYNTHETIC-DATA-ONLY' %}
    select
        {%- for name, pad_byte in [('inner_pad', 54), ('outer_pad', 92)] %}
            unhex(array_join(transform(
                sequence(1, 64),
                i -> lpad(hex(ascii(substr(key, i, 1)) ^ {{ pad_byte }}), 2, '0')
            ), '')) as {{ name }},
        {%- endfor %}
        key = '{{ development_key }}' as is_development_key
    from (
        select coalesce(
            nullif(nullif(reflect('java.lang.System', 'getenv', 'FLSDB_PSEUDONYM_KEY'), 'null'), ''),
            '{{ development_key }}'
        ) as key
    ) as configured_key
    where
        case
            when length(key) > 64 or octet_length(key) != length(key)
                then raise_error('FLSDB_PSEUDONYM_KEY must be at most 64 ASCII characters')
            {#- The same rule as flsdb.dbt_duckdb_plugin.check_pseudonym_key (DuckDB), which the
                CLI also runs before dbt: a key that is set has at least 32 bytes. #}
            when key != '{{ development_key }}' and length(trim(key)) < 32
                then raise_error('FLSDB_PSEUDONYM_KEY is too short: a pseudonym key must be at least 32 bytes')
            {%- if not var('data_is_synthetic') %}
            when key = '{{ development_key }}'
                then raise_error('FLSDB_PSEUDONYM_KEY is not set: real data must not be pseudonymised with the development key')
            {%- endif %}
            else true
        end
{% endmacro %}

{#- sha2(..., 256) gives lower-case hex, as DuckDB's sha256 does. -#}
{% macro spark__pseudonymise(expression, pads) %}
    sha2(
        concat({{ pads }}.outer_pad, unhex(sha2(concat({{ pads }}.inner_pad, cast({{ expression }} as binary)), 256))),
        256
    )
{% endmacro %}
