-- One row per cohort episode. For each KPI of docs/specification/kpi-definitions.md: whether the episode is in the
-- denominator, whether it is in the numerator, and why not (null when it is in the numerator).
-- This is the only place where a KPI's episode-level rule is written down.

{%- set drugs = var('named_drugs') %}
{%- set due_days = var('follow_up_due_days') %}
{#- docs/specification/kpi-definitions.md's windows, in days after the fracture: died by 16 weeks (also KPI 9's contact
    window) and died by 52 weeks. When a record is due is the var above. #}
{%- set days_in_16_weeks = 112 %}
{%- set days_in_52_weeks = 364 %}

with

episodes as (
    -- Only the columns the KPI rules, the KPI 1 key fields (macros/kpi_1_key_fields.sql) and the
    -- breakdowns read: this table is written on every build, and every staged column would
    -- double its cost (DEVELOPERS.md, "Performance").
    select
        fls_code,
        record_id,
        audit_year,
        country_code,
        region_code,
        is_fls_registered_for_audit_year,
        extract_date,
        deprivation_quintile,
        age_at_fracture,
        sex,
        postcode_match_status,
        lived_in_care_home,
        fls_contact_date,
        fls_assessment_date,
        admitted_overnight,
        fracture_date,
        fracture_site,
        previous_fragility_fracture,
        dxa_status,
        dxa_not_ordered_reason,
        dxa_date,
        bone_therapy_recommended,
        calcium_vitamin_d_recommended,
        falls_risk_assessed_by_fls,
        onward_referral,
        follow_up_16_weeks,
        follow_up_16_weeks_date,
        bone_therapy_at_16_weeks,
        started_strength_and_balance,
        follow_up_52_weeks,
        bone_therapy_at_52_weeks,
        death_date
    from {{ ref('int_episodes_scoped') }}
    where is_in_cohort
),

timed as (
    select
        *,
        {{ dbt.datediff('fracture_date', 'fls_assessment_date', 'day') }}
            as days_fracture_to_assessment,
        {{ dbt.datediff('fracture_date', 'dxa_date', 'day') }}
            as days_fracture_to_dxa,
        {{ dbt.datediff('fracture_date', 'follow_up_16_weeks_date', 'day') }}
            as days_fracture_to_16_week_contact,
        -- var follow_up_due_days: also what KPI 1's follow-up key fields are measured over
        {{ dbt.dateadd('day', due_days['is_due_at_16_weeks'], 'fracture_date') }} <= extract_date as is_due_at_16_weeks,
        {{ dbt.dateadd('day', due_days['is_due_at_52_weeks'], 'fracture_date') }} <= extract_date as is_due_at_52_weeks,
        coalesce(death_date <= {{ dbt.dateadd('day', days_in_16_weeks, 'fracture_date') }}, false)
        or coalesce(follow_up_16_weeks = 'Patient died', false) as died_by_16_weeks,
        coalesce(death_date <= {{ dbt.dateadd('day', days_in_52_weeks, 'fracture_date') }}, false)
        or coalesce(follow_up_16_weeks = 'Patient died', false)
        or coalesce(follow_up_52_weeks = 'Patient died', false) as died_by_52_weeks,
        coalesce(bone_therapy_recommended in ({{ quoted_list(drugs) }}), false) as is_bone_therapy_recommended
    from episodes
),

