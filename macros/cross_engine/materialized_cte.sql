{#-
    The keyword that makes a CTE be computed once and stored while the query runs, placed between
    `as` and the CTE's opening parenthesis: `name as {{ materialized_cte() }} (select ...)`.
    - duckdb: `materialized`. DuckDB otherwise inlines a CTE into its reader, so the chain of
      secondary-suppression passes (macros/secondary_suppression.sql) became one plan whose
      optimisation time grew about tenfold every two passes: EXPLAIN took 0.1 s at 6 passes,
      3.9 s at 10 and more than 200 s at 12; with each pass materialised it takes 0.1 s at 12, and
      the output is identical.
    - default (Spark): nothing; Spark has no such keyword and plans the chain linearly already
      (each pass reads the one before once).
-#}
{% macro materialized_cte() -%}
    {{ return(adapter.dispatch('materialized_cte', 'flsdb')()) }}
{%- endmacro %}

{% macro default__materialized_cte() -%}
{%- endmacro %}

{% macro duckdb__materialized_cte() -%}
    materialized
{%- endmacro %}
