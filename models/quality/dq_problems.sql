-- One row per data-quality problem of the extract: a file refused, a row rejected, a newer
-- version rejected, a value warned, a record excluded, a cohort record of unknown deprivation, a
-- withdrawal (`flsdb withdraw`), or a loaded file no longer in the landing folder, with the FLS,
-- file and line (and field) it traces to and a plain-English description.
-- Why: the data-quality report and problems.csv list every problem where an audit lead can find
-- it in the file the FLS sent; dq_checks counts them; each service's feedback file lists its own,
-- with a title and what to do (seeds/dq_problem_actions.csv). No raw row content: the loader's
-- reasons name no identifier, and the rejected row as sent stays in the raw schema.

with

load_files as (
    select * from {{ ref('stg_fls_db__load_files') }}
),

rejects as (
    select * from {{ ref('stg_fls_db__submission_rejects') }}
),

warnings as (
    select * from {{ ref('int_submission_warnings_unpivoted') }}
),

registry as (
    select fls_code from {{ ref('fls_registry') }}
),

actions as (
    select * from {{ ref('dq_problem_actions') }}
),

withdrawals as (
    select * from {{ ref('stg_fls_db__withdrawals') }}
    where is_active
),

files_with_rejects as (
    select distinct file_sha256 from rejects
),

file_fls_counts as (
    -- The FLS a file belongs to: the commonest FLS Code among its accepted rows, so that a row
    -- rejected for an unknown or blank FLS code still counts against the service that sent it.
    select
        records.file_sha256,
        records.fls_code,
        count(*) as rows_accepted
    from {{ ref('stg_fls_db__submission_records') }} as records
    inner join files_with_rejects
        on records.file_sha256 = files_with_rejects.file_sha256
    group by records.file_sha256, records.fls_code
),

file_fls as (
    select
        file_sha256,
        fls_code
    from (
        select
            file_sha256,
            fls_code,
            row_number() over (
                partition by file_sha256 order by rows_accepted desc, fls_code asc
            ) as fls_rank
        from file_fls_counts
    ) as ranked
    where fls_rank = 1
),

rejects_with_fls as (
    select
        rejects.*,
        coalesce(
            file_fls.fls_code,
            case when registry.fls_code is not null then rejects.fls_code end
        ) as owning_fls_code
    from rejects
    left join file_fls on rejects.file_sha256 = file_fls.file_sha256
    left join registry on rejects.fls_code = registry.fls_code
),

latest_accepted_versions as (
    -- docs/specification/submission-format.md, "Versions and duplicates": versions are ranked among accepted rows
    -- only. For each record that also has a rejected row, its accepted row loaded last (file load order,
    -- then line), which a later rejected row would have replaced had it been accepted.
    select
        fls_code,
        record_id,
        load_order,
        line_number,
        source_file
    from (
        select
            records.fls_code,
            records.record_id,
            records.load_order,
            records.line_number,
            records.source_file,
            row_number() over (
                partition by records.fls_code, records.record_id
                order by records.load_order desc, records.line_number desc
            ) as load_rank
        from {{ ref('stg_fls_db__submission_records') }} as records
        inner join (
            select distinct
                fls_code,
                record_id
            from rejects
            where record_id is not null
        ) as rejected_records
            on
                records.fls_code = rejected_records.fls_code
                and records.record_id = rejected_records.record_id
    ) as ranked
    where load_rank = 1
),

refused_files as (
    select
        -- Every file not loaded: refused whole (`rejected`), unreadable (`refused`) or left out by
        -- rule (`skipped`: a name starting with `.` or `_`); docs/raw-schema.md.
        'file refused' as problem_kind,
        'file_' || status as problem_code,
        cast(null as {{ dbt.type_string() }}) as fls_code,
        source_file,
        cast(null as {{ dbt.type_bigint() }}) as line_number,
        cast(null as {{ dbt.type_string() }}) as field_name,
        rejection_reason as reason,
        case status
            when 'skipped' then 'The file was not loaded, by rule: '
            when 'refused' then 'The file could not be read: '
            else 'The whole file was refused: '
        end || coalesce(rejection_reason, 'no reason recorded') || '.' as description
    from load_files
    where not is_loaded and not is_withdrawn
),

withdrawn as (
    -- Every active withdrawal: its rows are out of the audit, counted here (not lost).
    select
        'withdrawn' as problem_kind,
        withdrawal_kind || '_withdrawn' as problem_code,
        owning_fls_code as fls_code,
        coalesce(source_file, '(every file)') as source_file,
        cast(null as {{ dbt.type_bigint() }}) as line_number,
        cast(null as {{ dbt.type_string() }}) as field_name,
        reason,
        case withdrawal_kind
            when 'file' then 'The file was withdrawn'
            else 'Record ' || fls_code || ' ' || record_id || ' was withdrawn in every file'
        end
        || ' (withdrawal ' || cast(withdrawal_id as {{ dbt.type_string() }}) || ', by '
        || withdrawn_by || ' on ' || cast(cast(withdrawn_at as date) as {{ dbt.type_string() }})
        || ': ' || reason || '); its ' || cast(rows_covered as {{ dbt.type_string() }})
        || ' accepted row(s) are not in the audit.' as description
    from withdrawals
),

