-- Secondary suppression of the monthly series is complete: no additive relation (months -> year,
-- FLS -> region -> country -> England and Wales months) has exactly one suppressed member, which
-- subtraction would give away. Members: published months, the published yearly results, and the
-- never-published later months of an incomplete year (publication_monthly_suppression_relations),
-- which count as blank but are no secret: a relation whose only blank member they are is fine.

with

relations as (
    select * from {{ ref('publication_monthly_suppression_relations') }}
),

months as (
    select * from {{ ref('published_kpi_monthly') }}
),

years as (
    select * from {{ ref('published_kpi_results') }}
    where breakdown = 'all' and breakdown_value = 'all'
),

members as (
    select
        relations.relation_id,
        case
            when relations.month_number = 13 then true
            when relations.month_number = 0 then years.is_suppressed
            else months.is_suppressed
        end as is_suppressed,
        relations.month_number != 13 as is_protected
    from relations
    left join months
        on
            relations.geography_level = months.geography_level
            and relations.geography_code = months.geography_code
            and relations.kpi_number = months.kpi_number
            and relations.audit_year = months.audit_year
            and relations.month_number = cast(extract(month from months.month_start) as {{ dbt.type_int() }})
    left join years
        on
            relations.month_number = 0
            and relations.geography_level = years.geography_level
            and relations.geography_code = years.geography_code
            and relations.kpi_number = years.kpi_number
            and relations.audit_year = years.audit_year
),

counted as (
    select
        relation_id,
        sum(case when is_suppressed then 1 else 0 end) as suppressed_members,
        sum(case when is_suppressed and is_protected then 1 else 0 end) as protected_members,
        count(*) as members
    from members
    group by relation_id
)

select * from counted
where suppressed_members = 1 and protected_members = 1
