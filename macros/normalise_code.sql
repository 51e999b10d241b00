{#- A code (an FLS, region or country code) as the warehouse spells it: normalise_code_text, upper
    case. One rule for submissions and for the codes people type into the hand-edited seeds
    (spc_rebase_months, spc_fixed_baselines, outlier_decisions), so `syn012 ` means SYN012. -#}
{% macro normalise_code(expression) -%}
    upper({{ normalise_code_text(expression) }})
{%- endmacro %}
