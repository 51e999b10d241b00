{#-
    The on-run-start hook of every dbt command that runs on the warehouse (dbt_project.yml): it
    forgets the record of the last successful `flsdb build` (flsdb/build_state.py), so that a
    build made since by any other command (a partial `dbt run`, a data-only refresh, other vars)
    is never taken for the recorded one; `flsdb build` records a new one when its build succeeds.
    - duckdb: drops build_state.fingerprint.
    - default: no record is kept on other engines; nothing to forget (an empty hook).
-#}
{% macro forget_build_fingerprint() -%}
    {{ return(adapter.dispatch('forget_build_fingerprint', 'flsdb')()) }}
{%- endmacro %}

{% macro default__forget_build_fingerprint() -%}
{%- endmacro %}

{% macro duckdb__forget_build_fingerprint() -%}
    drop table if exists build_state.fingerprint
{%- endmacro %}
