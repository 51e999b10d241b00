-- Every episode KPI (grain `episode` in the kpi_definitions seed): an episode in the numerator is in
-- the denominator. Returns one row per episode and KPI that breaks it. The KPI list is the seed's,
-- so a new episode KPI is checked with no change here.

{%- set episode_kpis = kpis_of_grain('episode') %}

with

episodes as (
    select * from {{ ref('int_episodes_kpi_flagged') }}
),

violations as (
    {%- for kpi in episode_kpis %}
        select
            fls_code,
            record_id,
            {{ kpi.kpi_number }} as kpi_number
        from episodes
        -- A null flag fails too.
        where not coalesce(not kpi_{{ kpi.kpi_number }}_in_numerator or kpi_{{ kpi.kpi_number }}_in_denominator, false)
        {%- if not loop.last %}

            union all
        {%- endif %}
    {%- endfor %}
)

select * from violations
