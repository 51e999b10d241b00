-- One row per cell of publication_suppression_cells: whether publication withholds it.
-- Why: the one decision of what is withheld, for the yearly results and the monthly series alike
-- (published_kpi_results and published_kpi_monthly read it). Written as ONE pass of secondary
-- (complementary) suppression; the fixpoint materialization (macros/materializations/fixpoint.sql)
-- starts from the primary suppression and repeats the pass, reading the pass before as
-- `{{ this }}`, until a pass changes nothing, and fails after var secondary_suppression_max_passes.
--
-- The rule (docs/bi.md, "Suppression"). Protection level P = suppression_max_small_count + 1
-- (5 patients): a reader of everything published must not know a small count to within less.
-- A withheld cell is PROTECTED (it must not be worked out) when it was withheld for small numbers
-- with at least one patient in a small count, chosen as a complement, or part of a pattern; a
-- cell with no patient and the months not in the series are blank but have nothing to hide.
-- One pass does two things, both from the state the pass before left:
-- 1. Patterns (publication_suppression_patterns: rectangles, pairs and ladders): each small cell
--    that has a pattern keeps one whose cells are all withheld; when none is, the pass withholds
--    the pattern needing the fewest, then smallest, new cells.
-- 2. Relation by relation (publication_suppression_relations), for every other protected cell. A
--    relation NEEDS a complement when it holds a protected withheld cell and
--    - that cell is its only protected withheld member (subtraction would give it away), or
--    - a withheld part has a small count (numerator, or patients not meeting the KPI), the total
--      is published, and the protected withheld parts hold fewer than P of that count between
--      them: a reader would know the small count within less than P.
--    A lone withheld member asks for a partner holding at least P of each count, since a reader's
--    interval for it moves with its partners; a small count of a lone withheld TOTAL needs none,
--    because its parts rise with it. (A small cell that has a pattern counts as a partner for the
--    others but asks for nothing itself: its pattern protects it.)
--    The complement, one per relation that needs one, is the cheapest cell that protects:
--      1. a published part holding at least the counts needed, smallest first (denominator, then
--         numerator, then key: publication_suppression_cells.cost_rank);
--      2. when no single part holds enough, the largest part (the next pass adds another while
--         the sum is short);
--      3. the only part of another relation (it equals that relation's total, which must follow);
--      4. the relation's total (an `all` row, a region, a country), only when every part is
--         withheld.
-- Cells are only ever added (withheld, protected), so the passes converge.

{{ config(materialized='fixpoint', max_passes=var('secondary_suppression_max_passes')) }}

{%- set protection_level = var('suppression_max_small_count') + 1 %}

with

cells as (
    select * from {{ ref('publication_suppression_cells') }}
),

relations as (
    select * from {{ ref('publication_suppression_relations') }}
    where relation_type in ({{ quoted_list(var('secondary_suppression_relation_types')) }})
),

patterns as (
    select * from {{ ref('publication_suppression_patterns') }}
),

previous_pass as (
    select * from {{ this }}
),

cells_before as (
    -- Each cell as the pass before left it (the first pass starts from the primary suppression).
    select
        cells.cell_id,
        cells.is_published,
        cells.is_primary_suppressed,
        cells.is_numerator_sensitive,
        cells.is_not_met_sensitive,
        cells.numerator_count,
        cells.not_met_count,
        cells.cost_rank,
        coalesce(previous_pass.is_suppressed, cells.is_primary_suppressed) as is_suppressed,
        coalesce(
            previous_pass.is_protected,
            cells.is_numerator_sensitive or cells.is_not_met_sensitive
        ) as is_protected
    from cells
    left join previous_pass
        on cells.cell_id = previous_pass.cell_id
),

-- 1. Patterns

pattern_costs as (
    -- The cells each pattern would withhold that are not withheld yet, and their cost.
    select
        patterns.pattern_id,
        sum(case when cells_before.is_suppressed then 0 else 1 end) as new_cells,
        sum(case when cells_before.is_suppressed then 0 else cells_before.cost_rank end) as new_cost
    from patterns
    inner join cells_before
        on patterns.cell_id = cells_before.cell_id
    where patterns.cell_role = 'corner'
    group by patterns.pattern_id
),

pattern_choices as (
    -- For each small cell, a pattern already withheld if there is one, else the cheapest.
    select
        patterns.cell_id as target_cell_id,
        patterns.pattern_id,
        row_number() over (
            partition by patterns.cell_id
            order by pattern_costs.new_cells, pattern_costs.new_cost, patterns.pattern_id
        ) as choice_order
    from patterns
    inner join pattern_costs
        on patterns.pattern_id = pattern_costs.pattern_id
    where patterns.cell_role = 'target'
),

pattern_corners as (
    -- The cells of the chosen patterns: withheld and protected from now on.
    select patterns.cell_id
    from pattern_choices
    inner join patterns
        on
            pattern_choices.pattern_id = patterns.pattern_id
            and patterns.cell_role = 'corner'
    where pattern_choices.choice_order = 1
),

protected_by_pattern as (
    select cell_id
    from patterns
    where cell_role = 'target'
    group by cell_id
),

-- 2. Relation by relation

protection as (
    -- Protected withheld cells; the small cells a pattern protects ask for nothing in their relations.
    select
        cells_before.*,
        cells_before.is_suppressed and cells_before.is_protected as is_protected_withheld,
        cells_before.is_suppressed
        and cells_before.is_protected
        and not (cells_before.is_primary_suppressed and protected_by_pattern.cell_id is not null)
            as asks_for_protection
    from cells_before
    left join protected_by_pattern
        on cells_before.cell_id = protected_by_pattern.cell_id
),

one_part_relations as (
    select relation_id
    from relations
    group by relation_id
    having sum(case when is_total then 0 else 1 end) = 1
),

identity_parts as (
    -- The only part of a relation equals its total (Wales's one region and Wales; KPI 3's one sex):
    -- withholding it withholds the total too, so it is chosen as late as a total.
    select relations.cell_id
    from relations
    inner join one_part_relations
        on relations.relation_id = one_part_relations.relation_id
    where not relations.is_total
    group by relations.cell_id
),

members as (
    select
        relations.relation_id,
        relations.is_total,
        identity_parts.cell_id is not null as is_identity_part,
        protection.*
    from relations
    inner join protection
        on relations.cell_id = protection.cell_id
    left join identity_parts
        on relations.cell_id = identity_parts.cell_id
),

relation_counts as (
    select
        relation_id,
        sum(case when is_protected_withheld then 1 else 0 end) as protected_members,
        max(case when asks_for_protection then 1 else 0 end) = 1 as has_asking_member,
        max(case when is_protected_withheld and is_total then 1 else 0 end) = 1 as is_total_protected,
        -- the counts the withheld parts hold between them, and whether any of them is small
        sum(case when is_protected_withheld and not is_total then numerator_count else 0 end)
            as withheld_numerators,
        sum(case when is_protected_withheld and not is_total then not_met_count else 0 end) as withheld_not_met,
        max(case when asks_for_protection and is_numerator_sensitive and not is_total then 1 else 0 end) = 1
            as has_small_numerator_part,
        max(case when asks_for_protection and is_not_met_sensitive and not is_total then 1 else 0 end) = 1
            as has_small_not_met_part,
        -- a lone protected member: whether it is the total, and whether its counts are small
        max(case when is_protected_withheld and is_total then 1 else 0 end) = 1 as is_lone_total,
        max(case when asks_for_protection and is_numerator_sensitive then 1 else 0 end) = 1 as has_small_numerator,
        max(case when asks_for_protection and is_not_met_sensitive then 1 else 0 end) = 1 as has_small_not_met,
        -- proportions protect the patients not meeting the KPI too; KPI 2 and 3 have none
        max(case when not_met_count is not null then 1 else 0 end) = 1 as has_not_met
    from members
    group by relation_id
),

relation_needs as (
    -- How much of each count the complement must hold (0: any published member will do).
    select
        relation_id,
        protected_members,
        greatest(
            case
                when has_small_numerator_part and not is_total_protected
                    then {{ protection_level }} - withheld_numerators
                else 0
            end,
            case
                when protected_members = 1 and not (is_lone_total and has_small_numerator)
                    then {{ protection_level }}
                else 0
            end
        ) as numerator_needed,
        greatest(
            case
                when has_small_not_met_part and not is_total_protected
                    then {{ protection_level }} - withheld_not_met
                else 0
            end,
            case
                when protected_members = 1 and has_not_met and not (is_lone_total and has_small_not_met)
                    then {{ protection_level }}
                else 0
            end
        ) as not_met_needed
    from relation_counts
    where has_asking_member
),

short_relations as (
    select * from relation_needs
    where protected_members = 1 or numerator_needed > 0 or not_met_needed > 0
),

candidates as (
    -- The published members of each relation that needs a complement, cheapest first.
    select
        members.relation_id,
        members.cell_id,
        row_number() over (
            partition by members.relation_id
            order by
                case
                    when members.is_total then 4
                    when members.is_identity_part then 3
                    when
                        members.numerator_count >= short_relations.numerator_needed
                        and coalesce(members.not_met_count, 0) >= short_relations.not_met_needed
                        then 1
                    else 2
                end,
                case
                    when
                        not members.is_total
                        and not members.is_identity_part
                        and (
                            members.numerator_count < short_relations.numerator_needed
                            or coalesce(members.not_met_count, 0) < short_relations.not_met_needed
                        )
                        then -members.cost_rank
                    else members.cost_rank
                end
        ) as choice_order
    from members
    inner join short_relations
        on members.relation_id = short_relations.relation_id
    where not members.is_suppressed and members.is_published
),

chosen as (
    select cell_id
    from candidates
    where choice_order = 1
    union all
    select cell_id from pattern_corners
),

chosen_cells as (
    select cell_id
    from chosen
    group by cell_id
),

final as (
    select
        cells_before.cell_id,
        cells_before.is_suppressed or chosen_cells.cell_id is not null as is_suppressed,
        (cells_before.is_suppressed and cells_before.is_protected) or chosen_cells.cell_id is not null
            as is_protected
    from cells_before
    left join chosen_cells
        on cells_before.cell_id = chosen_cells.cell_id
)

select * from final
