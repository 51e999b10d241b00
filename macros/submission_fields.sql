{#-
    The optional clinical fields of a submission (dataset.md), as one list that staging loops over.
    Each entry: the raw column name, the staged column name, and how it is checked:
      code:<list>       a coded answer, matched trimmed and case-insensitively against
                        var('submission_code_lists')[list] and stored in its listed spelling;
      number:<min>:<max> a number in a range;
      date_after_fracture:<max days>  a date that may not fall before the fracture (nor, when
                        max days is given, more than that many days after it);
      date_of_death     a date that may not fall before the fracture;
      date              a date with no rule relative to the fracture.
    A value that breaks its rule is a warning: the field is set to not recorded and the reason kept.
    The identifiers (1.01, 1.02, 1.04) and required fields are staged by hand in the model.
-#}
{% macro submission_fields() %}
    {{ return([
        {'column': '1.03 Gender', 'name': 'sex', 'check': 'code:gender'},
        {'column': '1.05 CareRes', 'name': 'lived_in_care_home', 'check': 'code:yes_no_not_known'},
        {'column': '1.06 DateFLSContact', 'name': 'fls_contact_date', 'check': 'date'},
        {'column': '1.07 DateFLSAssess', 'name': 'fls_assessment_date', 'check': 'date_after_fracture:'},
        {'column': '1.08 AdmitHosp', 'name': 'admitted_overnight', 'check': 'code:yes_no_not_known'},
        {'column': '1.10 TypeOfFracture', 'name': 'fracture_presentation', 'check': 'code:fracture_type'},
        {'column': '1.12 SiteSecFrac', 'name': 'second_fracture_site', 'check': 'code:fracture_site'},
        {'column': '1.13 SiteThirdFrac', 'name': 'third_fracture_site', 'check': 'code:fracture_site'},
        {'column': '2.01 Height', 'name': 'height_cm', 'check': 'number:100:230'},
        {'column': '2.02 Weight', 'name': 'weight_kg', 'check': 'number:25:250'},
        {'column': '2.03 PrevFracHist', 'name': 'previous_fragility_fracture', 'check': 'code:yes_no_not_known'},
        {'column': '2.04 FamHipFracHist', 'name': 'parental_hip_fracture', 'check': 'code:yes_no_not_known'},
        {'column': '2.05 Smoker', 'name': 'current_smoker', 'check': 'code:yes_no_not_known'},
        {'column': '2.06 BoneSpareTherapy', 'name': 'on_bone_therapy_at_fracture', 'check': 'code:yes_no_not_known'},
        {'column': '3.01 DXA', 'name': 'dxa_status', 'check': 'code:dxa'},
        {'column': '3.02 DXANotOrdered', 'name': 'dxa_not_ordered_reason', 'check': 'code:dxa_not_ordered'},
        {'column': '3.03 DateofDXA', 'name': 'dxa_date', 'check': 'date_after_fracture:'},
        {'column': '3.04 TScore', 'name': 'lowest_t_score', 'check': 'number:-6:4'},
        {'column': '3.05 RiskOfFracture', 'name': 'frax_major_fracture_probability_pct', 'check': 'number:0:100'},
        {'column': '4.01 BoneTherapy', 'name': 'bone_therapy_recommended', 'check': 'code:bone_therapy_recommended'},
        {'column': '4.02 CalciumVitDRec', 'name': 'calcium_vitamin_d_recommended', 'check': 'code:yes_no_not_known'},
        {'column': '5.01 RiskAssesByFLS', 'name': 'falls_risk_assessed_by_fls', 'check': 'code:yes_no'},
        {'column': '5.02 TwoFalls', 'name': 'two_or_more_falls', 'check': 'code:yes_no_not_known'},
        {'column': '5.03 FearOfFalling', 'name': 'fear_of_falling', 'check': 'code:yes_no_not_known'},
        {'column': '5.04 MedsIncRiskFall', 'name': 'medicines_increasing_falls_risk', 'check': 'code:yes_no_not_known'},
        {'column': '5.05 PreFracMob', 'name': 'impaired_mobility_before_fracture', 'check': 'code:yes_no_not_known'},
        {'column': '5.06 Vision', 'name': 'impaired_vision', 'check': 'code:yes_no_not_known'},
        {'column': '5.07 Toileting', 'name': 'toileting_problems', 'check': 'code:yes_no_not_known'},
        {'column': '5.08 AbnormalCardAssess', 'name': 'abnormal_cardiovascular_assessment', 'check': 'code:yes_no_not_known'},
        {'column': '5.09 CognitiveImpairment', 'name': 'cognitive_impairment', 'check': 'code:yes_no_not_known'},
        {'column': '5.10 Referrals', 'name': 'onward_referral', 'check': 'code:referrals'},
        {'column': '6.01 FollowUp12_16', 'name': 'follow_up_16_weeks', 'check': 'code:follow_up'},
        {'column': '6.02 Dateof16WeekAss', 'name': 'follow_up_16_weeks_date', 'check': 'date_after_fracture:730'},
        {'column': '6.05 BoneTherapy1216', 'name': 'bone_therapy_at_16_weeks', 'check': 'code:bone_therapy_16_weeks'},
        {'column': '6.06 StartStrenBalExe', 'name': 'started_strength_and_balance', 'check': 'code:strength_and_balance'},
        {'column': '7.01 FollowUp48_56', 'name': 'follow_up_52_weeks', 'check': 'code:follow_up'},
        {'column': '7.02 Dateof52WeekAss', 'name': 'follow_up_52_weeks_date', 'check': 'date_after_fracture:730'},
        {'column': '7.05 BoneTherapy4856', 'name': 'bone_therapy_at_52_weeks', 'check': 'code:bone_therapy_52_weeks'},
        {'column': '7.06 NumReFracSinceIndex', 'name': 'fractures_since_index', 'check': 'number:0:20'},
        {'column': 'Date of Death', 'name': 'death_date', 'check': 'date_after_fracture:'},
    ]) }}
{% endmacro %}


{#- The staged (typed, not yet warned) value of one field, from its trimmed raw text. -#}
{% macro stage_field_value(field, raw) %}
    {%- set kind = field.check.split(':')[0] -%}
    {%- if kind == 'code' -%}
        {{ recode_answer(raw, field.check.split(':')[1]) }}
    {%- elif kind == 'number' -%}
        try_cast({{ raw }} as double)
    {%- else -%}
        {{ parse_submission_date(raw) }}
    {%- endif -%}
{% endmacro %}


{#- Why a field's value is a warning (null when it is not): the rule it breaks, in plain English.
    `raw` is the trimmed raw text, `value` the staged value, `fracture_date` the parsed 1.09. -#}
{% macro field_warning_reason(field, raw, value, fracture_date) %}
    {%- set parts = field.check.split(':') -%}
    {%- set kind = parts[0] -%}
    case
        when {{ raw }} is null then null
        {%- if kind == 'code' %}
        when {{ value }} is null then 'not one of the listed codes'
        {%- elif kind == 'number' %}
        when {{ value }} is null then 'not a number'
        when {{ value }} < {{ parts[1] }} or {{ value }} > {{ parts[2] }}
            then 'outside the range {{ parts[1] }} to {{ parts[2] }}'
        {%- else %}
        when {{ value }} is null then 'not a valid date'
        {%- endif %}
        {%- if kind == 'date_after_fracture' %}
        when {{ value }} < {{ fracture_date }} then 'dated before the fracture'
        {%- if parts[1] %}
        when {{ value }} > {{ dbt.dateadd('day', parts[1], fracture_date) }}
            then 'dated more than {{ (parts[1] | int) // 365 }} years after the fracture'
        {%- endif %}
        {%- endif %}
    end
{% endmacro %}


{#- A coded answer, already normalised (normalise_code_text), matched case-insensitively against the
    codes of var('submission_code_lists')[list_name] and their documented wordings, and returned in
    its listed spelling. The wordings are derived as flsdb/contract.py code_wordings() does. -#}
{% macro recode_answer(raw, list_name) %}
    {%- set codes = var('submission_code_lists')[list_name] %}
    {%- set wordings = code_wordings(list_name) %}
    case lower({{ raw }})
        {%- for code in codes %}
        when '{{ code | lower | replace("'", "''") }}' then '{{ code | replace("'", "''") }}'
        {%- endfor %}
        {%- for wording, code in wordings.items() %}
        when '{{ wording | lower | replace("'", "''") }}' then '{{ code | replace("'", "''") }}'
        {%- endfor %}
    end
{% endmacro %}


{#- The documented wordings of a code list, wording -> code (dbt_project.yml, the coded-answer
    block): the explicit ones, and every named drug followed by the list's wording suffix. -#}
{% macro code_wordings(list_name) %}
    {%- set wordings = {} %}
    {%- do wordings.update(var('submission_code_wordings', {}).get(list_name, {})) %}
    {%- set suffix = var('named_drug_wording_suffixes', {}).get(list_name) %}
    {%- if suffix %}
        {%- for drug in var('named_drugs') %}
            {%- do wordings.update({drug ~ ' ' ~ suffix: drug}) %}
        {%- endfor %}
    {%- endif %}
    {{ return(wordings) }}
{% endmacro %}


{#- A submitted text with whitespace of any kind (var code_whitespace_pattern: tabs, CR, no-break
    and other Unicode spaces) removed around it and every run inside made one space; null when
    nothing is left. The loader reads answers the same way (flsdb/contract.py). -#}
{% macro normalise_code_text(expression) %}
    {%- set pattern = var('code_whitespace_pattern') %}
    nullif({{ regex_replace_all(
        regex_replace_all(expression, '^' ~ pattern ~ '|' ~ pattern ~ '$', ''),
        pattern, ' ') }}, '')
{% endmacro %}
