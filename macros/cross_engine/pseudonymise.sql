{#-
    Keyed pseudonym of an identifier: hex HMAC-SHA256(key, value), per RFC 2104.

    The key is never written into SQL. On DuckDB the function flsdb_pseudonym_key(), registered by
    the dbt-duckdb plugin flsdb.dbt_duckdb_plugin, reads it from the environment variable
    FLSDB_PSEUDONYM_KEY at query time; without it a fixed, clearly labelled development key is used,
    which is refused unless var('data_is_synthetic') is true.

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
    sha256({{ pads }}.outer_pad || unhex(sha256({{ pads }}.inner_pad || cast({{ expression }} as blob))))
{% endmacro %}
