-- One row per submitted record (its current version): whether it is in the audit cohort or why
-- not, its patient groups, and for cohort episodes each KPI's denominator and numerator flags.
-- Pseudonymised: no NHS number, date of birth or postcode; the patient is a keyed pseudonym.

with

episodes as (
    select * from {{ ref('int_episodes_scoped') }}
),

kpi_flags as (
    select * from {{ ref('int_episodes_kpi_flagged') }}
),

final as (
    select
        episodes.fls_code,
        episodes.record_id,
        episodes.patient_pseudonym,
        cast(episodes.audit_year as {{ dbt.type_int() }}) as audit_year,
        episodes.fracture_date,
        episodes.extract_date,
        episodes.country_code,
        episodes.region_code,
        episodes.is_in_cohort,
        episodes.exclusion_reason,
        cast(episodes.age_at_fracture as {{ dbt.type_int() }}) as age_at_fracture,
        {{ breakdown_age_band('episodes.age_at_fracture') }} as age_band,
        episodes.sex,
        episodes.fracture_site,
        episodes.lived_in_care_home,
        episodes.lsoa11_code,
        episodes.deprivation_index,
        cast(episodes.deprivation_decile as {{ dbt.type_int() }}) as deprivation_decile,
        episodes.deprivation_quintile,
        episodes.postcode_match_status,
        kpi_flags.is_due_at_16_weeks,
        kpi_flags.is_due_at_52_weeks,
        kpi_flags.died_by_16_weeks,
        kpi_flags.died_by_52_weeks,
        cast(kpi_flags.days_fracture_to_assessment as {{ dbt.type_int() }}) as days_fracture_to_assessment,
        cast(kpi_flags.days_fracture_to_dxa as {{ dbt.type_int() }}) as days_fracture_to_dxa,
        episodes.bone_therapy_recommended,
        -- Each KPI's flags, in the kpi_definitions seed's order (macros/kpi_definitions.sql).
        {%- for kpi in kpis_of_grain() %}
            {%- for flag_column in kpi_episode_flag_columns(kpi) %}
                kpi_flags.{{ flag_column }},
            {%- endfor %}
        {%- endfor %}
        cast(episodes.versions_seen as {{ dbt.type_int() }}) as versions_seen,
        episodes.source_file,
        episodes.line_number,
        {{ var('data_is_synthetic') }} as is_synthetic_data
    from episodes
    left join kpi_flags
        on
            episodes.fls_code = kpi_flags.fls_code
            and episodes.record_id = kpi_flags.record_id
)

select * from final
