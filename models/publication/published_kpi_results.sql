-- One row per audit year x geography x KPI x breakdown value: kpi_results as it may leave the
-- building, with primary and secondary (complementary) small-number suppression applied.
-- Why: the marts keep the true numbers for internal use; everything published (the BI tier, the
-- site, the downloads) reads this table, so suppression is decided once, here, in SQL.
--
-- Primary suppression is kpi_results.is_suppressed (the one macro, macros/kpi_statistics.sql).
-- Secondary (complementary) suppression is decided once, for the yearly results and the monthly
-- series together, by publication_suppression (models/publication/suppression/; the rule and the
-- cost of a complement are in docs/bi.md, "Suppression"). A withheld cell keeps its keys and flags
-- and loses every number derived from its counts.

with

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

suppression_cells as (
    select * from {{ ref('publication_suppression_cells') }}
),

suppression as (
    select * from {{ ref('publication_suppression') }}
),

flagged as (
    select
        kpi_results.*,
        coalesce(suppression.is_suppressed, kpi_results.is_suppressed) as is_published_suppressed
    from kpi_results
    left join suppression_cells
        on
            kpi_results.audit_year = suppression_cells.audit_year
            and kpi_results.geography_level = suppression_cells.geography_level
            and kpi_results.geography_code = suppression_cells.geography_code
            and kpi_results.kpi_number = suppression_cells.kpi_number
            and kpi_results.breakdown = suppression_cells.breakdown
            and kpi_results.breakdown_value = suppression_cells.breakdown_value
    left join suppression
        on suppression_cells.cell_id = suppression.cell_id
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
