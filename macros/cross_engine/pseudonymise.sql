{#-
    Keyed pseudonym of an identifier: hex HMAC-SHA256(key, value), per RFC 2104.
    The key comes from the environment variable FLSDB_PSEUDONYM_KEY (at most 64 ASCII characters).
    Without it, a fixed and clearly labelled development key is used: fit for synthetic data only.
    The same key must be used for every build, or pseudonyms will not link across builds.
-#}
{% macro pseudonym_key() %}
    {{ return(env_var('FLSDB_PSEUDONYM_KEY', 'DEVELOPMENT-KEY-SYNTHETIC-DATA-ONLY')) }}
{% endmacro %}

{% macro pseudonymise(expression) %}
    {{ return(adapter.dispatch('pseudonymise', 'flsdb')(expression)) }}
{% endmacro %}

{#- HMAC needs the key XORed with the inner (0x36) and outer (0x5c) pads, byte by byte. -#}
{% macro default__hmac_pad(pad_byte) %}
    unhex(array_to_string(list_transform(
        range(1, 65),
        i -> printf('%02x', xor(coalesce(ascii(substr('{{ pseudonym_key() }}', cast(i as integer), 1)), 0), {{ pad_byte }}))
    ), ''))
{% endmacro %}

{% macro default__pseudonymise(expression) %}
    sha256(
        {{ default__hmac_pad(92) }}
        || unhex(sha256({{ default__hmac_pad(54) }} || cast({{ expression }} as blob)))
    )
{% endmacro %}

{% macro spark__pseudonymise(expression) %}
    {#- Spark has no HMAC built in; the same construction from sha2 and hex/unhex. -#}
    sha2(concat(
        unhex(concat_ws('', transform(sequence(1, 64), i -> lpad(hex(
            coalesce(ascii(substr('{{ pseudonym_key() }}', i, 1)), 0) ^ 92), 2, '0')))),
        unhex(sha2(concat(
            unhex(concat_ws('', transform(sequence(1, 64), i -> lpad(hex(
                coalesce(ascii(substr('{{ pseudonym_key() }}', i, 1)), 0) ^ 54), 2, '0')))),
            cast({{ expression }} as binary)), 256))
    ), 256)
{% endmacro %}
