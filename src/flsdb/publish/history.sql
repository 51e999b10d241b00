-- The extract history (docs/specification/monitoring.md section 5): every rule of the history lives here, once.
--
-- src/flsdb/publish/history.py runs the named blocks below ("-- name: <block>"; statements
-- separated by ";" at the end of a line). DuckDB SQL: this file is not a dbt model and never runs
-- on Spark. The history is its own DuckDB file (default history/flsdb_history.duckdb), outside the
-- rebuildable warehouse and outside output/, so it survives any rebuild and any re-publication.
--
-- Tables (append-only; each row is stamped with the publication that added it):
--   extracts             one row per publication: extract date, publication time (UTC), what was
--                        published (sources, row counts, a content fingerprint) and who signed
--                        it off (reviewer, when, note, verdict, warnings acknowledged)
--   kpi_result_history   one row per publication x marts.kpi_results row (aggregates only)
--   outlier_history      one row per publication x audit year x FLS x KPI that was an outlier
--   dq_problem_history   one row per publication x data-quality problem (INTERNAL: file names)
-- Views (the latest publication against the one before it, in extract-date order):
--   latest_two_extracts, result_changes, outlier_changes, dq_problem_changes,
--   changes_since_last_extract (the three, one shape, one plain-English line each).
-- Each change view reads the two publications' rows through one table macro, publication_rows.


-- name: create_history
create table if not exists extracts (
    publication_id integer primary key,
    extract_date date not null,
    published_at timestamp not null,
    recorded_at timestamp not null,
    warehouse_path varchar not null,
    content_fingerprint varchar not null,
    kpi_result_source varchar not null,
    kpi_result_rows bigint not null,
    outlier_source varchar,
    outlier_rows bigint,
    dq_problem_source varchar,
    dq_problem_rows bigint,
    is_synthetic_data boolean
);

-- The sign-off each publication was made under (flsdb approve, or the automatic sign-off of
-- synthetic data): added as columns, so that a history made before sign-offs existed gains them
-- (null for its earlier publications) on its next append.
alter table extracts add column if not exists signed_off_by varchar;
alter table extracts add column if not exists sign_off_kind varchar;
alter table extracts add column if not exists signed_off_at timestamp;
alter table extracts add column if not exists sign_off_note varchar;
alter table extracts add column if not exists verdict varchar;
alter table extracts add column if not exists warnings_acknowledged varchar[];
alter table extracts add column if not exists checks_skipped varchar[];
alter table extracts add column if not exists warehouse_sha256 varchar;
alter table extracts add column if not exists validation_sha256 varchar;
alter table extracts add column if not exists report_sha256 varchar;

create table if not exists kpi_result_history (
    publication_id integer not null,
    extract_date date not null,
    published_at timestamp not null,
    audit_year integer not null,
    geography_level varchar not null,
    geography_code varchar not null,
    geography_name varchar,
    kpi_number integer not null,
    kpi_name varchar,
    breakdown varchar not null,
    breakdown_value varchar not null,
    numerator double,
    denominator double,
    value_pct double,
    denominator_note varchar,
    ci_lower_pct double,
    ci_upper_pct double,
    rating varchar,
    is_suppressed boolean,
    is_synthetic_data boolean,
    primary key (
        publication_id, audit_year, geography_level, geography_code, kpi_number, breakdown,
        breakdown_value
    )
);

create table if not exists outlier_history (
    publication_id integer not null,
    extract_date date not null,
    published_at timestamp not null,
    audit_year integer not null,
    fls_code varchar not null,
    fls_name varchar,
    kpi_number integer not null,
    kpi_name varchar,
    outlier_level varchar not null,
    outlier_direction varchar,
    numerator double,
    denominator double,
    value_pct double,
    national_value_pct double,
    status varchar,
    primary key (publication_id, audit_year, fls_code, kpi_number)
);

-- A problem's identity across extracts is (problem_kind, problem_code, fls_code, source_file,
-- line_number, field_name): the same fault at the same place of the same file. The description
-- is not part of it, so rewording a message does not make a problem "new".
create table if not exists dq_problem_history (
    publication_id integer not null,
    extract_date date not null,
    published_at timestamp not null,
    problem_kind varchar not null,
    problem_code varchar,
    fls_code varchar,
    source_file varchar,
    line_number bigint,
    field_name varchar,
    reason varchar,
    description varchar
);

