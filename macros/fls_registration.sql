{#-
    Whether an FLS takes part in an audit year, from its registry row (seed `fls_registry`):
    from first_audit_year (from the start of the audit when null) to last_audit_year (open-ended
    when null). The one statement of this rule: the expected caseload (KPI 2/3 denominators), the
    KPI 2/3 numerator flags and the tests that compare them all call it, so numerators and
    denominators cover the same FLSs. A missing registry row (null first and last year, and a null
    fls_code) is not registered.
-#}
{% macro fls_is_registered_for_year(registry, audit_year) -%}
    (
        {{ registry }}.fls_code is not null
        and coalesce({{ registry }}.first_audit_year <= {{ audit_year }}, true)
        and coalesce({{ registry }}.last_audit_year >= {{ audit_year }}, true)
    )
{%- endmacro %}
