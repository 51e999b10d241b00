-- One row per FLS x audit year x KPI 1 key field: how many cohort records the field is measured
-- over, how many have it recorded, and whether it reaches the completeness threshold (80%, the
-- completeness KPI's key_field_threshold_pct in the kpi_definitions seed).

-- depends_on: {{ ref('int_episodes_kpi_flagged') }}
-- (the key fields, and so the refs below, are read from seeds/submission_fields.csv at compile time)
{%- set completeness = completeness_kpi() %}

with

measured as (
    -- The model itself, not an import CTE, in each of the union's branches: DuckDB materialises a
    -- CTE that is read more than once, with all its columns (DEVELOPERS.md, "Performance").
    {%- for key_field in kpi_1_key_fields() %}
        select
            fls_code,
            country_code,
            region_code,
            audit_year,
            {{ loop.index }} as field_order,
            '{{ key_field.field }}' as field_name,
            sum({{ count_if_true(key_field.get('measured_over', 'true')) }}) as records_measured,
            sum(
                {{ count_if_true('(' ~ key_field.get('measured_over', 'true') ~ ') and (' ~ key_field.recorded ~ ')') }}
            )
                as records_recorded
        from {{ ref('int_episodes_kpi_flagged') }}
        group by fls_code, country_code, region_code, audit_year
        {%- if not loop.last %}

            union all
        {%- endif %}
    {%- endfor %}
),

final as (
    select
        *,
        -- In double precision on every engine (Spark would keep a 6-decimal-place decimal).
        case
            when records_measured > 0 then 100.0 * cast(records_recorded as double) / records_measured
        end as completeness_pct,
        -- A field with no records to measure counts as complete (docs/specification/kpi-definitions.md).
        -- Compared in integers and an exact decimal: 100 x recorded >= threshold x measured.
        records_measured = 0
        or 100 * records_recorded >= {{ completeness.key_field_threshold_pct }} * records_measured
            as is_at_least_80_pct_complete
    from measured
)

select * from final