-- A numerator or denominator changed: the expected counts of KPI 2/3 are sums of doubles that
-- differ in the last bit between two builds of the same data, so compare to 1 part in 10^9.
create or replace macro number_changed(previous_number, latest_number) as (
    coalesce(
        (previous_number is null) != (latest_number is null)
        or abs(latest_number - previous_number)
        > 1e-9 * greatest(1.0, abs(previous_number), abs(latest_number)),
        false
    )
);

-- A value moved by 0.1 percentage points or more (docs/specification/monitoring.md section 5); the 1e-9 keeps
-- 45.1 - 45.0 = 0.09999999999999432 on the right side of the line. A value that appeared or
-- disappeared (denominator to or from 0) moved too.
create or replace macro value_moved(previous_value, latest_value) as (
    coalesce(
        (previous_value is null) != (latest_value is null)
        or abs(latest_value - previous_value) >= 0.1 - 1e-9,
        false
    )
);

create or replace macro percent_text(value_pct) as (
    coalesce(printf('%.1f%%', value_pct), 'no value')
);

create or replace macro count_text(number) as (
    coalesce(
        case
            when number = round(number) then printf('%d', cast(number as bigint))
            else printf('%.1f', number)
        end,
        'none'
    )
);

-- The latest publication and the one before it. Order: extract date, then publication time, so
-- a re-publication of the same extract date with different content follows the one it replaces.
create or replace view latest_two_extracts as
with

ordered as (
    select
        publication_id,
        extract_date,
        published_at,
        outlier_source,
        dq_problem_source,
        row_number() over (
            order by extract_date desc, published_at desc, publication_id desc
        ) as recency
    from extracts
),

final as (
    select
        latest.publication_id as latest_publication_id,
        latest.extract_date as latest_extract_date,
        latest.published_at as latest_published_at,
        previous.publication_id as previous_publication_id,
        previous.extract_date as previous_extract_date,
        previous.published_at as previous_published_at,
        -- outliers and problems are compared only when both publications recorded them
        latest.outlier_source is not null
        and previous.outlier_source is not null as are_outliers_comparable,
        latest.dq_problem_source is not null
        and previous.dq_problem_source is not null as are_dq_problems_comparable
    from ordered as latest
    inner join ordered as previous on previous.recency = 2
    where latest.recency = 1
)

select * from final;

-- The rows that a history table (named by a string) holds for one publication of
-- latest_two_extracts, side 'latest' or 'previous': what every change view compares. Outliers and
-- problems are compared only when both publications recorded them (else no rows).
create or replace macro publication_rows(history_table, side) as table
    select history_rows.*
    from query_table(history_table) as history_rows  -- noqa: RF02
    inner join latest_two_extracts as pair
        on
            history_rows.publication_id
            = case side  -- noqa: RF02
                when 'latest' then pair.latest_publication_id
                else pair.previous_publication_id
            end
    where
        case history_table  -- noqa: RF02
            when 'outlier_history' then pair.are_outliers_comparable
            when 'dq_problem_history' then pair.are_dq_problems_comparable
            else true
        end;

-- One row per KPI result restated, added or removed between the two publications.
create or replace view result_changes as
with

latest as (
    select * from publication_rows('kpi_result_history', 'latest')
),

previous as (
    select * from publication_rows('kpi_result_history', 'previous')
),

