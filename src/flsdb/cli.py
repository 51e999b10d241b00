"""The `flsdb` command line: generate, load, build, and the steps after them."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import click

from flsdb import paths


# --- Operational failures (issue 12): caught once, here, at the CLI boundary -----------------
class FlsdbGroup(click.Group):
    """Every subcommand runs inside one handler: an operational failure (busy, read-only, corrupt
    warehouse, full disk, bad setting) prints one line and exits with its documented code
    (flsdb.failures.EXIT_CODES, docs/reliability.md); so does any other unexpected error.
    FLSDB_DEBUG=1 shows the traceback instead."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["flsdb.help_asked"] = bool({"--help", "-h"} & set(args))
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        from flsdb import failures

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:  # the one boundary: every other failure becomes one Error: line
            if os.environ.get("FLSDB_DEBUG"):
                raise
            failure = (failures.classify(exc, str(paths.warehouse_path()))
                       or failures.internal(exc))
            click.echo(f"Error: {failure.message}", err=True)
            ctx.exit(failure.exit_code)


@click.group(cls=FlsdbGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flsdb")
@click.pass_context
def main(ctx: click.Context) -> None:
    """flsdb: the FLS-DB analytics warehouse (DuckDB + dbt)."""
    # Every setting is checked once, here, before any subcommand does anything (exit 8 and one
    # line naming the setting: flsdb/settings.py). Help is shown whatever the settings.
    if not ctx.meta.get("flsdb.help_asked"):
        from flsdb import settings
        settings.check_all()


@main.command()
@click.option("--years", default="2023,2024", show_default=True,
              help="Comma-separated audit years to generate, each within 2016-2026.")
@click.option("--scale", default=1.0, show_default=True, type=float,
              help="Volume scale factor against the published national volumes.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Landing folder to write into [default: $FLSDB_LANDING or landing/].")
@click.option("--seed", default=20240101, show_default=True, type=int, help="Random seed.")
@click.option("--clean", is_flag=True, help="Write no injected defects (no realistic mess).")
@click.option("--drift/--no-drift", default=True, show_default=True,
              help="Month-by-month performance shifts in some services (listed in "
                   "_reference/injected_shifts.csv).")
def generate(years: str, scale: float, out_dir: Path | None, seed: int, clean: bool,
             drift: bool) -> None:
    """Write synthetic FLS submissions (one CSV per FLS per export) and a synthetic postcode lookup."""
    from flsdb.synthetic import generate as run_generate
    from flsdb.synthetic.audit_years import check_years

    try:  # a year outside the synthetic national-figures table (2016-2026), or not a number
        year_list = check_years(y for y in years.split(",") if y.strip())
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--years") from exc
    summary = run_generate(years=year_list, scale=scale, out_dir=out_dir or paths.landing_dir(),
                           seed=seed, clean=clean, drift=drift)
    click.echo(summary)


@main.command()
@click.option("--landing", "landing", type=click.Path(path_type=Path), default=None,
              help="Landing folder to load [default: $FLSDB_LANDING or landing/].")
@click.option("--warehouse", type=click.Path(path_type=Path), default=None,
              help="DuckDB warehouse file [default: $FLSDB_WAREHOUSE or warehouse/flsdb.duckdb].")
def load(landing: Path | None, warehouse: Path | None) -> None:
    """Land every submission file in the DuckDB raw schema, with lineage and rejects."""
    from flsdb import settings
    from flsdb.ingest import load_landing

    if landing or warehouse:
        settings.check_paths(landing=landing, warehouse=warehouse)
    result = load_landing(landing or paths.landing_dir(), warehouse or paths.warehouse_path())
    click.echo(result.summary_table())
    warned = [f for f in result.files if f.warnings]
    if warned:
        click.echo(f"{len(warned)} file(s) loaded with warnings (see the summary above and "
                   "raw.load_files.load_warnings).", err=True)
    if result.files_rejected:
        click.echo(f"{result.files_rejected} file(s) rejected; see raw.load_file_rejects.", err=True)
    if result.files_refused:
        click.echo(f"{result.files_refused} file(s) refused (unreadable, changed while loading, or a "
                   "link out of the landing folder or in a loop): recorded in raw.load_files with "
                   "the reason; the next run retries them.", err=True)
    if result.files_skipped:
        click.echo(f"{result.files_skipped} file(s) skipped by rule (a name starting with '.' or "
                   "'_'): recorded in raw.load_files with the reason.", err=True)
    if result.missing:
        click.echo(f"{len(result.missing)} file(s) loaded earlier are no longer in the landing "
                   "folder (listed above; raw.load_files.missing_since): their rows still count "
                   "until withdrawn with flsdb withdraw --file.", err=True)


def dbt_env() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           # an empty setting means its default (flsdb/settings.py); profiles.yml's env_var()
           # would read it as '' instead
           if not (name.startswith("FLSDB_") and value.strip() == "")}
    env.setdefault("FLSDB_PROJECT_DIR", str(paths.PROJECT_DIR))
    env.setdefault("DBT_PROFILES_DIR", str(paths.PROJECT_DIR))
    env.setdefault("FLSDB_WAREHOUSE", str(paths.warehouse_path()))
    env.setdefault("FLSDB_POSTCODE_LOOKUP", str(paths.postcode_lookup_path()))
    env.setdefault("DO_NOT_TRACK", "1")
    return env