flagged as (
    select
        *,
        -- KPI 2 and 3 count identified records against an expected caseload; their
        -- denominators are not episodes (see int_kpi_identification_aggregated). An FLS has an
        -- expected caseload only in the audit years it is registered for, so outside them its
        -- records count in neither the numerator nor the denominator.
        fracture_site != 'Spine' and is_fls_registered_for_audit_year as kpi_2_in_numerator,
        case
            when not is_fls_registered_for_audit_year then 'FLS not registered for this audit year'
            when fracture_site = 'Spine' then 'spine fracture (KPI 3 counts it)'
        end as kpi_2_reason,
        fracture_site = 'Spine' and is_fls_registered_for_audit_year as kpi_3_in_numerator,
        case
            when not is_fls_registered_for_audit_year then 'FLS not registered for this audit year'
            when fracture_site != 'Spine' then 'non-spine fracture (KPI 2 counts it)'
        end as kpi_3_reason,

        -- KPI 4: FLS assessment within 90 days.
        true as kpi_4_in_denominator,
        coalesce(days_fracture_to_assessment between 0 and 90, false) as kpi_4_in_numerator,
        case
            when fls_assessment_date is null then 'no FLS assessment date recorded'
            when days_fracture_to_assessment > 90 then 'assessed more than 90 days after the fracture'
        end as kpi_4_reason,

        -- KPI 5: DXA within 90 days, unless a scan was not ordered because it was not required.
        not coalesce(dxa_status = 'Not ordered' and dxa_not_ordered_reason = 'Not required', false)
            as kpi_5_in_denominator,
        coalesce(dxa_status = 'Done' and days_fracture_to_dxa between 0 and 90, false) as kpi_5_in_numerator,
        case
            when dxa_status = 'Not ordered' and dxa_not_ordered_reason = 'Not required'
                then 'DXA not required'
            when dxa_status is null then 'DXA not recorded'
            when dxa_status != 'Done' then 'DXA not done'
            when dxa_date is null then 'DXA done but no scan date recorded'
            when days_fracture_to_dxa > 90 then 'DXA more than 90 days after the fracture'
        end as kpi_5_reason,

        -- KPI 6: falls assessment by the FLS, or referral to a falls service.
        true as kpi_6_in_denominator,
        coalesce(falls_risk_assessed_by_fls = 'Yes' or onward_referral in ('Falls service', 'Both'), false)
            as kpi_6_in_numerator,
        case
            when not coalesce(falls_risk_assessed_by_fls = 'Yes' or onward_referral in ('Falls service', 'Both'), false)
                then 'no falls assessment or falls service referral recorded'
        end as kpi_6_reason,

        -- KPI 7: a named bone therapy recommended.
        true as kpi_7_in_denominator,
        is_bone_therapy_recommended as kpi_7_in_numerator,
        case when not is_bone_therapy_recommended then 'no named bone therapy recommended' end as kpi_7_reason,

        -- KPI 8: strength and balance started by 16 weeks, non-hip fractures only.
        is_due_at_16_weeks and not died_by_16_weeks and fracture_site != 'Hip' as kpi_8_in_denominator,
        is_due_at_16_weeks and not died_by_16_weeks and fracture_site != 'Hip'
        and coalesce(started_strength_and_balance = 'Yes', false) as kpi_8_in_numerator,
        case
            when fracture_site = 'Hip' then 'hip fracture (KPI 8 covers non-hip fractures)'
            when not is_due_at_16_weeks then 'not yet due at 16 weeks on the extract date'
            when died_by_16_weeks then 'died by 16 weeks'
            when not coalesce(started_strength_and_balance = 'Yes', false)
                then 'strength and balance exercise not started'
        end as kpi_8_reason,

        -- KPI 9: monitoring contact by 16 weeks.
        is_due_at_16_weeks and not died_by_16_weeks as kpi_9_in_denominator,
        is_due_at_16_weeks and not died_by_16_weeks
        and coalesce(follow_up_16_weeks = 'Yes' and days_fracture_to_16_week_contact <= {{ days_in_16_weeks }}, false)
            as kpi_9_in_numerator,
        case
            when not is_due_at_16_weeks then 'not yet due at 16 weeks on the extract date'
            when died_by_16_weeks then 'died by 16 weeks'
            when not coalesce(follow_up_16_weeks = 'Yes', false) then 'no 16-week follow-up contact'
            when follow_up_16_weeks_date is null then '16-week contact with no date recorded'
            when days_fracture_to_16_week_contact > {{ days_in_16_weeks }}
                then '16-week contact after {{ days_in_16_weeks }} days'
        end as kpi_9_reason,

        -- KPI 10: bone therapy started by 16 weeks, among those recommended it.
        is_bone_therapy_recommended and is_due_at_16_weeks and not died_by_16_weeks as kpi_10_in_denominator,
        is_bone_therapy_recommended and is_due_at_16_weeks and not died_by_16_weeks
        and coalesce(bone_therapy_at_16_weeks in ({{ quoted_list(drugs) }}), false) as kpi_10_in_numerator,
        case
            when not is_bone_therapy_recommended then 'no named bone therapy recommended'
            when not is_due_at_16_weeks then 'not yet due at 16 weeks on the extract date'
            when died_by_16_weeks then 'died by 16 weeks'
            when not coalesce(bone_therapy_at_16_weeks in ({{ quoted_list(drugs) }}), false)
                then 'no named bone therapy started by 16 weeks'
        end as kpi_10_reason,

        -- KPI 11: still taking bone therapy at the 52-week contact, among those recommended it.
        is_bone_therapy_recommended and is_due_at_52_weeks and not died_by_52_weeks as kpi_11_in_denominator,
        is_bone_therapy_recommended and is_due_at_52_weeks and not died_by_52_weeks
        and coalesce(follow_up_52_weeks = 'Yes' and bone_therapy_at_52_weeks in ({{ quoted_list(drugs) }}), false)
            as kpi_11_in_numerator,
        case
            when not is_bone_therapy_recommended then 'no named bone therapy recommended'
            when not is_due_at_52_weeks then 'not yet due at 52 weeks on the extract date'
            when died_by_52_weeks then 'died by 52 weeks'
            when not coalesce(follow_up_52_weeks = 'Yes', false) then 'no 52-week follow-up contact'
            when not coalesce(bone_therapy_at_52_weeks in ({{ quoted_list(drugs) }}), false)
                then 'not taking a named bone therapy at 52 weeks'
        end as kpi_11_reason
    from timed
),

final as (
    select
        *,
        coalesce(sex, 'not recorded') as breakdown_sex,
        {{ breakdown_age_band('age_at_fracture') }} as breakdown_age_band,
        coalesce(lived_in_care_home, 'not recorded') as breakdown_care_home
    from flagged
)

select * from final
