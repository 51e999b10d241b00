"""The `flsdb` command line: generate, load, build, and the steps after them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from flsdb import paths


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flsdb")
def main() -> None:
    """flsdb: the FLS-DB analytics warehouse (DuckDB + dbt)."""


@main.command()
@click.option("--years", default="2023,2024", show_default=True,
              help="Comma-separated audit years to generate.")
@click.option("--scale", default=1.0, show_default=True, type=float,
              help="Volume scale factor against the published national volumes.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Landing folder to write into [default: $FLSDB_LANDING or landing/].")
@click.option("--seed", default=20240101, show_default=True, type=int, help="Random seed.")
@click.option("--clean", is_flag=True, help="Write no injected defects (no realistic mess).")
def generate(years: str, scale: float, out_dir: Path | None, seed: int, clean: bool) -> None:
    """Write synthetic FLS submissions (one CSV per FLS per export) and a synthetic postcode lookup."""
    from flsdb.generate import generate as run_generate

    year_list = [int(y) for y in years.split(",") if y.strip()]
    summary = run_generate(years=year_list, scale=scale, out_dir=out_dir or paths.landing_dir(),
                           seed=seed, clean=clean)
    click.echo(summary)


@main.command()
@click.option("--landing", "landing", type=click.Path(path_type=Path), default=None,
              help="Landing folder to load [default: $FLSDB_LANDING or landing/].")
@click.option("--warehouse", type=click.Path(path_type=Path), default=None,
              help="DuckDB warehouse file [default: $FLSDB_WAREHOUSE or warehouse/flsdb.duckdb].")
def load(landing: Path | None, warehouse: Path | None) -> None:
    """Land every submission file in the DuckDB raw schema, with lineage and rejects."""
    from flsdb.load import load_landing

    result = load_landing(landing or paths.landing_dir(), warehouse or paths.warehouse_path())
    click.echo(result.summary_table())
    if result.files_rejected:
        click.echo(f"{result.files_rejected} file(s) rejected; see raw.load_file_rejects.", err=True)


def dbt_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DBT_PROFILES_DIR", str(paths.PROJECT_DIR))
    env.setdefault("FLSDB_WAREHOUSE", str(paths.warehouse_path()))
    env.setdefault("FLSDB_POSTCODE_LOOKUP", str(paths.postcode_lookup_path()))
    env.setdefault("DO_NOT_TRACK", "1")
    return env


def run_dbt(args: list[str]) -> int:
    dbt = Path(sys.executable).with_name("dbt")
    cmd = [str(dbt), *args, "--project-dir", str(paths.PROJECT_DIR)]
    click.echo("$ " + " ".join(cmd[:1 + len(args)]))
    return subprocess.call(cmd, env=dbt_env(), cwd=paths.PROJECT_DIR)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dbt_args", nargs=-1, type=click.UNPROCESSED)
def build(dbt_args: tuple[str, ...]) -> None:
    """Run `dbt build` (seeds, models, unit and data tests) on the warehouse."""
    sys.exit(run_dbt(["build", *dbt_args]))


@main.command()
@click.option("--scale", default=1.0, show_default=True, type=float)
def run(scale: float) -> None:
    """The main job: generate (if landing is empty) -> load -> dbt build -> print where things are."""
    landing = paths.landing_dir()
    if not landing.exists() or not any(landing.rglob("*.csv")):
        ctx = click.get_current_context()
        ctx.invoke(generate, years="2023,2024", scale=scale, out_dir=landing, seed=20240101,
                   clean=False)
    ctx = click.get_current_context()
    ctx.invoke(load, landing=landing, warehouse=paths.warehouse_path())
    code = run_dbt(["build"])
    if code:
        sys.exit(code)
    click.echo(
        "\nDone. Everything built from this landing set is SYNTHETIC unless you loaded real files.\n"
        f"  landing folder     {landing}\n"
        f"  postcode lookup    {paths.postcode_lookup_path()}\n"
        f"  warehouse          {paths.warehouse_path()}\n"
        "  raw schema         raw.load_files, raw.submission_records, raw.submission_rejects\n"
        "  KPI marts          marts.kpi_results, marts.kpi_data_completeness, marts.fct_episodes,\n"
        "                     marts.dim_fls, marts.dim_geography\n"
        f"  dbt run results    {paths.PROJECT_DIR / 'target' / 'run_results.json'}"
    )


if __name__ == "__main__":
    main()