def preflight_warehouse(warehouse: Path) -> None:
    """Before dbt runs: check the pseudonym key and that the warehouse opens for writing, so that
    a busy, read-only or corrupt warehouse or a bad key gives the CLI's one-line message
    (FlsdbGroup) rather than dbt's error output, and bring an older raw schema up to date. A
    warehouse not yet created is left to dbt."""
    import duckdb

    from flsdb.dbt_duckdb_plugin import check_pseudonym_key
    from flsdb.failures import ConfigurationError

    try:
        check_pseudonym_key()
    except ValueError as exc:
        raise ConfigurationError(str(exc)) from None
    if not warehouse.exists():
        folder = warehouse.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not os.access(folder, os.W_OK):               # dbt could not create it
            raise PermissionError(errno.EACCES, "Permission denied (or a read-only file "
                                  "system)", str(folder))
    else:
        for place in (warehouse, warehouse.parent):     # the file, and its folder for the WAL
            if not os.access(place, os.W_OK):
                raise PermissionError(errno.EACCES, "Permission denied (or a read-only file "
                                      "system)", str(place))
        con = duckdb.connect(str(warehouse))
        try:
            # A warehouse loaded by an older flsdb gains the raw tables and columns dbt now reads
            # (raw.withdrawals, raw.load_files.missing_since), as the next `flsdb load` would.
            if con.execute("select count(*) from information_schema.schemata "
                           "where schema_name = 'raw'").fetchone()[0]:
                from flsdb.ingest.warehouse import ensure_schema
                ensure_schema(con)
        finally:
            con.close()


