{#- KPI 1's 17 key fields (kpi-spec.md): the field, and when an episode counts as having it
    recorded. "Not known" and "Don't know" are recorded; blank or warned values are not (warned
    values are already null in staging). 6.01 and 6.06 are measured over records due at 16 weeks,
    7.01 over records due at 52 weeks; the rest over every cohort record. -#}
{% macro kpi_1_key_fields() %}
    {{ return([
        {'field': '1.02 Date of Birth', 'recorded': 'age_at_fracture is not null'},
        {'field': '1.03 Gender', 'recorded': 'sex is not null'},
        {'field': '1.04 Post Code', 'recorded': "postcode_match_status in ('matched', 'postcode not in lookup')"},
        {'field': '1.05 CareRes', 'recorded': 'lived_in_care_home is not null'},
        {'field': '1.06 DateFLSContact', 'recorded': 'fls_contact_date is not null'},
        {'field': '1.07 DateFLSAssess', 'recorded': 'fls_assessment_date is not null'},
        {'field': '1.08 AdmitHosp', 'recorded': 'admitted_overnight is not null'},
        {'field': '1.09 Date Index Frac Diagnosed', 'recorded': 'fracture_date is not null'},
        {'field': '1.11 SiteFirstFrac', 'recorded': 'fracture_site is not null'},
        {'field': '2.03 PrevFracHist', 'recorded': 'previous_fragility_fracture is not null'},
        {'field': '3.01 DXA', 'recorded': 'dxa_status is not null'},
        {'field': '4.01 BoneTherapy', 'recorded': 'bone_therapy_recommended is not null'},
        {'field': '4.02 CalciumVitDRec', 'recorded': 'calcium_vitamin_d_recommended is not null'},
        {'field': '5.01 RiskAssesByFLS', 'recorded': 'falls_risk_assessed_by_fls is not null'},
        {'field': '6.01 FollowUp12_16', 'recorded': 'follow_up_16_weeks is not null', 'measured_over': 'is_due_at_16_weeks'},
        {'field': '6.06 StartStrenBalExe', 'recorded': 'started_strength_and_balance is not null', 'measured_over': 'is_due_at_16_weeks'},
        {'field': '7.01 FollowUp48_56', 'recorded': 'follow_up_52_weeks is not null', 'measured_over': 'is_due_at_52_weeks'},
    ]) }}
{% endmacro %}
