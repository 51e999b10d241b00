-- One row per episode (as fct_episodes): the pseudonymised row-level extract for approved
-- analysts. NOT PUBLISHED: `flsdb publish` writes it to output/restricted_analyst_extract/, a
-- separate tier whose README says who may read it, never to output/published/.
-- Why a model: what leaves the warehouse at row level is decided in SQL, in one place, by rule:
-- every column of fct_episodes except those that identify a record, a file or a place, or narrow
-- down a person:
--   record_id, source_file, line_number, versions_seen  lineage: the FLS's own record and file
--     (an FLS may put an identifier in a Record ID or a file name; issue 12);
--   lsoa11_code  a small area (about 1,500 people); deprivation decile and quintile stay;
--   fracture_date  replaced by fracture_month (the first day of its month);
--   age_at_fracture  replaced by age_band (already a column).
-- patient_pseudonym stays here; `flsdb publish` replaces it in the extract by a keyed hash with a
-- key made for that extract and then discarded, so extracts cannot be linked to each other or to
-- the warehouse.

{%- set withheld = ['record_id', 'source_file', 'line_number', 'versions_seen', 'lsoa11_code',
                    'fracture_date', 'age_at_fracture'] %}

{{ config(contract={'enforced': false}) }}

with

episodes as (
    select * from {{ ref('fct_episodes') }}
),

final as (
    select
    {%- if execute %}
        {%- for column in adapter.get_columns_in_relation(ref('fct_episodes')) %}
            {%- if column.name | lower not in withheld %}
                episodes.{{ adapter.quote(column.name) }},
            {%- endif %}
        {%- endfor %}
    {%- endif %}
        {{ dbt.date_trunc('month', 'episodes.fracture_date') }} as fracture_month
    from episodes
)

select * from final
