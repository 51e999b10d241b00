-- Baseline for the benchmark harness (bench/run_benchmarks.py): the national and per-FLS results
-- (breakdown 'all') of all 11 KPIs, written by hand as ONE DuckDB query straight from the loaded
-- raw table. It is the ceiling for this engine: the marts must give identical numbers, and the
-- harness prints marts-build time / this query's time.
--
-- Reads (nothing built by dbt models):
--   raw.submission_records                       every accepted row, all text (flsdb load)
--   reference.fls_registry, reference.fls_catchments, reference.incidence_rates
--                                                the seeds (dbt seed), for KPI 2/3 expected counts
--   data/reference/ons_mye2020_la_age_sex.csv.gz  ONS mid-2020 population (KPI 2/3), path relative
--                                                to the project directory; the only estimate shipped,
--                                                so every audit year uses it (as the models do)
-- Not read: the postcode lookup and the deprivation files (they only feed breakdowns; KPI 1 counts
-- a postcode as recorded when it is present and well formed, matched or not).
--
-- Same rules as the models: coded answers matched trimmed and case-insensitively, dates ISO or
-- UK, warned values (dates before the fracture, 16-week dates more than 2 years after) not
-- recorded; the latest version of FLS Code + Record ID; one episode per FLS + patient + fracture
-- date; aged 50+, fractured on or before the extract date E = the latest Last Updated date.
-- Patients are grouped by NHS number digits (the models use their keyed pseudonym: same groups).
-- Output: audit_year, geography_level, geography_code, kpi_number, numerator, denominator.

with

rows_typed as (
    select
        upper(trim("FLS Code")) as fls_code,
        trim("Record ID") as record_id,
        coalesce(
            try_strptime(trim("Last Updated"), '%Y-%m-%dT%H:%M:%S'),
            try_strptime(trim("Last Updated"), '%Y-%m-%d %H:%M:%S')
        ) as last_updated_at,
        _load_order as load_order,
        _line_number as line_number,
        regexp_replace("1.01 NHS Number", '[^0-9]', '', 'g') as patient,
        coalesce(
            cast(try_strptime(trim("1.02 Date of Birth"), '%Y-%m-%d') as date),
            cast(try_strptime(trim("1.02 Date of Birth"), '%d/%m/%Y') as date)
        ) as birth_date,
        coalesce(
            cast(try_strptime(trim("1.09 Date Index Frac Diagnosed"), '%Y-%m-%d') as date),
            cast(try_strptime(trim("1.09 Date Index Frac Diagnosed"), '%d/%m/%Y') as date)
        ) as fracture_date,
        lower(trim("1.11 SiteFirstFrac")) as site,
        lower(trim("1.03 Gender")) as sex,
        nullif(upper(replace(trim("1.04 Post Code"), ' ', '')), '') as postcode,
        lower(trim("1.05 CareRes")) as care_home,
        nullif(trim("1.06 DateFLSContact"), '') as contact_raw,
        nullif(trim("1.07 DateFLSAssess"), '') as assess_raw,
        lower(trim("1.08 AdmitHosp")) as admitted,
        lower(trim("2.03 PrevFracHist")) as previous_fracture,
        lower(trim("3.01 DXA")) as dxa,
        lower(trim("3.02 DXANotOrdered")) as dxa_not_ordered,
        nullif(trim("3.03 DateofDXA"), '') as dxa_raw,
        lower(trim("4.01 BoneTherapy")) as therapy,
        lower(trim("4.02 CalciumVitDRec")) as calcium,
        lower(trim("5.01 RiskAssesByFLS")) as falls_assessed,
        lower(trim("5.10 Referrals")) as referral,
        lower(trim("6.01 FollowUp12_16")) as fu16,
        nullif(trim("6.02 Dateof16WeekAss"), '') as fu16_raw,
        lower(trim("6.05 BoneTherapy1216")) as therapy16,
        lower(trim("6.06 StartStrenBalExe")) as strength_balance,
        lower(trim("7.01 FollowUp48_56")) as fu52,
        lower(trim("7.05 BoneTherapy4856")) as therapy52,
        nullif(trim("Date of Death"), '') as death_raw
    from raw.submission_records
),

extract_date as (
    select cast(max(last_updated_at) as date) as e from rows_typed
),

