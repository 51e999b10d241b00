-- One row per episode (as fct_episodes): the pseudonymised row-level extract for approved
-- analysts. NOT PUBLISHED: `flsdb publish` writes it to output/restricted_analyst_extract/, a
-- separate tier whose README says who may read it, never to output/published/.
-- Why a model: what leaves the warehouse at row level is decided in SQL, in one place, by an
-- allow-list: a column of fct_episodes reaches analysts only when it is named below (or is one of
-- the per-KPI flag and reason columns, whose list follows the KPI seed), so a new column of
-- fct_episodes stays inside until someone decides it may leave. Never allowed: record_id,
-- source_file, line_number, versions_seen (the FLS's own record and file, where an FLS may put an
-- identifier; issue 12), lsoa11_code (a small area), fracture_date (replaced by fracture_month)
-- and age_at_fracture (age_band stays).
-- patient_pseudonym stays here; `flsdb publish` replaces it in the extract by a keyed hash with a
-- key made for that extract and then discarded, so extracts cannot be linked to each other or to
-- the warehouse.

{%- set allowed = [
    'fls_code', 'patient_pseudonym', 'audit_year', 'extract_date', 'country_code', 'region_code',
    'is_in_cohort', 'exclusion_reason', 'age_band', 'sex', 'fracture_site', 'lived_in_care_home',
    'deprivation_index', 'deprivation_decile', 'deprivation_quintile', 'postcode_match_status',
    'is_due_at_16_weeks', 'is_due_at_52_weeks', 'died_by_16_weeks', 'died_by_52_weeks',
    'days_fracture_to_assessment', 'days_fracture_to_dxa', 'bone_therapy_recommended',
    'is_synthetic_data'] %}
{%- set kpi_flag_column = modules.re.compile('^kpi_[0-9]+_(in_numerator|in_denominator|reason)$') %}

{{ config(contract={'enforced': false}) }}

with

episodes as (
    select * from {{ ref('fct_episodes') }}
),

final as (
    select
    {%- if execute %}
        {%- for column in adapter.get_columns_in_relation(ref('fct_episodes')) %}
            {%- if column.name | lower in allowed or kpi_flag_column.match(column.name | lower) %}
                episodes.{{ adapter.quote(column.name) }},
            {%- endif %}
        {%- endfor %}
    {%- endif %}
        {{ dbt.date_trunc('month', 'episodes.fracture_date') }} as fracture_month
    from episodes
)

select * from final