compared as (
    select
        coalesce(latest.audit_year, previous.audit_year) as audit_year,
        coalesce(latest.geography_level, previous.geography_level) as geography_level,
        coalesce(latest.geography_code, previous.geography_code) as geography_code,
        coalesce(latest.geography_name, previous.geography_name) as geography_name,
        coalesce(latest.kpi_number, previous.kpi_number) as kpi_number,
        coalesce(latest.kpi_name, previous.kpi_name) as kpi_name,
        coalesce(latest.breakdown, previous.breakdown) as breakdown,
        coalesce(latest.breakdown_value, previous.breakdown_value) as breakdown_value,
        previous.numerator as previous_numerator,
        latest.numerator as latest_numerator,
        previous.denominator as previous_denominator,
        latest.denominator as latest_denominator,
        previous.value_pct as previous_value_pct,
        latest.value_pct as latest_value_pct,
        coalesce(latest.is_suppressed, false)
        or coalesce(previous.is_suppressed, false) as is_suppressed,
        -- a value can only move when a count changed; this says whether the move is material
        value_moved(previous.value_pct, latest.value_pct) as is_value_moved,
        case
            when previous.publication_id is null then 'result_added'
            when latest.publication_id is null then 'result_removed'
            when
                value_moved(previous.value_pct, latest.value_pct)
                or number_changed(previous.numerator, latest.numerator)
                or number_changed(previous.denominator, latest.denominator)
                then 'result_restated'
        end as change_kind
    from latest
    full outer join previous
        on
            latest.audit_year = previous.audit_year
            and latest.geography_level = previous.geography_level
            and latest.geography_code = previous.geography_code
            and latest.kpi_number = previous.kpi_number
            and latest.breakdown = previous.breakdown
            and latest.breakdown_value = previous.breakdown_value
),

final as (
    select
        *,
        'KPI ' || kpi_number || ' ' || coalesce(kpi_name, '') || ', ' || audit_year || ', '
        || geography_level || ' ' || geography_code
        || coalesce(' (' || geography_name || ')', '')
        || ', ' || breakdown || ' ' || breakdown_value || ': '
        || case change_kind
            when 'result_added'
                then
                    'new result ' || percent_text(latest_value_pct)
                    || ' (' || count_text(latest_numerator) || ' of '
                    || count_text(latest_denominator) || ')'
            when 'result_removed'
                then
                    'no longer reported (was ' || percent_text(previous_value_pct)
                    || ', ' || count_text(previous_numerator) || ' of '
                    || count_text(previous_denominator) || ')'
            else
                'restated from ' || percent_text(previous_value_pct) || ' to '
                || percent_text(latest_value_pct)
                || case
                    when not is_value_moved then ', a move of less than 0.1 points'
                    else ''
                end
                || ' (numerator ' || count_text(previous_numerator) || ' to '
                || count_text(latest_numerator) || ', denominator '
                || count_text(previous_denominator) || ' to '
                || count_text(latest_denominator) || ')'
        end as description
    from compared
    where change_kind is not null
)

select * from final;

-- One row per outlier (audit year x FLS x KPI, breakdown all) that appeared, resolved or changed
-- level or direction between the two publications.
create or replace view outlier_changes as
with

latest as (
    select * from publication_rows('outlier_history', 'latest')
),

previous as (
    select * from publication_rows('outlier_history', 'previous')
),

latest_fls_results as (
    -- the latest value of a resolved outlier, which is no longer in outlier_history
    select *
    from publication_rows('kpi_result_history', 'latest')
    where
        geography_level = 'fls'
        and breakdown = 'all'
),

compared as (
    select
        coalesce(latest.audit_year, previous.audit_year) as audit_year,
        coalesce(latest.fls_code, previous.fls_code) as fls_code,
        coalesce(latest.fls_name, previous.fls_name) as fls_name,
        coalesce(latest.kpi_number, previous.kpi_number) as kpi_number,
        coalesce(latest.kpi_name, previous.kpi_name) as kpi_name,
        previous.outlier_level as previous_outlier_level,
        latest.outlier_level as latest_outlier_level,
        previous.outlier_direction as previous_outlier_direction,
        latest.outlier_direction as latest_outlier_direction,
        previous.value_pct as previous_value_pct,
        coalesce(latest.value_pct, latest_fls_results.value_pct) as latest_value_pct,
        case
            when previous.publication_id is null then 'outlier_appeared'
            when latest.publication_id is null then 'outlier_resolved'
            when
                latest.outlier_level != previous.outlier_level
                or coalesce(latest.outlier_direction, '') != coalesce(previous.outlier_direction, '')
                then 'outlier_changed'
        end as change_kind
    from latest
    full outer join previous
        on
            latest.audit_year = previous.audit_year
            and latest.fls_code = previous.fls_code
            and latest.kpi_number = previous.kpi_number
    left join latest_fls_results
        on
            previous.audit_year = latest_fls_results.audit_year
            and previous.fls_code = latest_fls_results.geography_code
            and previous.kpi_number = latest_fls_results.kpi_number
),