current_rows as (
    -- The latest version of each FLS Code + Record ID.
    select * from rows_typed
    qualify row_number() over (
        partition by fls_code, record_id order by last_updated_at desc, load_order desc, line_number desc
    ) = 1
),

episodes as (
    select
        *,
        row_number() over (
            partition by fls_code, patient, fracture_date
            order by last_updated_at desc, load_order desc, line_number desc
        ) as episode_rank,
        cast(date_part('year', age(fracture_date, birth_date)) as integer) as age_at_fracture
    from current_rows
),

cohort as (
    select
        episodes.fls_code,
        cast(extract(year from episodes.fracture_date) as integer) as audit_year,
        episodes.fracture_date as f,
        extract_date.e,
        episodes.site,
        episodes.age_at_fracture,
        episodes.sex,
        episodes.postcode,
        episodes.care_home,
        episodes.admitted,
        episodes.previous_fracture,
        episodes.dxa,
        episodes.dxa_not_ordered,
        episodes.therapy,
        episodes.calcium,
        episodes.falls_assessed,
        episodes.referral,
        episodes.fu16,
        episodes.therapy16,
        episodes.strength_balance,
        episodes.fu52,
        episodes.therapy52,
        coalesce(
            cast(try_strptime(episodes.contact_raw, '%Y-%m-%d') as date),
            cast(try_strptime(episodes.contact_raw, '%d/%m/%Y') as date)
        ) as contact_date,
        coalesce(
            cast(try_strptime(episodes.assess_raw, '%Y-%m-%d') as date),
            cast(try_strptime(episodes.assess_raw, '%d/%m/%Y') as date)
        ) as assess_date,
        coalesce(
            cast(try_strptime(episodes.dxa_raw, '%Y-%m-%d') as date),
            cast(try_strptime(episodes.dxa_raw, '%d/%m/%Y') as date)
        ) as dxa_date,
        coalesce(
            cast(try_strptime(episodes.fu16_raw, '%Y-%m-%d') as date),
            cast(try_strptime(episodes.fu16_raw, '%d/%m/%Y') as date)
        ) as fu16_date,
        coalesce(
            cast(try_strptime(episodes.death_raw, '%Y-%m-%d') as date),
            cast(try_strptime(episodes.death_raw, '%d/%m/%Y') as date)
        ) as death_date
    from episodes
    cross join extract_date
    where
        episodes.episode_rank = 1
        and not coalesce(episodes.age_at_fracture < 50, false)
        and not coalesce(episodes.fracture_date > extract_date.e, false)
),

