-- One row per cell that publication may withhold: every KPI result (audit year x geography x KPI x
-- breakdown value), every month of a monthly series (breakdown `month`, value the month number)
-- and, for a yearly result whose series lacks some months of the year, one `months not in the
-- series` cell (their sum: yearly minus the months; never published).
-- Why: the yearly results and the monthly series are one suppression system (docs/bi.md,
-- "Suppression"): a month is a part of its yearly result as a breakdown value is, so the months go
-- in as the breakdown `month` of the yearly `all` row. Each cell carries what the secondary
-- suppression pass (publication_suppression) weighs:
--   - the counts it protects: the numerator (patients meeting the KPI) and, for a proportion, the
--     patients not meeting it (denominator - numerator). KPI 2 and 3 protect the numerator only
--     (their denominator is an expected count, not patients); KPI 1 (fields) nothing;
--   - which of them are small (sensitive): a count of 1-4 patients, or any count above 0 of a cell
--     whose denominator is below the minimum. A count of 0 is no patient, so nothing to hide;
--   - its cost as a complement: smaller cells first (denominator, then numerator, then key).

with

kpi_results as (
    select * from {{ ref('kpi_results') }}
),

kpi_monthly as (
    select * from {{ ref('kpi_monthly') }}
),

kpi_definitions as (
    select * from {{ ref('kpi_definitions') }}
),

yearly_cells as (
    select
        audit_year,
        geography_level,
        geography_code,
        kpi_number,
        breakdown,
        breakdown_value,
        cast(null as date) as month_start,
        numerator,
        denominator,
        is_suppressed as is_primary_suppressed,
        true as is_published
    from kpi_results
),

monthly_cells as (
    select
        cast(extract(year from month_start) as {{ dbt.type_int() }}) as audit_year,
        geography_level,
        geography_code,
        kpi_number,
        'month' as breakdown,
        cast(cast(extract(month from month_start) as {{ dbt.type_int() }}) as {{ dbt.type_string() }})
            as breakdown_value,
        month_start,
        numerator,
        denominator,
        is_suppressed as is_primary_suppressed,
        true as is_published
    from kpi_monthly
),

series_years as (
    select
        audit_year,
        geography_level,
        geography_code,
        kpi_number,
        count(*) as months_in_series,
        sum(numerator) as numerator,
        sum(denominator) as denominator
    from monthly_cells
    group by audit_year, geography_level, geography_code, kpi_number
),

months_not_in_series as (
    -- The yearly result minus the months of its series: blank, never published, and no secret of
    -- its own (it is published later, month by month), so it is withheld from the start and needs
    -- no complement.
    select
        yearly_cells.audit_year,
        yearly_cells.geography_level,
        yearly_cells.geography_code,
        yearly_cells.kpi_number,
        'month' as breakdown,
        'not in series' as breakdown_value,
        cast(null as date) as month_start,
        yearly_cells.numerator - series_years.numerator as numerator,
        yearly_cells.denominator - series_years.denominator as denominator,
        true as is_primary_suppressed,
        false as is_published
    from yearly_cells
    inner join series_years
        on
            yearly_cells.audit_year = series_years.audit_year
            and yearly_cells.geography_level = series_years.geography_level
            and yearly_cells.geography_code = series_years.geography_code
            and yearly_cells.kpi_number = series_years.kpi_number
    where
        yearly_cells.breakdown = 'all'
        and series_years.months_in_series < 12
),

all_cells as (
    select * from yearly_cells
    union all
    select * from monthly_cells
    union all
    select * from months_not_in_series
),

counted as (
    select
        all_cells.*,
        kpi_definitions.value_type,
        coalesce(all_cells.numerator, 0) as numerator_count,
        case
            when kpi_definitions.value_type = 'proportion'
                then coalesce(all_cells.denominator, 0) - coalesce(all_cells.numerator, 0)
        end as not_met_count
    from all_cells
    inner join kpi_definitions
        on all_cells.kpi_number = kpi_definitions.kpi_number
),

sensitive as (
    select
        *,
        is_published
        and is_primary_suppressed
        and value_type != 'completeness'
        and numerator_count >= 1
        and (
            numerator_count <= {{ var('suppression_max_small_count') }}
            or (
                value_type = 'proportion'
                and coalesce(denominator, 0) < {{ var('suppression_min_denominator') }}
            )
        ) as is_numerator_sensitive,
        coalesce(
            is_published
            and is_primary_suppressed
            and not_met_count >= 1
            and (
                not_met_count <= {{ var('suppression_max_small_count') }}
                or coalesce(denominator, 0) < {{ var('suppression_min_denominator') }}
            ),
            false
        ) as is_not_met_sensitive
    from counted
),

final as (
    select
        row_number() over (
            order by audit_year, geography_level, geography_code, kpi_number, breakdown, breakdown_value
        ) as cell_id,
        audit_year,
        geography_level,
        geography_code,
        kpi_number,
        breakdown,
        breakdown_value,
        month_start,
        value_type,
        numerator,
        denominator,
        numerator_count,
        not_met_count,
        is_published,
        is_primary_suppressed,
        is_numerator_sensitive,
        is_not_met_sensitive,
        -- Complements are chosen smallest first; rounded, so that both engines order floating-point
        -- expected counts (KPI 2 and 3) alike.
        row_number() over (
            order by
                round(coalesce(denominator, 0), 6),
                numerator_count,
                audit_year,
                geography_level,
                geography_code,
                kpi_number,
                breakdown,
                breakdown_value
        ) as cost_rank
    from sensitive
)

select * from final
