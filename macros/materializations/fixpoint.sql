{#-
    materialized='fixpoint': a table computed by repeating one pass until a pass changes nothing.

    The model's SQL is one pass. It reads the result of the pass before through `{{ this }}`
    (empty before the first pass: zero rows, with the columns and data types that the model's yml
    declares) and selects the next result. The materialization:
      1. creates `{{ this }}` empty, from the declared columns (the model must declare a data_type
         for each);
      2. builds the pass into `<model>__next_pass`, counts the rows of the new result that are not
         in the old one (`except`), and puts the new result in place of the old;
      3. repeats 2 until a pass changes no row, and fails with a clear error when that has not
         happened after config max_passes passes.
    So the SQL that lint checks is the SQL that runs, once per pass. Only adapter methods and
    `get_create_table_as_sql` are used: it runs on DuckDB and on Spark alike. The pass must be
    monotone (for example, a flag that can only go from false to true) so that it converges.
-#}
{% materialization fixpoint, default %}
    {%- set max_passes = config.require('max_passes') | int -%}
    {%- set target_relation = this.incorporate(type='table') -%}
    {%- set next_relation = make_intermediate_relation(target_relation, '__next_pass') -%}
    {%- if not model.columns -%}
        {{ exceptions.raise_compiler_error(
            "fixpoint model " ~ this ~ " declares no columns: the yml must list every column the pass "
            ~ "selects, with its data_type (the state before the first pass is built from them)") }}
    {%- endif -%}

    {{ drop_relation_if_exists(load_cached_relation(target_relation)) }}
    {{ drop_relation_if_exists(load_cached_relation(next_relation)) }}
    {{ run_hooks(pre_hooks, inside_transaction=False) }}
    {{ run_hooks(pre_hooks, inside_transaction=True) }}

    {%- set empty_state -%}
        select
        {%- for column in model.columns.values() %}
            {%- if not column.data_type %}
                {{ exceptions.raise_compiler_error("fixpoint model " ~ this ~ ": column " ~ column.name ~ " has no data_type in the yml") }}
            {%- endif %}
            cast(null as {{ column.data_type }}) as {{ column.name }}{{ "," if not loop.last }}
        {%- endfor %}
        where 1 = 0
    {%- endset -%}
    {% call statement('empty_state') -%}
        {{ get_create_table_as_sql(False, target_relation, empty_state) }}
    {%- endcall %}

    {%- set state = namespace(changed_rows=-1, passes=0) -%}
    {%- for pass_number in range(1, max_passes + 1) -%}
        {%- if state.changed_rows != 0 -%}
            {% call statement('pass') -%}
                {{ get_create_table_as_sql(False, next_relation, sql) }}
            {%- endcall %}
            {%- set count_changes -%}
                select count(*) as changed_rows
                from (select * from {{ next_relation }} except select * from {{ target_relation }}) as changed
            {%- endset -%}
            {%- set state.changed_rows = run_query(count_changes).columns[0].values()[0] | int -%}
            {%- set state.passes = pass_number -%}
            {{ log(this ~ ": pass " ~ pass_number ~ " changed " ~ state.changed_rows ~ " rows") }}
            {{ adapter.drop_relation(target_relation) }}
            {{ adapter.rename_relation(next_relation, target_relation) }}
        {%- endif -%}
    {%- endfor -%}

    {%- if state.changed_rows != 0 -%}
        {{ exceptions.raise_compiler_error(
            "fixpoint model " ~ this ~ " did not converge: pass " ~ max_passes ~ " (max_passes) still changed "
            ~ state.changed_rows ~ " rows. Raise max_passes if the data needs more passes, or look for a "
            ~ "pass that is not monotone (one that can undo what an earlier pass did).") }}
    {%- endif -%}

    {% call statement('main') -%}
        select {{ state.passes }} as passes
    {%- endcall %}

    {{ run_hooks(post_hooks, inside_transaction=True) }}
    {{ adapter.commit() }}
    {{ run_hooks(post_hooks, inside_transaction=False) }}
    {{ return({'relations': [target_relation]}) }}
{% endmaterialization %}