flags as (
    select
        fls_code,
        audit_year,
        site,
        -- Warned dates are not recorded: before the fracture, or a 16-week date > 730 days after.
        case when assess_date >= f then date_diff('day', f, assess_date) end as days_assess,
        case when dxa_date >= f then date_diff('day', f, dxa_date) end as days_dxa,
        case when fu16_date >= f and fu16_date <= f + 730 then date_diff('day', f, fu16_date) end as days_fu16,
        f + 112 <= e as due16,
        f + 392 <= e as due52,
        coalesce(death_date >= f and death_date <= f + 112, false) or coalesce(fu16 = 'patient died', false)
            as died16,
        coalesce(death_date >= f and death_date <= f + 364, false)
        or coalesce(fu16 = 'patient died', false) or coalesce(fu52 = 'patient died', false) as died52,
        therapy in (
            'alendronate', 'risedronate', 'ibandronate', 'zoledronate', 'denosumab',
            'teriparatide', 'romosozumab', 'abaloparatide', 'raloxifene', 'hrt'
        ) as recommended,
        therapy16 in (
            'alendronate', 'risedronate', 'ibandronate', 'zoledronate', 'denosumab',
            'teriparatide', 'romosozumab', 'abaloparatide', 'raloxifene', 'hrt'
        ) as started16,
        therapy52 in (
            'alendronate', 'risedronate', 'ibandronate', 'zoledronate', 'denosumab',
            'teriparatide', 'romosozumab', 'abaloparatide', 'raloxifene', 'hrt'
        ) as taking52,
        -- KPI 1 key fields recorded (a listed code, a valid date, a well-formed postcode).
        age_at_fracture is not null as k1_age,
        f is not null as k1_fracture_date,
        site in ('hip', 'spine', 'wrist', 'humerus', 'pelvis', 'other') as k1_site,
        sex in ('male', 'female', 'other', 'not known') as k1_sex,
        regexp_full_match(postcode, '[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}') as k1_postcode,
        care_home in ('yes', 'no', 'not known') as k1_care_home,
        contact_date is not null as k1_contact,
        assess_date >= f as k1_assess,
        admitted in ('yes', 'no', 'not known') as k1_admitted,
        previous_fracture in ('yes', 'no', 'not known') as k1_previous,
        dxa in ('done', 'ordered', 'not ordered') as k1_dxa,
        therapy in (
            'alendronate', 'risedronate', 'ibandronate', 'zoledronate', 'denosumab', 'teriparatide',
            'romosozumab', 'abaloparatide', 'raloxifene', 'hrt', 'inappropriate', 'informed decline',
            'referred for further clinical opinion', 'referred to gp to decide', 'don''t know'
        ) as k1_therapy,
        calcium in ('yes', 'no', 'not known') as k1_calcium,
        falls_assessed in ('yes', 'no') as k1_falls,
        fu16 in ('yes', 'no', 'patient died', 'not known') as k1_fu16,
        strength_balance in ('yes', 'no', 'not appropriate', 'don''t know') as k1_strength,
        fu52 in ('yes', 'no', 'patient died', 'not known') as k1_fu52,
        dxa = 'done' as dxa_done,
        dxa = 'not ordered' and dxa_not_ordered = 'not required' as dxa_not_required,
        falls_assessed = 'yes' or referral in ('falls service', 'both') as falls,
        fu16 = 'yes' as fu16_yes,
        fu52 = 'yes' as fu52_yes,
        strength_balance = 'yes' as strength_started
    from cohort
),

per_fls as (
    select
        audit_year,
        fls_code,
        count_if(site != 'spine') as k2_num,
        count_if(site = 'spine') as k3_num,
        count(*) as k4_den,
        count_if(days_assess between 0 and 90) as k4_num,
        count_if(not coalesce(dxa_not_required, false)) as k5_den,
        count_if(dxa_done and days_dxa between 0 and 90) as k5_num,
        count(*) as k6_den,
        count_if(falls) as k6_num,
        count(*) as k7_den,
        count_if(recommended) as k7_num,
        count_if(due16 and not died16 and site != 'hip') as k8_den,
        count_if(due16 and not died16 and site != 'hip' and strength_started) as k8_num,
        count_if(due16 and not died16) as k9_den,
        count_if(due16 and not died16 and fu16_yes and days_fu16 <= 112) as k9_num,
        count_if(recommended and due16 and not died16) as k10_den,
        count_if(recommended and due16 and not died16 and started16) as k10_num,
        count_if(recommended and due52 and not died52) as k11_den,
        count_if(recommended and due52 and not died52 and fu52_yes and taking52) as k11_num,
        count(*) as n,
        count_if(due16) as n16,
        count_if(due52) as n52,
        -- KPI 1: key fields at least 80% complete (of 17).
        (count_if(k1_age) >= 0.8 * count(*))::int
        + (count_if(k1_fracture_date) >= 0.8 * count(*))::int
        + (count_if(k1_site) >= 0.8 * count(*))::int
        + (count_if(k1_sex) >= 0.8 * count(*))::int
        + (count_if(k1_postcode) >= 0.8 * count(*))::int
        + (count_if(k1_care_home) >= 0.8 * count(*))::int
        + (count_if(k1_contact) >= 0.8 * count(*))::int
        + (count_if(k1_assess) >= 0.8 * count(*))::int
        + (count_if(k1_admitted) >= 0.8 * count(*))::int
        + (count_if(k1_previous) >= 0.8 * count(*))::int
        + (count_if(k1_dxa) >= 0.8 * count(*))::int
        + (count_if(k1_therapy) >= 0.8 * count(*))::int
        + (count_if(k1_calcium) >= 0.8 * count(*))::int
        + (count_if(k1_falls) >= 0.8 * count(*))::int
        + (count_if(due16 and k1_fu16) >= 0.8 * count_if(due16))::int
        + (count_if(due16 and k1_strength) >= 0.8 * count_if(due16))::int
        + (count_if(due52 and k1_fu52) >= 0.8 * count_if(due52))::int as k1_num
    from flags
    group by audit_year, fls_code
),

