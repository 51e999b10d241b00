-- Warns in the build with every row of the hand-edited seeds (spc_rebase_months,
-- spc_fixed_baselines, outlier_decisions) that matches nothing (quality.dq_seed_rows): a rebase, a
-- fixed baseline or an outlier decision that someone wrote but that would change nothing. A warning,
-- not an error, so that dq_checks below it is still built: its check seed_rows_unmatched (severity
-- error in seeds/dq_thresholds.csv) names each row in the quality report and refuses publication.
-- `select description from quality.dq_seed_rows where not is_matched` lists them too.

{{ config(severity='warn') }}

select
    seed_file,
    row_as_written,
    problem,
    description
from {{ ref('dq_seed_rows') }}
where not is_matched
