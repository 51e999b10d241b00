-- One row per FLS in the registry: its name and place, for the site's FLS pages and BI filters.
-- Why: dim_fls less what a reader of the publication does not need (catchment arithmetic).

with

fls as (
    select * from {{ ref('dim_fls') }}
),

final as (
    select
        fls_code,
        fls_name,
        country_code,
        country_name,
        region_code,
        region_name,
        first_audit_year,
        last_audit_year,
        is_synthetic
    from fls
)

select * from final