final as (
    select
        *,
        'KPI ' || kpi_number || ' ' || coalesce(kpi_name, '') || ', ' || audit_year || ', FLS '
        || fls_code || coalesce(' (' || fls_name || ')', '') || ': '
        || case change_kind
            when 'outlier_appeared'
                then
                    'became a ' || coalesce(latest_outlier_direction || ' ', '')
                    || latest_outlier_level || ' at ' || percent_text(latest_value_pct)
            when 'outlier_resolved'
                then
                    'no longer an outlier (was a ' || coalesce(previous_outlier_direction || ' ', '')
                    || previous_outlier_level || ' at ' || percent_text(previous_value_pct)
                    || ', now ' || percent_text(latest_value_pct) || ')'
            else
                'changed from a ' || coalesce(previous_outlier_direction || ' ', '')
                || previous_outlier_level || ' to a '
                || coalesce(latest_outlier_direction || ' ', '') || latest_outlier_level
                || ' at ' || percent_text(latest_value_pct)
        end as description
    from compared
    where change_kind is not null
)

select * from final;

-- One row per data-quality problem identity that appeared or was resolved between the two
-- publications (identity: see dq_problem_history above).
create or replace view dq_problem_changes as
with

latest as (
    select distinct
        problem_kind,
        problem_code,
        fls_code,
        source_file,
        line_number,
        field_name,
        description
    from publication_rows('dq_problem_history', 'latest')
),

previous as (
    select distinct
        problem_kind,
        problem_code,
        fls_code,
        source_file,
        line_number,
        field_name,
        description
    from publication_rows('dq_problem_history', 'previous')
),

appeared as (
    select
        'dq_problem_appeared' as change_kind,
        latest.*
    from latest
    anti join previous
        on
            latest.problem_kind = previous.problem_kind
            and latest.problem_code is not distinct from previous.problem_code
            and latest.fls_code is not distinct from previous.fls_code
            and latest.source_file is not distinct from previous.source_file
            and latest.line_number is not distinct from previous.line_number
            and latest.field_name is not distinct from previous.field_name
),

resolved as (
    select
        'dq_problem_resolved' as change_kind,
        previous.*
    from previous
    anti join latest
        on
            previous.problem_kind = latest.problem_kind
            and previous.problem_code is not distinct from latest.problem_code
            and previous.fls_code is not distinct from latest.fls_code
            and previous.source_file is not distinct from latest.source_file
            and previous.line_number is not distinct from latest.line_number
            and previous.field_name is not distinct from latest.field_name
),

final as (
    select
        change_kind,
        problem_kind,
        problem_code,
        fls_code,
        source_file,
        line_number,
        field_name,
        case change_kind
            when 'dq_problem_appeared' then 'New data-quality problem'
            else 'Resolved data-quality problem'
        end
        || ' (' || problem_kind || coalesce(', FLS ' || fls_code, '')
        || coalesce(', ' || source_file, '') || coalesce(' line ' || line_number, '')
        || coalesce(', field ' || field_name, '') || '): ' || coalesce(description, '')
            as description
    from (
        select * from appeared
        union all
        select * from resolved
    ) as changed
)

select * from final;

-- Every change since the last extract, one shape: section result / outlier / data_quality.
-- INTERNAL as a whole: data_quality rows name submitted files; result and outlier rows carry
-- is_suppressed so that a published page can apply small-number suppression.
-- The sections are put together by name: a column a section does not have is null there (the
-- result section names the data-quality columns, so that they stay last but one).
create or replace view changes_since_last_extract as
with

pair as (
    select * from latest_two_extracts
),

