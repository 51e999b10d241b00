-- One row per cell of a protection pattern (role `corner`), and per small cell it protects (role
-- `target`): sets of cells that, all withheld, let a reader move a small count by at least
-- P = suppression_max_small_count + 1 patients with every published relation still adding up.
-- Why: a complement chosen relation by relation can leave a small count pinned down through a
-- chain of other relations (the protection audit found such cells). A pattern cannot: it is a
-- direction in which the withheld cells can change together, so a reader knows each small count
-- it protects only to within the pattern's capacity. Three kinds, for a small cell x of FLS f at
-- breakdown value (or month) v, with another value v' of the same breakdown (or another month):
--   rectangle: x, (f, v'), (f', v) and (f', v') for another FLS f' of the same region. Add t to x
--     and (f', v'), take it from (f, v') and (f', v). x can rise by the smaller of those two and
--     fall by the smaller of x and (f', v'): the pattern protects x when that is at least P.
--   double rectangle: the same with two other values v' and v'' together, for a cell whose FLS
--     holds too little at any single other value (a small service's months).
--   pair: for a cell in one relation only (a month with no yearly result), x and one other cell
--     of that relation in no other relation: x can move by the other's count up and its own down.
--   ladder: an FLS f and every geography above it (region, country, England and Wales), each at
--     v and at v'. Add t at v all the way up and take it at v': a small cell x on the way can rise
--     by (f, v')'s count and fall by (f, v)'s. For values small everywhere (sex `Not known`), where
--     no FLS of the region can protect x, and for small cells of a region, a country or England
--     and Wales (through an FLS below them).
-- Rectangles and pairs are listed for FLS cells (a total of nothing), double rectangles for those
-- without a rectangle; ladders for the small cells without any of these, at most 10 per cell (the
-- fewest and smallest cells not already withheld for small numbers). publication_suppression
-- keeps, for each small cell, one pattern fully withheld.

{%- set protection_level = var('suppression_max_small_count') + 1 %}
{%- set ladders_per_cell = 10 %}
{#- each count a cell protects, and the flag that says it is small -#}
{%- set counts = {'numerator_count': 'is_numerator_sensitive', 'not_met_count': 'is_not_met_sensitive'} %}

with

cells as (
    select * from {{ ref('publication_suppression_cells') }}
),

relations as (
    select * from {{ ref('publication_suppression_relations') }}
    where relation_type in ({{ quoted_list(var('secondary_suppression_relation_types')) }})
),

totals as (
    select cell_id
    from relations
    where is_total
    group by cell_id
),

memberships as (
    -- Each cell's geography relation and breakdown (or time) relation, as a part.
    select
        cell_id,
        max(case when relation_type = 'geography' then relation_id end) as geography_relation_id,
        max(case when relation_type != 'geography' then relation_id end) as breakdown_relation_id
    from relations
    where not is_total
    group by cell_id
),

parents as (
    -- The cell of the parent geography (the total of the cell's geography relation).
    select
        parts.cell_id,
        parent_cells.cell_id as parent_cell_id
    from relations as parts
    inner join relations as parent_cells
        on
            parts.relation_id = parent_cells.relation_id
            and parent_cells.is_total
    where parts.relation_type = 'geography' and not parts.is_total
),

counted as (
    select
        cells.cell_id,
        cells.numerator_count,
        coalesce(cells.not_met_count, 0) as not_met_count,
        cells.is_numerator_sensitive,
        cells.is_not_met_sensitive,
        cells.is_primary_suppressed,
        cells.cost_rank,
        memberships.geography_relation_id,
        memberships.breakdown_relation_id,
        totals.cell_id is null as is_leaf
    from cells
    inner join memberships
        on cells.cell_id = memberships.cell_id
    left join totals
        on cells.cell_id = totals.cell_id
),

leaves as (
    select * from counted
    where is_leaf
),

targets as (
    select * from counted
    where is_numerator_sensitive or is_not_met_sensitive
),

rectangles as (
    select
        targets.cell_id as target_cell_id,
        sides.cell_id as side_cell_id,
        acrosses.cell_id as across_cell_id,
        opposites.cell_id as opposite_cell_id
    from targets
    inner join leaves as sides
        on
            targets.breakdown_relation_id = sides.breakdown_relation_id
            and targets.cell_id != sides.cell_id
    inner join leaves as acrosses
        on
            targets.geography_relation_id = acrosses.geography_relation_id
            and targets.cell_id != acrosses.cell_id
    inner join leaves as opposites
        on
            sides.geography_relation_id = opposites.geography_relation_id
            and acrosses.breakdown_relation_id = opposites.breakdown_relation_id
    where
        targets.is_leaf
        {%- for count, sensitive in counts.items() %}
            and (
                not targets.{{ sensitive }}
                or least(sides.{{ count }}, acrosses.{{ count }})
                + least(targets.{{ count }}, opposites.{{ count }}) >= {{ protection_level }}
            )
        {%- endfor %}
),

single_rectangle_targets as (
    select target_cell_id
    from rectangles
    group by target_cell_id
),

double_rectangles as (
    -- A rectangle with two sides, for a cell whose FLS has no single other value holding enough
    -- (a small service's months): x rises by the smaller of the two sides together and across, and
    -- falls by the smaller of x and the two opposites together.
    select
        targets.cell_id as target_cell_id,
        sides.cell_id as side_cell_id,
        second_sides.cell_id as second_side_cell_id,
        acrosses.cell_id as across_cell_id,
        opposites.cell_id as opposite_cell_id,
        second_opposites.cell_id as second_opposite_cell_id
    from targets
    inner join leaves as sides
        on
            targets.breakdown_relation_id = sides.breakdown_relation_id
            and targets.cell_id != sides.cell_id
    inner join leaves as second_sides
        on
            targets.breakdown_relation_id = second_sides.breakdown_relation_id
            and targets.cell_id != second_sides.cell_id
            and sides.cell_id < second_sides.cell_id
    inner join leaves as acrosses
        on
            targets.geography_relation_id = acrosses.geography_relation_id
            and targets.cell_id != acrosses.cell_id
    inner join leaves as opposites
        on
            sides.geography_relation_id = opposites.geography_relation_id
            and acrosses.breakdown_relation_id = opposites.breakdown_relation_id
    inner join leaves as second_opposites
        on
            second_sides.geography_relation_id = second_opposites.geography_relation_id
            and acrosses.breakdown_relation_id = second_opposites.breakdown_relation_id
    left join single_rectangle_targets
        on targets.cell_id = single_rectangle_targets.target_cell_id
    where
        targets.is_leaf
        and single_rectangle_targets.target_cell_id is null
        {%- for count, sensitive in counts.items() %}
            and (
                not targets.{{ sensitive }}
                or least(sides.{{ count }} + second_sides.{{ count }}, acrosses.{{ count }})
                + least(targets.{{ count }}, opposites.{{ count }} + second_opposites.{{ count }})
                >= {{ protection_level }}
            )
        {%- endfor %}
),

pairs as (
    -- A cell in one relation only, and a partner in that relation only.
    select
        targets.cell_id as target_cell_id,
        partners.cell_id as side_cell_id
    from targets
    inner join leaves as partners
        on
            coalesce(targets.breakdown_relation_id, -1) = coalesce(partners.breakdown_relation_id, -1)
            and coalesce(targets.geography_relation_id, -1) = coalesce(partners.geography_relation_id, -1)
            and targets.cell_id != partners.cell_id
    where
        targets.is_leaf
        and (targets.breakdown_relation_id is null or targets.geography_relation_id is null)
        {%- for count, sensitive in counts.items() %}
            and (
                not targets.{{ sensitive }}
                or partners.{{ count }} + targets.{{ count }} >= {{ protection_level }}
            )
        {%- endfor %}
),

ancestry as (
    -- Each FLS cell and the cells above it (region, country, England and Wales), same value.
    select
        leaves.cell_id,
        leaves.cell_id as ancestor_cell_id
    from leaves
    union all
    select
        leaves.cell_id,
        regions.parent_cell_id as ancestor_cell_id
    from leaves
    inner join parents as regions
        on leaves.cell_id = regions.cell_id
    union all
    select
        leaves.cell_id,
        countries.parent_cell_id as ancestor_cell_id
    from leaves
    inner join parents as regions
        on leaves.cell_id = regions.cell_id
    inner join parents as countries
        on regions.parent_cell_id = countries.cell_id
    union all
    select
        leaves.cell_id,
        nations.parent_cell_id as ancestor_cell_id
    from leaves
    inner join parents as regions
        on leaves.cell_id = regions.cell_id
    inner join parents as countries
        on regions.parent_cell_id = countries.cell_id
    inner join parents as nations
        on countries.parent_cell_id = nations.cell_id
),

targets_without_rectangle as (
    select targets.*
    from targets
    left join (
        select target_cell_id from rectangles
        union all
        select target_cell_id from double_rectangles
        union all
        select target_cell_id from pairs
    ) as protected_leaves
        on targets.cell_id = protected_leaves.target_cell_id
    where protected_leaves.target_cell_id is null
),

ladder_options as (
    -- For a small cell, each FLS cell below it (or itself) at the same value (the anchor), with each
    -- other value of the same breakdown at that FLS (the side): the counts move up by the side's and
    -- down by the anchor's (the smallest cells of the ladder at each value).
    select
        targets_without_rectangle.cell_id as target_cell_id,
        ancestry.cell_id as anchor_cell_id,
        sides.cell_id as side_cell_id
    from targets_without_rectangle
    inner join ancestry
        on targets_without_rectangle.cell_id = ancestry.ancestor_cell_id
    inner join leaves as anchors
        on ancestry.cell_id = anchors.cell_id
    inner join leaves as sides
        on
            anchors.breakdown_relation_id = sides.breakdown_relation_id
            and anchors.cell_id != sides.cell_id
    where
        {%- for count, sensitive in counts.items() %}
            {{ 'and' if not loop.first }} (
                not targets_without_rectangle.{{ sensitive }}
                or sides.{{ count }} + anchors.{{ count }} >= {{ protection_level }}
            )
        {%- endfor %}
),

ladder_corners as (
    select
        ladder_options.target_cell_id,
        ladder_options.anchor_cell_id,
        ladder_options.side_cell_id,
        ancestry.ancestor_cell_id as cell_id
    from ladder_options
    inner join ancestry
        on ladder_options.anchor_cell_id = ancestry.cell_id
    union all
    select
        ladder_options.target_cell_id,
        ladder_options.anchor_cell_id,
        ladder_options.side_cell_id,
        ancestry.ancestor_cell_id as cell_id
    from ladder_options
    inner join ancestry
        on ladder_options.side_cell_id = ancestry.cell_id
),

ladder_costs as (
    select
        ladder_corners.target_cell_id,
        ladder_corners.anchor_cell_id,
        ladder_corners.side_cell_id,
        row_number() over (
            partition by ladder_corners.target_cell_id
            order by
                sum(case when counted.is_primary_suppressed then 0 else 1 end),
                sum(case when counted.is_primary_suppressed then 0 else counted.cost_rank end),
                ladder_corners.anchor_cell_id,
                ladder_corners.side_cell_id
        ) as static_order
    from ladder_corners
    inner join counted
        on ladder_corners.cell_id = counted.cell_id
    group by ladder_corners.target_cell_id, ladder_corners.anchor_cell_id, ladder_corners.side_cell_id
),

pattern_corners as (
    {%- for corner in ['target', 'side', 'across', 'opposite'] %}
        select
            'rectangle' as pattern_kind,
            target_cell_id as key_1,
            side_cell_id as key_2,
            across_cell_id as key_3,
            0 as key_4,
            target_cell_id,
            {{ corner }}_cell_id as cell_id
        from rectangles
        union all
    {%- endfor %}
    {%- for corner in ['target', 'side', 'second_side', 'across', 'opposite', 'second_opposite'] %}
        select
            'double rectangle' as pattern_kind,
            target_cell_id as key_1,
            side_cell_id as key_2,
            across_cell_id as key_3,
            second_side_cell_id as key_4,
            target_cell_id,
            {{ corner }}_cell_id as cell_id
        from double_rectangles
        union all
    {%- endfor %}
    {%- for corner in ['target', 'side'] %}
        select
            'pair' as pattern_kind,
            target_cell_id as key_1,
            side_cell_id as key_2,
            0 as key_3,
            0 as key_4,
            target_cell_id,
            {{ corner }}_cell_id as cell_id
        from pairs
        union all
    {%- endfor %}
    select
        'ladder' as pattern_kind,
        ladder_corners.anchor_cell_id as key_1,
        ladder_corners.side_cell_id as key_2,
        0 as key_3,
        0 as key_4,
        ladder_corners.target_cell_id,
        ladder_corners.cell_id
    from ladder_corners
    inner join ladder_costs
        on
            ladder_corners.target_cell_id = ladder_costs.target_cell_id
            and ladder_corners.anchor_cell_id = ladder_costs.anchor_cell_id
            and ladder_corners.side_cell_id = ladder_costs.side_cell_id
    where ladder_costs.static_order <= {{ ladders_per_cell }}
),

numbered as (
    select
        dense_rank() over (order by pattern_kind, key_1, key_2, key_3, key_4) as pattern_id,
        pattern_kind,
        target_cell_id,
        cell_id
    from pattern_corners
),

final as (
    select distinct
        pattern_id,
        pattern_kind,
        'corner' as cell_role,
        cell_id
    from numbered
    union all
    select distinct
        pattern_id,
        pattern_kind,
        'target' as cell_role,
        target_cell_id as cell_id
    from numbered
)

select * from final
