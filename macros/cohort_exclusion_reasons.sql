{#- Why a record is outside the cohort (int_episodes_scoped.exclusion_reason), written once: the
    model sets these texts and dq_checks counts the exclusions by them. The age is var minimum_age,
    the rule's own threshold. -#}
{% macro cohort_exclusion_reasons() %}
    {{ return({
        'under_minimum_age': 'aged under ' ~ var('minimum_age') ~ ' at the fracture',
        'duplicate_episode': 'duplicate episode',
        'fracture_after_extract': 'fracture after the extract date',
    }) }}
{% endmacro %}
