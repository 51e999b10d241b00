-- The incidence rate table, applied to the whole population of England and Wales aged 50+, must
-- give the national fragility fracture count (347,770 a year, +/- 5%) and about 70,000 hip
-- fractures (+/- 10%) (docs/specification/kpi-definitions.md). Returns one row per total that is out of range.
with population_estimates as (
    select * from {{ ref('stg_reference__population_estimates') }}
    where age >= {{ var('minimum_age') }}
),

incidence_rates as (
    select * from {{ ref('incidence_rates') }}
),

population_banded as (
    select
        sex,
        {{ five_year_age_band('age') }} as age_band,
        population
    from population_estimates
),

expected as (
    select
        incidence_rates.fracture_site,
        population_banded.population * incidence_rates.rate_per_10000_person_years / 10000.0 as expected_fractures
    from population_banded
    inner join incidence_rates
        on
            population_banded.sex = incidence_rates.sex
            and population_banded.age_band = incidence_rates.age_band
),

totals as (
    select
        'all sites' as total_name,
        coalesce(sum(expected_fractures), 0) as expected_fractures,
        347770 as target
    from expected

    union all

    select
        'hip' as total_name,
        coalesce(sum(case when fracture_site = 'Hip' then expected_fractures else 0 end), 0) as expected_fractures,
        70000 as target
    from expected
)

select *
from totals
where
    (total_name = 'all sites' and abs(expected_fractures - target) > 0.05 * target)
    or (total_name = 'hip' and abs(expected_fractures - target) > 0.10 * target)
