"""Running the Great Expectations suites of flsdb.quality.expectations: one GX project per
validation, a check per expectation in the validation.json shape, each said in plain English,
and offline Data Docs.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Callable

import duckdb
import pandas as pd

from flsdb.quality.expectations import (CRITICAL, RESULT_FORMAT, SUITES, Context, Suite,
                                        read_context)


# --------------------------------------------------------------------------------------------
# Plain-English wording of an expectation (what the report shows)
# --------------------------------------------------------------------------------------------

def _range(kwargs: dict) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")

    def show(v):
        return str(v.date()) if isinstance(v, pd.Timestamp) else f"{v:g}" if isinstance(v, (int, float)) else str(v)
    if low is not None and high is not None:
        return f"is between {show(low)} and {show(high)}" if low != high else f"is {show(low)}"
    if low is not None:
        return f"is at least {show(low)}"
    return f"is at most {show(high)}" if high is not None else "is within range"


def describe(config) -> str:
    """The expectation in words an audit lead uses: its meta description, else worded from its
    type and arguments."""
    meta = getattr(config, "meta", None) or {}
    if meta.get("description"):
        return str(meta["description"])
    k, kind = config.kwargs, config.type
    column = k.get("column", "")
    mostly = k.get("mostly")
    share = f" in at least {mostly:.0%} of rows" if mostly is not None else " in every row"
    words = {
        "expect_table_row_count_to_be_between": lambda: "The table is not empty.",
        "expect_column_values_to_not_be_null": lambda: f"'{column}' is recorded{share}.",
        "expect_column_values_to_be_in_set": lambda: (
            f"'{column}' is one of its {len(k.get('value_set') or [])} listed values{share}."),
        "expect_column_values_to_not_be_in_set": lambda: (
            f"'{column}' is not one of {', '.join(map(str, k.get('value_set') or []))}{share}."),
        "expect_column_values_to_be_between": lambda: f"'{column}' {_range(k)}{share}.",
        "expect_column_values_to_match_regex": lambda: f"'{column}' is written in its expected format.",
        "expect_column_values_to_be_unique": lambda: f"No two rows share the same '{column}'.",
        "expect_compound_columns_to_be_unique": lambda: (
            "No two rows share the same " + " + ".join(k.get("column_list") or []) + "."),
        "expect_column_values_to_be_in_type_list": lambda: f"'{column}' is stored as a number of the right type.",
        "expect_column_pair_values_a_to_be_greater_than_b": lambda: (
            f"'{k.get('column_A')}' is at least '{k.get('column_B')}'."),
    }
    text = words.get(kind, lambda: kind.replace("expect_", "").replace("_", " ").capitalize() + ".")()
    condition = k.get("row_condition")
    if condition:
        text = text[:-1] + f" (where {condition})."
    return text


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------

def _describe_args(config) -> str:
    kwargs = {k: v for k, v in config.kwargs.items()
              if k not in ("batch_id", "value_set", "column_set", "column_list", "row_condition",
                           "condition_parser") and v is not None}
    for key in ("value_set", "column_set", "column_list"):
        if key in config.kwargs:
            kwargs[key] = f"[{len(config.kwargs[key])} values]"
    return ", ".join(f"{k}={v}" for k, v in kwargs.items())


def _silence_gx(context) -> None:
    """No GX progress bars (one per metric computation): `flsdb validate` prints one line per
    suite instead."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    context.variables.save()


