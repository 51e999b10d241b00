-- Secondary suppression is complete: every additive relation (a total and its parts) of the
-- published results that has a suppressed member has at least var secondary_suppression_min_cells
-- of them (or all its members), so none is given away by subtraction.
-- Fails when var secondary_suppression_passes was too few for the data: raise it.

with

relations as (
    select * from {{ ref('publication_suppression_relations') }}
),

results as (
    select * from {{ ref('published_kpi_results') }}
),

counted as (
    select
        relations.relation_id,
        sum(case when results.is_suppressed then 1 else 0 end) as suppressed_members,
        count(*) as members
    from relations
    inner join results
        on
            relations.audit_year = results.audit_year
            and relations.geography_level = results.geography_level
            and relations.geography_code = results.geography_code
            and relations.kpi_number = results.kpi_number
            and relations.breakdown = results.breakdown
            and relations.breakdown_value = results.breakdown_value
    group by relations.relation_id
)

select * from counted
where
    suppressed_members > 0
    and suppressed_members < least(members, {{ var('secondary_suppression_min_cells') }})
