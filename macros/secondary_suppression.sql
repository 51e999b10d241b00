{#-
    Secondary (complementary) suppression, the one mechanism (docs/bi.md, "Suppression"), used by
    published_kpi_results (yearly results) and published_kpi_monthly (monthly series).

    Emits CTEs, each followed by a comma, ending with `suppressed_after_pass_<passes>`
    (cell_id, is_suppressed), to be placed inside a `with` list. It reads two CTEs of the caller:
      cells_cte:   cell_id, is_primary_suppressed, is_fixed (a cell whose suppression is decided
                   elsewhere and may not be chosen as a complement, e.g. a yearly result seen from
                   the monthly series), is_protected (false for a member that is unknown to the
                   reader but no secret: it counts as blank, yet being the only blank member of a
                   relation gives nothing away that needs a complement);
      members_cte: relation_id, cell_id, choice_order (1 = the first complement to choose).
    Rule: a relation with exactly one suppressed member would give that member away by
    subtraction, and relations cross (a cell is part of several), so a chain of them can solve
    for two; so a relation with a protected suppressed member but fewer than `min_cells`
    suppressed members (or fewer than all its members, when it has fewer) gets as many of its
    first published members that are not fixed (in choice order) suppressed as it lacks; repeated `passes` times,
    since a complement can leave another relation short (unrolled: portable SQL, no recursive
    CTE). `min_cells` 2 is the plain rule "never exactly one".
-#}
{% macro secondary_suppression_passes(cells_cte, members_cte, passes, min_cells=2) -%}
    suppressed_after_pass_0 as {{ materialized_cte() }} (
        select
            cell_id,
            is_primary_suppressed as is_suppressed
        from {{ cells_cte }}
    ),
{%- for pass_number in range(passes) %}
    {%- set previous = 'suppressed_after_pass_' ~ pass_number %}

    -- Each pass reads the one before exactly once, so the plan grows linearly with the passes
    -- (Spark inlines CTEs: reading it twice doubled the plan at every pass), and each is
    -- materialised where the engine can (DuckDB's planning time otherwise grew about tenfold every
    -- two passes: macros/cross_engine/materialized_cte.sql).
    suppressed_after_pass_{{ pass_number + 1 }} as {{ materialized_cte() }} (
        select
            cell_id,
            max(case when is_suppressed or is_chosen then 1 else 0 end) = 1 as is_suppressed
        from (
            -- The first published members of each relation with too few suppressed members, as
            -- many as it lacks, are chosen.
            select
                cell_id,
                is_suppressed,
                coalesce(
                    relation_id is not null
                    and protected_members > 0
                    and is_candidate
                    and candidate_rank <= least(relation_members, {{ min_cells }}) - suppressed_members,
                    false
                ) as is_chosen
            from (
                select
                    {{ previous }}.cell_id,
                    {{ previous }}.is_suppressed,
                    {{ members_cte }}.relation_id,
                    sum(case when {{ previous }}.is_suppressed then 1 else 0 end)
                        over (partition by {{ members_cte }}.relation_id)
                        as suppressed_members,
                    sum(case when {{ previous }}.is_suppressed and {{ cells_cte }}.is_protected then 1 else 0 end)
                        over (partition by {{ members_cte }}.relation_id)
                        as protected_members,
                    count(*) over (partition by {{ members_cte }}.relation_id) as relation_members,
                    not {{ previous }}.is_suppressed and not {{ cells_cte }}.is_fixed as is_candidate,
                    -- 1, 2, ... for the members that may be chosen, in choice order.
                    sum(
                        case when not {{ previous }}.is_suppressed and not {{ cells_cte }}.is_fixed then 1 else 0 end
                    ) over (
                        partition by {{ members_cte }}.relation_id order by {{ members_cte }}.choice_order
                        rows between unbounded preceding and current row
                    ) as candidate_rank
                from {{ previous }}
                left join {{ members_cte }}
                    on {{ previous }}.cell_id = {{ members_cte }}.cell_id
                left join {{ cells_cte }}
                    on {{ previous }}.cell_id = {{ cells_cte }}.cell_id
            ) as members_counted
        ) as members_chosen
        group by cell_id
    ),
{%- endfor %}
{%- endmacro %}

{#-
    The members of the caller's relations in the order a complement is chosen, the `choice_order`
    that secondary_suppression_passes reads: parts before the total, then the smallest denominator,
    then the smallest numerator, then the cell's key. One place for that order, used by
    published_kpi_results and published_kpi_monthly.

    Emits a select (the body of the caller's members CTE) of relation_id, cell_id, choice_order.
    It reads two CTEs of the caller:
      relations_cte: relation_id, is_total and the key columns of each member;
      cells_cte:     cell_id, numerator, denominator and the same key columns;
    keys: the columns that name a cell in both (the join keys), e.g. ['audit_year', 'kpi_number'].
-#}
{% macro secondary_suppression_members(relations_cte, cells_cte, keys) -%}
    select
        {{ relations_cte }}.relation_id,
        {{ cells_cte }}.cell_id,
        row_number() over (
            partition by {{ relations_cte }}.relation_id
            order by
                case when {{ relations_cte }}.is_total then 1 else 0 end,
                coalesce({{ cells_cte }}.denominator, 0),
                coalesce({{ cells_cte }}.numerator, 0),
                {{ cells_cte }}.cell_id
        ) as choice_order
    from {{ relations_cte }}
    inner join {{ cells_cte }}
        on
        {%- for key in keys %}
            {% if not loop.first %}and {% endif %}{{ relations_cte }}.{{ key }} = {{ cells_cte }}.{{ key }}
        {%- endfor %}
{%- endmacro %}