changes as (
    select
        'result' as change_section,
        change_kind,
        audit_year,
        geography_level,
        geography_code,
        kpi_number,
        breakdown,
        breakdown_value,
        previous_numerator,
        latest_numerator,
        previous_denominator,
        latest_denominator,
        previous_value_pct,
        latest_value_pct,
        is_value_moved,
        is_suppressed,
        cast(null as varchar) as source_file,
        cast(null as bigint) as line_number,
        cast(null as varchar) as field_name,
        description
    from result_changes

    union all by name

    select
        'outlier' as change_section,
        change_kind,
        audit_year,
        'fls' as geography_level,
        fls_code as geography_code,
        kpi_number,
        'all' as breakdown,
        'all' as breakdown_value,
        previous_value_pct,
        latest_value_pct,
        description
    from outlier_changes

    union all by name

    select
        'data_quality' as change_section,
        change_kind,
        case when fls_code is not null then 'fls' end as geography_level,
        fls_code as geography_code,
        source_file,
        line_number,
        field_name,
        description
    from dq_problem_changes
),

final as (
    select
        pair.previous_extract_date,
        pair.previous_published_at,
        pair.latest_extract_date,
        pair.latest_published_at,
        changes.*
    from changes
    cross join pair
)

select * from final;


-- name: extract_date
-- The extract date E of the built warehouse, as the quality gate reads it (validate.py).
select max(extract_date) as extract_date from warehouse.marts.fct_episodes;


-- name: kpi_results_from_marts
-- Every published KPI result: aggregates only, no identifiers.
select
    audit_year,
    geography_level,
    geography_code,
    geography_name,
    kpi_number,
    kpi_name,
    breakdown,
    breakdown_value,
    numerator,
    denominator,
    value_pct,
    denominator_note,
    ci_lower_pct,
    ci_upper_pct,
    rating,
    is_suppressed,
    is_synthetic_data
from warehouse.marts.kpi_results;


-- name: kpi_results_with_published_suppression
-- Every KPI result, with the true numbers of marts.kpi_results and is_suppressed as published:
-- primary or complementary (publication.published_kpi_results). The site's page "Changes since
-- the last extract" hides a change when the result was suppressed in either extract, and a
-- complement hidden last month must stay hidden.
select
    kpi_results.audit_year,
    kpi_results.geography_level,
    kpi_results.geography_code,
    kpi_results.geography_name,
    kpi_results.kpi_number,
    kpi_results.kpi_name,
    kpi_results.breakdown,
    kpi_results.breakdown_value,
    kpi_results.numerator,
    kpi_results.denominator,
    kpi_results.value_pct,
    kpi_results.denominator_note,
    kpi_results.ci_lower_pct,
    kpi_results.ci_upper_pct,
    kpi_results.rating,
    coalesce(published.is_suppressed, kpi_results.is_suppressed) as is_suppressed,
    kpi_results.is_synthetic_data
from warehouse.marts.kpi_results as kpi_results
left join warehouse.publication.published_kpi_results as published
    on
        kpi_results.audit_year = published.audit_year
        and kpi_results.geography_level = published.geography_level
        and kpi_results.geography_code = published.geography_code
        and kpi_results.kpi_number = published.kpi_number
        and kpi_results.breakdown = published.breakdown
        and kpi_results.breakdown_value = published.breakdown_value;


-- name: outliers_from_register
-- The outlier register (docs/specification/monitoring.md section 4), with its review status.
select
    audit_year,
    fls_code,
    fls_name,
    kpi_number,
    kpi_name,
    outlier_level,
    outlier_direction,
    numerator,
    denominator,
    value_pct,
    national_value_pct,
    status
from warehouse.marts.outlier_register;


-- name: outliers_from_kpi_results
-- The same facts read from kpi_results, for a warehouse without the register (every alarm is also
-- an alert: the 99.8% limits lie outside the 95% ones). No review status.
select
    audit_year,
    geography_code as fls_code,
    geography_name as fls_name,
    kpi_number,
    kpi_name,
    case when is_outlier_alarm then 'alarm' else 'alert' end as outlier_level,
    outlier_direction,
    numerator,
    denominator,
    value_pct,
    national_value_pct,
    cast(null as varchar) as status
from warehouse.marts.kpi_results
where
    geography_level = 'fls'
    and breakdown = 'all'
    and is_outlier_alert;


-- name: dq_problems_from_quality
-- Every data-quality problem of the extract (models/quality/dq_problems). INTERNAL.
select
    problem_kind,
    problem_code,
    fls_code,
    source_file,
    line_number,
    field_name,
    reason,
    description
from warehouse.quality.dq_problems;