def run_suites(con: duckdb.DuckDBPyConnection, gx_dir: Path, docs_dir: Path,
               context: Context | None = None, only: set[str] | None = None,
               progress: Callable[[str], None] = lambda line: None) -> list[dict]:
    """Run every suite on frames read through `con`; build Data Docs into `docs_dir`.

    The GX project lives in `gx_dir` (recreated on every run, so that Data Docs show this
    validation only). Returns one check per expectation in the validation.json shape, plus
    `description` (plain English), `suite`, `column`, `unexpected_count`, `element_count`,
    `rows_checked` and `sampled`. `only` restricts the run to the named suites (a validation with
    a subset cannot approve anything more than it checked: the gate reads whatever checks ran).
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    ctx = context or read_context(con)
    for folder in (gx_dir, docs_dir):
        shutil.rmtree(folder, ignore_errors=True)
    gx_dir.mkdir(parents=True)
    gx_context = gx.get_context(mode="file", project_root_dir=str(gx_dir))
    _silence_gx(gx_context)
    gx_context.add_data_docs_site(site_name="flsdb_quality", site_config={
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend",
                          "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    })
    source = gx_context.data_sources.add_pandas("flsdb_warehouse")
    checks: list[dict] = []
    for suite_def in SUITES:
        if only is not None and suite_def.name not in only:
            continue
        asset = source.add_dataframe_asset(suite_def.name)
        batch = asset.add_batch_definition_whole_dataframe("whole_table")
        suite = gx_context.suites.add(gx.ExpectationSuite(
            name=suite_def.name, meta={"notes": suite_def.description},
            expectations=suite_def.expectations(gx, ctx)))
        validation = gx_context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_def.name, data=batch, suite=suite))
        progress(f"GX suite {suite_def.name}: {len(suite.expectations)} expectations on "
                 + (f"a random sample of at most {ctx.sample_rows:,} rows of "
                    if suite_def.sampled else "") + suite_def.description)
        try:
            frame = suite_def.frame(con, ctx.sample_rows)
        except duckdb.CatalogException as error:  # its table was not built: a blocking check
            checks.append({"name": f"gx.{suite_def.name}", "source": "gx", "severity": "error",
                           "status": "fail", "suite": suite_def.name, "column": "",
                           "description": f"The table of the {suite_def.name} suite can be read.",
                           "detail": str(error).splitlines()[0], "unexpected_count": None,
                           "element_count": None, "rows_checked": 0, "sampled": suite_def.sampled})
            continue
        rows = len(frame)
        result = validation.run(batch_parameters={"dataframe": frame}, result_format=RESULT_FORMAT)
        for r in result.results:
            checks.append(_check(suite_def, r, rows))
        del frame, result
    progress("GX Data Docs")
    gx_context.build_data_docs(site_names=["flsdb_quality"])
    strip_remote_assets(docs_dir)
    return checks


def _check(suite_def: Suite, r, rows: int) -> dict:
    """One expectation's outcome as a validation.json check."""
    config = r.expectation_config
    res = r.result or {}
    raised = bool(r.exception_info and r.exception_info.get("raised_exception"))
    severity = getattr(config.severity, "value", config.severity) or CRITICAL
    column = config.kwargs.get("column") or config.kwargs.get("column_A") or ""
    condition = config.kwargs.get("row_condition")
    if isinstance(condition, dict):
        condition = condition.get("pass_through_filter") or str(condition)
    unexpected, elements = res.get("unexpected_count"), res.get("element_count")
    detail = f"{config.type}({_describe_args(config)})"
    if unexpected:
        detail += f": {unexpected:,} of {elements or 0:,} rows unexpected"
    if suite_def.sampled:
        detail += f" (in a random sample of {rows:,} rows)"
    if raised:
        detail += ": raised " + str(r.exception_info.get("exception_message", ""))[:300]
    return {
        "name": f"gx.{suite_def.name}.{config.type}" + (f"[{column}]" if column else "")
                + (f"[where {condition}]" if condition else ""),
        "source": "gx",
        "severity": "error" if severity == CRITICAL else "warn",
        "status": "pass" if r.success and not raised else "fail",
        "detail": detail,
        "description": describe(config),
        "suite": suite_def.name,
        "column": column,
        "unexpected_count": unexpected,
        "element_count": elements,
        "rows_checked": rows,
        "sampled": suite_def.sampled,
        "mostly": config.kwargs.get("mostly"),
    }


def strip_remote_assets(docs_dir: Path) -> None:
    """Data Docs pages pull Bootstrap, jQuery, fonts and a logo from CDNs (and the logo URL
    carries the data context id). The quality outputs must work offline and call out nowhere:
    drop every remote <link>/<script>/<img> reference. The pages stay readable, unstyled."""
    remote = re.compile(
        r'<link[^>]+href="https?://[^"]*"[^>]*>|<script[^>]+src="https?://[^"]*"[^>]*>\s*</script>'
        r'|<img[^>]+src="https?://[^"]*"[^>]*>', re.IGNORECASE)
    for page in docs_dir.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        cleaned = remote.sub("", text)
        cleaned = re.sub(r"url\('https?://[^']*'\)", "none", cleaned)
        if cleaned != text:
            page.write_text(cleaned, encoding="utf-8")