def run_dbt(args: list[str]) -> int:
    """Run dbt, passing its output through; an operational failure named in its output (a full
    disk during the build, say) ends the command with the CLI's one line and exit code."""
    from flsdb import failures

    preflight_warehouse(paths.warehouse_path())
    dbt = Path(sys.executable).with_name("dbt")
    cmd = [str(dbt), *args, "--project-dir", str(paths.PROJECT_DIR)]
    click.echo("$ " + " ".join(cmd[:1 + len(args)]))
    errors = []
    with subprocess.Popen(cmd, env=dbt_env(), cwd=paths.PROJECT_DIR, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        for line in proc.stdout:
            click.echo(line, nl=False)
            if "Error" in line:
                errors.append(line)
    if proc.returncode:
        failure = failures.classify_text("".join(errors), str(paths.warehouse_path()))
        if failure is not None:
            click.echo(f"Error: {failure.message}", err=True)
            sys.exit(failure.exit_code)
    return proc.returncode


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--full", is_flag=True, help="Build even when nothing changed since the last build.")
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
def build(full: bool, dbt_args: tuple[str, ...]) -> None:
    """Run `dbt build` (seeds, models and data tests; unit tests are for `make test`) on the
    warehouse; skipped when nothing it reads changed since the last build (flsdb/build_state.py)."""
    from flsdb import build_state
    sys.exit(build_state.build(["build", *dbt_args], run_dbt, click.echo, force=full))


def _run_results_path() -> Path:
    from flsdb.quality.validate import default_run_results
    return default_run_results()


def _output_root() -> Path:
    return paths.output_dir()


@main.command()
@click.option("--warehouse", type=click.Path(path_type=Path), default=None,
              help="DuckDB warehouse file [default: $FLSDB_WAREHOUSE or warehouse/flsdb.duckdb].")
@click.option("--output", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the quality outputs [default: $FLSDB_OUTPUT/quality or output/quality].")
@click.option("--run-results", type=click.Path(path_type=Path), default=None,
              help="dbt's run_results.json (manifest.json beside it) [default: target/run_results.json].")
@click.option("--no-gx", is_flag=True, help="Skip the Great Expectations suites (faster; not for approval).")
def validate(warehouse: Path | None, out_dir: Path | None, run_results: Path | None, no_gx: bool) -> None:
    """Run every quality check; write validation.json and the data-quality report (report.html)."""
    verdict = _validate(warehouse, out_dir, run_results, no_gx)
    if verdict == "FAIL":
        sys.exit(1)


def _validate(warehouse, out_dir, run_results, no_gx) -> str:
    from flsdb.quality.validate import output_dir, validate as run_validate

    out_dir = out_dir or output_dir()
    result = run_validate(warehouse or paths.warehouse_path(), out_dir, run_results, run_gx=not no_gx)
    click.echo(f"Verdict: {result.summary()}")
    for check in result.blocking_failures:
        click.echo(f"  BLOCKING {check['name']}: {check['detail'][:300]}", err=True)
    click.echo(f"  report        {out_dir / 'report.html'} (every check: checks.html beside it)\n"
               f"  validation    {out_dir / 'validation.json'}\n"
               f"  problems      {out_dir / 'problems.csv'}\n"
               f"  feedback      {out_dir / 'feedback'} (one file per service, to send back)\n"
               f"  GX Data Docs  {out_dir / 'data_docs' / 'index.html'}")
    return result.verdict


# --- the sign-off and the publication gate (issue 20 part 1, issue 19) -------------------------

def _validation_file(validation_path: Path | None) -> Path:
    from flsdb.quality.validate import output_dir
    return validation_path or output_dir() / "validation.json"


VALIDATION_OPTION = click.option(
    "--validation", "validation_path", type=click.Path(path_type=Path), default=None,
    help="validation.json written by `flsdb validate` [default: $FLSDB_OUTPUT/quality/validation.json].")


def _show_review(reviewed) -> None:
    """What a reviewer decides on: the extract, the verdict, what blocks, what was skipped, and
    the warnings to acknowledge."""
    v = reviewed.validation
    checks = v.get("checks", [])
    warehouse = reviewed.warehouse
    click.echo(f"Extract {v.get('extract_date')} of {warehouse.get('path')}\n"
               f"  warehouse fingerprint  sha256 {warehouse.get('sha256', '')[:16]}... "
               f"({warehouse.get('bytes', 0):,} bytes), validated {v.get('generated_at')}\n"
               f"  report                 {reviewed.report}\n"
               f"Verdict: {v.get('verdict')} ({len(checks)} checks, {len(reviewed.blocking)} blocking "
               f"failure(s), {len(reviewed.warnings)} warning(s))")
    for check in reviewed.blocking:
        click.echo(f"  BLOCKING {check['name']}: {check.get('detail', '')[:200]}")
    for skipped in reviewed.skipped:
        click.echo(f"  SKIPPED  {skipped}")
    if reviewed.warnings:
        click.echo("Warnings to acknowledge:")
        for number, check in enumerate(reviewed.warnings, 1):
            click.echo(f"  {number:>3}. {check.get('description') or check['name']}\n"
                       f"       {check.get('detail', '')[:200]}")


@main.command()
@click.option("--reviewer", required=True,
              help="Your name: the sign-off, the extract history and the site's changes page show it.")
@click.option("--note", default=None, help="Why, or what you checked (kept with the sign-off).")
@click.option("--yes", is_flag=True,
              help="Acknowledge the warnings without being asked (when the report was read elsewhere).")
@VALIDATION_OPTION
def approve(reviewer: str, note: str | None, yes: bool, validation_path: Path | None) -> None:
    """Sign off the validated extract for publication, under your name, after reading its report."""
    from flsdb.quality import signoff

    reviewer = signoff.check_reviewer(reviewer)
    reviewed = signoff.review(_validation_file(validation_path))
    _show_review(reviewed)
    signoff.refuse_unapprovable(reviewed)
    if reviewed.warnings and not yes:
        click.confirm(f"{reviewer}: you have read the report and acknowledge these "
                      f"{len(reviewed.warnings)} warning(s); approve this extract for publication?",
                      abort=True)
    record = signoff.record_decision(reviewed, signoff.APPROVED, reviewer, note)
    click.echo(f"Approved by {record['reviewer']} at {record['decided_at']} -> "
               f"{reviewed.folder / signoff.SIGNOFF_NAME}\n"
               "Next: `flsdb publish`. A new load, build or validation before it cancels this sign-off.")


@main.command()
@click.option("--reviewer", required=True, help="Your name.")
@click.option("--note", required=True, help="Why the extract is not to be published (kept with the decision).")
@VALIDATION_OPTION
def reject(reviewer: str, note: str, validation_path: Path | None) -> None:
    """Record that the validated extract must not be published, and why, under your name."""
    from flsdb.quality import signoff

    reviewer = signoff.check_reviewer(reviewer)
    if not note.strip():
        raise click.BadParameter("say why the extract is rejected.", param_hint="--note")
    reviewed = signoff.review(_validation_file(validation_path))
    _show_review(reviewed)
    record = signoff.record_decision(reviewed, signoff.REJECTED, reviewer, note)
    click.echo(f"Rejected by {record['reviewer']} at {record['decided_at']}: {record['note']} -> "
               f"{reviewed.folder / signoff.SIGNOFF_NAME}\n"
               "`flsdb publish` refuses this extract. Fix it, build and validate again, and have "
               "the new report reviewed.")


@main.command()
@VALIDATION_OPTION
@click.option("--output", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Publication output folder [default: $FLSDB_OUTPUT or output/].")
@click.option("--warehouse", type=click.Path(path_type=Path), default=None,
              help="Warehouse to publish [default: $FLSDB_WAREHOUSE or warehouse/flsdb.duckdb]; it "
                   "must be the one signed off.")
def publish(validation_path: Path | None, out_dir: Path | None, warehouse: Path | None) -> None:
    """Publish the signed-off extract: the gate, then the published tier, the restricted analyst
    extract and the extract history, together or not at all. At most one publication per
    publication period (var publication_period): another extract of the same period is `Not
    published` (exit 0) and nothing changes."""
    from flsdb import settings
    from flsdb.publish.release import Held, release

    if out_dir:
        settings.check_paths(output=out_dir)
    out_dir = out_dir or _output_root()
    released = release(_validation_file(validation_path), out_dir, warehouse or paths.warehouse_path(),
                       progress=lambda line: click.echo(f"[publish] {line}", err=True))
    click.echo(str(released))
    if not isinstance(released, Held):
        click.echo(f"Approval: {out_dir / 'approval.json'}")


@main.command()
@click.option("--year", type=int, default=None, help="Audit year of the report at a glance [default: the latest].")
@click.option("--output", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder holding approval.json and published/ [default: $FLSDB_OUTPUT or output/].")
@click.option("--standalone", is_flag=True,
              help="Inline the Vega JavaScript into every page (each page works alone; larger site).")
def report(year: int | None, out_dir: Path | None, standalone: bool) -> None:
    """Build the static offline site (output/site/) from the published marts of an approved extract."""
    from flsdb import settings
    from flsdb.publish.site import ReportError, build_site

    if out_dir:
        settings.check_paths(output=out_dir)
    try:
        index = build_site(out_dir or _output_root(), year=year, standalone=standalone,
                           on_wait=lambda line: click.echo(line, err=True))
    except ReportError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Report written: {index}")


def _load_build_and_publish(landing: Path, dbt_args: list[str]) -> str:
    """load -> dbt <dbt_args> -> validate -> sign-off -> publish -> report, as `run` and `refresh`
    do; the verdict. The sign-off is automatic on synthetic data only; real data stops after the
    validation (exit 9) until a named person approves it (`flsdb approve`) and runs `flsdb
    publish`. Publication goes through the same gate as `flsdb publish`."""
    from flsdb.quality import signoff

    ctx = click.get_current_context()
    ctx.invoke(load, landing=landing, warehouse=paths.warehouse_path())
    # dbt exits 0 when only warn-severity tests fail; an error-severity failure (exit 1) is
    # still validated, so that the report names it, and the gate below then refuses.
    from flsdb import build_state
    code = build_state.build(dbt_args, run_dbt, click.echo)
    if code:
        click.echo(f"dbt build exited {code}; validating anyway so that the report shows why.",
                   err=True)
    verdict = _validate(None, None, None, False)
    reviewed = signoff.review(_validation_file(None))
    record = signoff.record_decision(reviewed, signoff.APPROVED, signoff.AUTOMATIC_REVIEWER,
                                     automatic=True)
    click.echo(f"Signed off automatically as '{record['reviewer']}': the data is synthetic (var "
               f"data_is_synthetic), {len(record['warnings_acknowledged'])} warning(s) recorded as "
               "acknowledged. Real data always needs `flsdb approve --reviewer NAME`.")
    ctx.invoke(publish, validation_path=None, out_dir=None, warehouse=None)
    if code:
        sys.exit(code)
    ctx.invoke(report, year=None, out_dir=None, standalone=False)
    return verdict


@main.command()
@click.option("--scale", default=1.0, show_default=True, type=float)
def run(scale: float) -> None:
    """The main job: generate (if landing is empty) -> load -> dbt build -> validate -> sign-off
    (automatic for synthetic data only) -> publish -> report."""
    landing = paths.landing_dir()
    if landing_is_empty(landing):
        ctx = click.get_current_context()
        ctx.invoke(generate, years="2023,2024", scale=scale, out_dir=landing, seed=20240101,
                   clean=False)
    else:
        click.echo(f"The landing folder {landing} is not empty: loading what is there. No "
                   "synthetic data is generated into a folder that holds anything.")
    verdict = _load_build_and_publish(landing, ["build"])
    click.echo(
        f"\nDone ({verdict}). Everything built from this landing set is SYNTHETIC unless you loaded real files.\n"
        f"  landing folder     {landing}\n"
        f"  postcode lookup    {paths.postcode_lookup_path()}\n"
        f"  warehouse          {paths.warehouse_path()}\n"
        "  raw schema         raw.load_files, raw.submission_records, raw.submission_rejects,\n"
        "                     raw.withdrawals\n"
        "  KPI marts          marts.kpi_results, marts.kpi_data_completeness, marts.fct_episodes,\n"
        "                     marts.dim_fls, marts.dim_geography\n"
        f"  dbt run results    {_run_results_path()}\n"
        f"  quality report     {_output_root() / 'quality' / 'report.html'}\n"
        f"  sign-off           {_output_root() / 'quality' / 'signoff.json'} (automatic: synthetic data)\n"
        f"  approval           {_output_root() / 'approval.json'}\n"
        f"  published tier     {_output_root() / 'published' / 'flsdb_published.duckdb'} (+ parquet/)\n"
        f"  analyst extract    {_output_root() / 'restricted_analyst_extract'} (NOT published)\n"
        f"  report site        {_output_root() / 'site' / 'index.html'}"
    )


# --- extract history (issue 14 part 5; src/flsdb/publish/history.py) ------------------------------

@main.command()
@click.option("--history", "history_file", type=click.Path(path_type=Path), default=None,
              help="History file [default: $FLSDB_HISTORY or history/flsdb_history.duckdb].")
@click.option("--changes", "show_changes", is_flag=True,
              help="List every change since the last extract, one line each.")
@click.option("--section", type=click.Choice(["result", "outlier", "data_quality"]), multiple=True,
              help="With --changes: only these sections (repeatable).")
def history(history_file: Path | None, show_changes: bool, section: tuple[str, ...]) -> None:
    """List the published extracts in the history and what changed since the last extract."""
    from collections import Counter

    from flsdb.publish.history import changes_since_last_extract, history_path, list_extracts

    if history_file:
        from flsdb import settings
        settings.check_paths(history=history_file)
    history_file = history_file or history_path()
    # A damaged, busy or misplaced history is one line and its exit code (HistoryError).
    extracts = list_extracts(history_file)
    changes = changes_since_last_extract(history_file)
    if not extracts:
        click.echo(f"No publication recorded in {history_file} yet.")
        return
    click.echo(f"History {history_file}: {len(extracts)} publication(s)")
    click.echo(f"  {'id':>4}  {'extract date':<12}  {'published (UTC)':<19}  {'results':>8}  "
               f"{'outliers':>8}  {'DQ problems':>11}  signed off by")
    for e in extracts:
        def rows(n, source):
            return f"{n:,}" if source else "-"
        click.echo(f"  {e['publication_id']:>4}  {e['extract_date']!s:<12}  "
                   f"{e['published_at']:%Y-%m-%d %H:%M:%S}  {e['kpi_result_rows']:>8,}  "
                   f"{rows(e['outlier_rows'], e['outlier_source']):>8}  "
                   f"{rows(e['dq_problem_rows'], e['dq_problem_source']):>11}  {signed_off(e)}")
    if len(extracts) < 2:
        click.echo("Only one publication: nothing to compare yet.")
        return
    if changes:
        first = changes[0]
        click.echo(f"Changes since the last extract ({first['previous_extract_date']} -> "
                   f"{first['latest_extract_date']}):")
    else:
        click.echo("No change since the last extract.")
    for (kind_section, kind), count in sorted(Counter(
            (c["change_section"], c["change_kind"]) for c in changes).items()):
        click.echo(f"  {kind:<22} {count:>7,}")
    if show_changes:
        for change in changes:
            if not section or change["change_section"] in section:
                click.echo(f"  [{change['change_kind']}] {change['description']}")


def signed_off(extract: dict) -> str:
    """Who signed a publication off, in words (a publication recorded before sign-offs existed
    has none)."""
    who = extract.get("signed_off_by")
    if not who:
        return "not recorded (published before sign-offs were kept)"
    when = extract.get("signed_off_at")
    words = f"{who}" + (f", {when:%Y-%m-%d %H:%M}" if when else "")
    warnings = extract.get("warnings_acknowledged") or []
    words += f", {extract.get('verdict')}, {len(warnings)} warning(s) acknowledged"
    if extract.get("sign_off_note"):
        words += f": {extract['sign_off_note']}"
    return words


def landing_is_empty(landing: Path) -> bool:
    """True when the landing folder is absent or holds nothing at all: any entry (a file of any
    name or case such as EXPORT.CSV, a hidden file, a folder, a link) makes it not empty, so
    synthetic data is never mixed into real submissions."""
    if not landing.exists() and not landing.is_symlink():
        return True
    if not landing.is_dir():
        return False
    with os.scandir(landing) as entries:
        return next(entries, None) is None


# --- Re-checking rejects after a registry change (issue 12) ----------------------------------
@main.command("recheck-rejects")
@click.option("--warehouse", type=click.Path(path_type=Path), default=None,
              help="DuckDB warehouse file [default: $FLSDB_WAREHOUSE or warehouse/flsdb.duckdb].")
@click.option("--registry", type=click.Path(path_type=Path), default=None,
              help="FLS registry CSV [default: seeds/fls_registry.csv].")
def recheck_rejects(warehouse: Path | None, registry: Path | None) -> None:
    """Re-check rows rejected for an unknown FLS code against the registry as it is now: rows
    whose FLS is now known and that pass every check move to accepted, with their lineage."""
    from flsdb.ingest import recheck_rejects as run_recheck

    result = run_recheck(warehouse or paths.warehouse_path(), registry)
    click.echo(result.summary())


# --- Withdrawing data (issue 19): src/flsdb/ingest/withdraw.py -----------------------------------
@main.command()
@click.option("--file", "file_spec", metavar="PATH|sha256:HEX", default=None,
              help="Withdraw this file's content: a path (read to find its content), the name it "
                   "was loaded under (relative to the landing folder), or sha256:<hex prefix>.")
@click.option("--record", "record_spec", metavar="FLS_CODE:RECORD_ID", default=None,
              help="Withdraw every row of this record, in every file, now and later.")
@click.option("--by", "by", metavar="NAME", default=None, help="Who withdraws (or revokes) it.")
@click.option("--reason", metavar="TEXT", default=None,
              help="Why (no patient identifier: it is shown in the data-quality report).")
@click.option("--list", "show_list", is_flag=True, help="List every withdrawal and the rows it covers.")
@click.option("--revoke", "revoke_id", type=int, metavar="ID", default=None,
              help="Revoke withdrawal ID (its rows come back with the next build).")
@click.option("--warehouse", type=click.Path(path_type=Path), default=None,
              help="DuckDB warehouse file [default: $FLSDB_WAREHOUSE or warehouse/flsdb.duckdb].")
@click.option("--landing", type=click.Path(path_type=Path), default=None,
              help="Landing folder --file names are relative to [default: $FLSDB_LANDING or landing/].")
def withdraw(file_spec: str | None, record_spec: str | None, by: str | None, reason: str | None,
             show_list: bool, revoke_id: int | None, warehouse: Path | None,
             landing: Path | None) -> None:
    """Withdraw a file or a record from the audit (a wrong file, a patient's objection), recorded
    with who, when and why in raw.withdrawals; the next refresh leaves its rows out of every
    extract. Idempotent; --list shows every withdrawal, --revoke ID undoes one."""
    from flsdb import settings
    from flsdb.ingest import withdraw as withdrawals

    warehouse = warehouse or paths.warehouse_path()
    chosen = [name for name, given in (("--file", file_spec), ("--record", record_spec),
                                       ("--list", show_list), ("--revoke", revoke_id is not None))
              if given]
    if len(chosen) != 1:
        raise click.UsageError("Give exactly one of --file, --record, --list or --revoke.")
    if show_list:
        click.echo(withdrawals.format_list(withdrawals.list_withdrawals(warehouse)))
        return
    for option, value in (("--by", by), ("--reason", reason)):
        if not value:
            raise click.UsageError(f"{option} is required: a withdrawal records who made it and "
                                   "why.")
    try:
        if revoke_id is not None:
            outcome = withdrawals.revoke(warehouse, revoke_id, by=by, reason=reason,
                                         lock_timeout=settings.lock_timeout())
        else:
            outcome = withdrawals.withdraw(warehouse, by=by, reason=reason, file=file_spec,
                                           record=record_spec, landing=landing,
                                           lock_timeout=settings.lock_timeout())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(str(outcome))


# --- the monthly cycle (issue 14 part 6) ----------------------------------------------------------
#: What new submissions can change: the models downstream of the submissions source. Seeds and
#: reference staging cannot change when only data arrives, so they are not rebuilt; but every data
#: test runs, because the gate approves only a validation that ran every check (a test that failed
#: in the last full build, a bad seed row say, must fail here again, not be skipped). Unit tests
#: check the code, not the data: production builds leave them out (make test and CI run them).
DATA_ONLY_BUILD = ["build", "--select", "source:fls_db+", "resource_type:test"]


@main.command()
@click.option("--all", "build_all", is_flag=True,
              help="Build everything, not only what the submissions feed (after a code, seed or reference change).")
@click.option("--full-refresh", is_flag=True, help="With --all: `dbt build --full-refresh`.")
def refresh(build_all: bool, full_refresh: bool) -> None:
    """New submissions: load -> build what they feed, run every data test -> validate -> sign-off
    (automatic for synthetic data only) -> publish -> report."""
    if build_all or full_refresh:
        dbt_args = ["build", *(["--full-refresh"] if full_refresh else [])]
    else:
        dbt_args = DATA_ONLY_BUILD
    _load_build_and_publish(paths.landing_dir(), dbt_args)


if __name__ == "__main__":
    main()
