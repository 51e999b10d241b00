{#-
    A postcode as a join key: upper case with every space removed ("ab1 2cd" -> "AB12CD").
    Used on both sides of the postcode -> LSOA join so that they always agree.
-#}
{% macro normalise_postcode(column) -%}
    nullif(upper(replace(trim({{ column }}), ' ', '')), '')
{%- endmacro %}
