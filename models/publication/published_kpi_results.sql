-- One row per audit year x geography x KPI x breakdown value: kpi_results as it may leave the
-- building, with primary and secondary (complementary) small-number suppression applied.
-- Why: the marts keep the true numbers for internal use; everything published (the BI tier, the
-- site, the downloads) reads this table, so suppression is decided once, here, in SQL.
--
-- Primary suppression is kpi_results.is_suppressed (the one macro, macros/kpi_statistics.sql).
-- Secondary suppression, the rule (docs/bi.md, "Suppression"): in every additive relation of
-- publication_suppression_relations (FLSs -> region -> country -> England and Wales; breakdown
-- values -> `all`), a relation with exactly one suppressed member would give that member away by
-- subtraction; and relations cross (a cell is a part of its region's total and of its own `all`
-- row), so two suppressed members can still be solved for through a chain of relations. So a
-- relation with some, but fewer than var('secondary_suppression_min_cells') (3; or all of its
-- members when it has fewer), suppressed members gets its first published member suppressed too:
-- a part (breakdown value or child geography) before the total, then the smallest denominator,
-- then the smallest numerator, ties broken by the cell's key.
-- Suppressing a cell can leave another relation short, so the rule is applied again,
-- var('secondary_suppression_passes') times (unrolled below; portable SQL, no recursive CTE). The
-- data test assert_published_suppression_leaves_no_lone_cell fails if the passes did not reach the
-- point where every relation with a suppressed member has enough of them.
-- The passes are the macro secondary_suppression_passes (macros/secondary_suppression.sql), which
-- published_kpi_monthly uses too.
-- A suppressed cell keeps its keys and flags and loses every number derived from its counts.

{%- set passes = var('secondary_suppression_passes') %}
{%- set min_cells = var('secondary_suppression_min_cells') %}

with

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

relations as (
    select * from {{ ref('publication_suppression_relations') }}
),

cells as (
    -- A number for each cell, so that the passes below join on one column.
    select
        audit_year,
        geography_level,
        geography_code,
        kpi_number,
        breakdown,
        breakdown_value,
        numerator,
        denominator,
        is_suppressed as is_primary_suppressed,
        false as is_fixed,
        true as is_protected,
        row_number() over (
            order by audit_year, geography_level, geography_code, kpi_number, breakdown, breakdown_value
        ) as cell_id
    from kpi_results
),

-- Members in the order a complement is chosen (the macro beside the passes): parts before the
-- total, then the smallest denominator, then the smallest numerator, then the cell's key.
members as (
    {{ secondary_suppression_members(
        'relations', 'cells',
        ['audit_year', 'geography_level', 'geography_code', 'kpi_number', 'breakdown', 'breakdown_value']
    ) }}
),

{{ secondary_suppression_passes('cells', 'members', passes, min_cells) }}

suppression as (
    select
        cells.*,
        suppressed_after_pass_{{ passes }}.is_suppressed
    from cells
    inner join suppressed_after_pass_{{ passes }}
        on cells.cell_id = suppressed_after_pass_{{ passes }}.cell_id
),

flagged as (
    select
        kpi_results.*,
        suppression.is_suppressed as is_published_suppressed
    from kpi_results
    inner join suppression
        on
            kpi_results.audit_year = suppression.audit_year
            and kpi_results.geography_level = suppression.geography_level
            and kpi_results.geography_code = suppression.geography_code
            and kpi_results.kpi_number = suppression.kpi_number
            and kpi_results.breakdown = suppression.breakdown
            and kpi_results.breakdown_value = suppression.breakdown_value
),

national_suppression as (
    -- The national value shown beside a result is blank when the national result is suppressed.
    select
        audit_year,
        kpi_number,
        breakdown,
        breakdown_value,
        is_published_suppressed as is_national_suppressed
    from flagged
    where geography_level = 'national'
),

final as (
    select
        flagged.audit_year,
        flagged.geography_level,
        flagged.geography_code,
        flagged.geography_name,
        flagged.kpi_number,
        flagged.kpi_name,
        flagged.breakdown,
        flagged.breakdown_value,
        {%- for column in ['numerator', 'denominator', 'value_pct', 'ci_lower_pct', 'ci_upper_pct'] %}
            case when not flagged.is_published_suppressed then flagged.{{ column }} end as {{ column }},
        {%- endfor %}
        flagged.ci_method,
        case when not national_suppression.is_national_suppressed then flagged.national_value_pct end
            as national_value_pct,
        flagged.target_pct,
        {%- for column in ['rating', 'funnel_lower_95_pct', 'funnel_upper_95_pct', 'funnel_lower_998_pct',
                           'funnel_upper_998_pct', 'is_outlier_alert', 'is_outlier_alarm', 'outlier_direction'] %}
            case when not flagged.is_published_suppressed then flagged.{{ column }} end as {{ column }},
        {%- endfor %}
        flagged.is_published_suppressed as is_suppressed,
        case
            when flagged.is_suppressed then 'small numbers'
            when flagged.is_published_suppressed then 'complementary'
        end as suppression_reason,
        flagged.is_synthetic_data
    from flagged
    left join national_suppression
        on
            flagged.audit_year = national_suppression.audit_year
            and flagged.kpi_number = national_suppression.kpi_number
            and flagged.breakdown = national_suppression.breakdown
            and flagged.breakdown_value = national_suppression.breakdown_value
)

select * from final