audit_years as (
    select distinct audit_year from per_fls
),

population as (
    select
        area_code as la_code,
        sex,
        case
            when cast(age as integer) >= 90 then '90+'
            else
                cast(cast(floor(cast(age as integer) / 5) * 5 as integer) as varchar)
                || '-' || cast(cast(floor(cast(age as integer) / 5) * 5 + 4 as integer) as varchar)
        end as age_band,
        cast(population as integer) as population
    from read_csv('data/reference/ons_mye2020_la_age_sex.csv.gz', header = true, all_varchar = true)
    where cast(age as integer) >= 50
),

expected as (
    -- Expected fractures of each FLS active in an audit year that has cohort records.
    select
        audit_years.audit_year,
        fls_registry.fls_code,
        sum(case when rates.fracture_site != 'Spine' then c.population_share * p.population * rates.rate_per_10000_person_years / 10000.0 else 0 end) as k2_den,
        sum(case when rates.fracture_site = 'Spine' then c.population_share * p.population * rates.rate_per_10000_person_years / 10000.0 else 0 end) as k3_den
    from reference.fls_registry as fls_registry
    inner join audit_years
        on
            coalesce(fls_registry.first_audit_year <= audit_years.audit_year, true)
            and coalesce(fls_registry.last_audit_year >= audit_years.audit_year, true)
    inner join reference.fls_catchments as c on fls_registry.fls_code = c.fls_code
    inner join population as p on c.ltla21_code = p.la_code
    inner join reference.incidence_rates as rates on p.sex = rates.sex and p.age_band = rates.age_band
    group by audit_years.audit_year, fls_registry.fls_code
),

fls_results as (
    -- KPI 2/3 count an FLS only in the audit years it is registered for (it has an expected
    -- caseload then): outside them its records count in neither numerator nor denominator.
    select
        coalesce(per_fls.audit_year, expected.audit_year) as audit_year,
        coalesce(per_fls.fls_code, expected.fls_code) as fls_code,
        per_fls.* exclude (audit_year, fls_code, k2_num, k3_num),
        case when expected.fls_code is not null then per_fls.k2_num end as k2_num,
        case when expected.fls_code is not null then per_fls.k3_num end as k3_num,
        expected.fls_code is not null as is_registered,
        coalesce(expected.k2_den, 0) as k2_den,
        coalesce(expected.k3_den, 0) as k3_den
    from per_fls
    full outer join expected
        on per_fls.audit_year = expected.audit_year and per_fls.fls_code = expected.fls_code
),

fls_long as (
    select
        audit_year,
        'fls' as geography_level,
        fls_code as geography_code,
        is_registered,
        unnest([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) as kpi_number,
        unnest([
            k1_num, coalesce(k2_num, 0), coalesce(k3_num, 0), k4_num, k5_num, k6_num, k7_num,
            k8_num, k9_num, k10_num, k11_num
        ]) as numerator,
        unnest([
            17, k2_den, k3_den, k4_den, k5_den, k6_den, k7_den, k8_den, k9_den, k10_den, k11_den
        ]) as denominator
    from fls_results
),

national_long as (
    select
        audit_year,
        'national' as geography_level,
        'K04000001' as geography_code,
        unnest([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) as kpi_number,
        unnest([
            count_if(17 - k1_num < 5), sum(coalesce(k2_num, 0)), sum(coalesce(k3_num, 0)), sum(k4_num),
            sum(k5_num), sum(k6_num), sum(k7_num), sum(k8_num), sum(k9_num), sum(k10_num), sum(k11_num)
        ]) as numerator,
        unnest([
            count(n), sum(k2_den), sum(k3_den), sum(k4_den), sum(k5_den), sum(k6_den), sum(k7_den),
            sum(k8_den), sum(k9_den), sum(k10_den), sum(k11_den)
        ]) as denominator
    from fls_results
    group by audit_year
)

select * exclude (is_registered) from fls_long
where (numerator is not null and kpi_number not in (2, 3)) or (kpi_number in (2, 3) and is_registered)
union all
select * from national_long