missing_from_landing as (
    -- A loaded file the last load did not find in the landing folder: its rows still count.
    select
        'file missing from landing' as problem_kind,
        'file_missing_from_landing' as problem_code,
        cast(null as {{ dbt.type_string() }}) as fls_code,
        source_file,
        cast(null as {{ dbt.type_bigint() }}) as line_number,
        cast(null as {{ dbt.type_string() }}) as field_name,
        'no longer in the landing folder' as reason,
        'The file was loaded on ' || cast(cast(loaded_at as date) as {{ dbt.type_string() }})
        || ' but is no longer in the landing folder (noticed by the load of '
        || cast(cast(missing_from_landing_since as date) as {{ dbt.type_string() }}) || '); its '
        || cast(rows_accepted as {{ dbt.type_string() }}) || ' accepted row(s) still count in the'
        || ' audit. If it was sent in error, withdraw it: flsdb withdraw --file "' || source_file
        || '" --by NAME --reason TEXT.' as description
    from load_files
    where is_loaded and not is_withdrawn and missing_from_landing_since is not null
),

rejected_rows as (
    select
        'row rejected' as problem_kind,
        reject_code as problem_code,
        owning_fls_code as fls_code,
        source_file,
        line_number,
        column_name as field_name,
        reject_reason as reason,
        'The row was rejected and is not in the audit: ' || reject_reason as description
    from rejects_with_fls
),

newer_versions_rejected as (
    select
        'newer version rejected' as problem_kind,
        rejects.reject_code as problem_code,
        rejects.owning_fls_code as fls_code,
        rejects.source_file,
        rejects.line_number,
        rejects.column_name as field_name,
        rejects.reject_reason as reason,
        'A newer version of a record was rejected (' || rejects.reject_code
        || '); the previous accepted version, '
        || latest_accepted_versions.source_file || ' line '
        || cast(latest_accepted_versions.line_number as {{ dbt.type_string() }})
        || ', still counts.' as description
    from rejects_with_fls as rejects
    inner join latest_accepted_versions
        on
            rejects.fls_code = latest_accepted_versions.fls_code
            and rejects.record_id = latest_accepted_versions.record_id
    where
        rejects.load_order > latest_accepted_versions.load_order
        or (
            rejects.load_order = latest_accepted_versions.load_order
            and rejects.line_number > latest_accepted_versions.line_number
        )
),

field_warnings as (
    select
        'warning' as problem_kind,
        warning_reason as problem_code,
        fls_code,
        source_file,
        line_number,
        field_name,
        warning_reason as reason,
        'The value of ''' || field_name || ''' is treated as not recorded: ' || warning_reason || '.'
            as description
    from warnings
),

exclusions as (
    select
        'exclusion' as problem_kind,
        exclusion_reason as problem_code,
        fls_code,
        source_file,
        line_number,
        cast(null as {{ dbt.type_string() }}) as field_name,
        exclusion_reason as reason,
        'The record is outside the audit: ' || exclusion_reason || '.' as description
    from {{ ref('fct_episodes') }}
    where exclusion_reason is not null
),

unknown_deprivation as (
    select
        'unknown deprivation' as problem_kind,
        postcode_match_status as problem_code,
        fls_code,
        source_file,
        line_number,
        '1.04 Post Code' as field_name,
        postcode_match_status as reason,
        'The deprivation of this cohort record is unknown (postcode: ' || postcode_match_status || ').'
            as description
    from {{ ref('fct_episodes') }}
    where is_in_cohort and deprivation_quintile = 'unknown'
),

every_problem as (
    select * from refused_files
    union all
    select * from rejected_rows
    union all
    select * from newer_versions_rejected
    union all
    select * from field_warnings
    union all
    select * from exclusions
    union all
    select * from unknown_deprivation
    union all
    select * from withdrawn
    union all
    select * from missing_from_landing
),

numbered as (
    select
        *,
        row_number() over (
            order by problem_kind, source_file, line_number, field_name, problem_code
        ) as problem_number
    from every_problem
),

actions_matched as (
    -- each problem's title and action: the seed row of its kind whose code pattern matches it, the
    -- most specific (longest pattern) first; each kind has a catch-all row ('%')
    select
        numbered.*,
        actions.problem_title,
        actions.action,
        row_number() over (
            partition by numbered.problem_number
            order by length(actions.problem_code) desc, actions.problem_code asc
        ) as match_rank
    from numbered
    left join actions
        on
            numbered.problem_kind = actions.problem_kind
            and numbered.problem_code like actions.problem_code
),

final as (
    select
        problem_kind,
        problem_code,
        fls_code,
        source_file,
        line_number,
        field_name,
        reason,
        description,
        problem_title,
        action
    from actions_matched
    where match_rank = 1
)

select * from final
