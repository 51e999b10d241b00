"""The production build (`flsdb build`, and the build step of `flsdb run` and `flsdb refresh --all`):
without dbt's unit tests, and not done again when nothing that feeds it changed (issue 21).

Unit tests. dbt's unit tests check the SQL's logic on fixed fixture rows: their result depends on
the code alone, never on the data, so they run in development and CI (`make test`, `dbt build`)
and not in every production build. `production_args` adds `--exclude-resource-type unit_test` to
a production build unless the command names unit tests itself.

Nothing new. A successful plain build records a *fingerprint* of everything it read, in the
warehouse (`build_state.fingerprint`, one row): one digest per input, so that the next build can
say what changed.

- raw data: every base table of the `raw` schema (row count and an order-independent sum of row
  hashes: a new, changed, rejected or withdrawn row changes it) and every view's SQL;
- project files: every file dbt reads in the model, seed, test, macro, snapshot and analysis paths
  (.sql, .yml, .yaml, .csv, .md, .py), dbt_project.yml (its vars included), profiles.yml,
  selectors.yml and package files, and the reference files in data/;
- reference files named by a setting: the postcode lookup;
- settings: every environment variable the project reads through env_var(), and the pseudonym key
  (as digests; a variable that only says where something is, or how many threads, is left out);
- tools: the versions of Python, DuckDB, dbt-core, dbt-duckdb and flsdb, and the source of the
  dbt-duckdb plugin that runs inside the build (with the pseudonym key's module).

Every dbt command that runs on the warehouse (by flsdb or by hand; `dbt build`, `run`, `seed`,
`test`, `snapshot`) first forgets the record (the `forget_build_fingerprint` on-run-start hook),
so a partial or hand-made build can never be mistaken for the recorded one. A plain `flsdb build`
is skipped only when the record is there, every digest is the same, and dbt's run_results.json is
still the recorded build's (what `flsdb validate` reads). `flsdb build --full` always builds.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

SCHEMA = "build_state"
TABLE = f"{SCHEMA}.fingerprint"

#: dbt's unit tests are out of the production build (dbt's guidance: development and CI only).
UNIT_TESTS_OUT = ["--exclude-resource-type", "unit_test"]

#: Suffixes of the files dbt reads in its project paths.
DBT_FILE_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py", ".jinja"}
#: Project-root files dbt reads.
ROOT_FILES = ["dbt_project.yml", "profiles.yml", "selectors.yml", "packages.yml",
              "dependencies.yml", "package-lock.yml"]
#: Folders of the test path that hold no dbt tests (pytest, the Spark probes, the BI checks).
NOT_DBT = {"python", "spark", "bi", "__pycache__"}
#: Environment variables the project reads that say where something is or how it runs, never what
#: a number is (the warehouse holds the record itself; threads and memory change no result).
NOT_INPUTS = {"FLSDB_WAREHOUSE", "FLSDB_PROJECT_DIR", "PWD", "FLSDB_THREADS",
              "FLSDB_DUCKDB_MEMORY_LIMIT"}
#: Read by the dbt-duckdb plugin (flsdb.dbt_duckdb_plugin), not through env_var().
PLUGIN_SETTINGS = ["FLSDB_PSEUDONYM_KEY"]
TOOLS = ["duckdb", "dbt-core", "dbt-duckdb", "flsdb"]
#: flsdb's own code that runs inside the build (the dbt-duckdb plugin and the key it hands to SQL).
PLUGIN_MODULES = ["dbt_duckdb_plugin", "pseudonym_key"]


def production_args(dbt_args: list[str]) -> list[str]:
    """`dbt <dbt_args>` for production: unit tests left out, unless the command names them."""
    if dbt_args and dbt_args[0] == "build" and not any("unit_test" in a for a in dbt_args):
        return [*dbt_args, *UNIT_TESTS_OUT]
    return list(dbt_args)


# --------------------------------------------------------------------------- the fingerprint

def _text(digest) -> str:
    """A SHA-256 digest as 26 base32 characters (130 bits). Not hex: a hex digest often holds a run
    of ten decimal digits, which a scan for NHS numbers outside `raw` rightly cannot tell apart
    from one (tests/python/pipeline/test_privacy.py)."""
    return base64.b32encode(digest.digest()).decode("ascii")[:26].lower()


def _sha(data: bytes) -> str:
    return _text(hashlib.sha256(data))


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return _text(digest)


def _project_paths(project: Path) -> list[str]:
    """The folders dbt reads, from dbt_project.yml (dbt's defaults when a key is missing)."""
    import yaml

    config = yaml.safe_load((project / "dbt_project.yml").read_text(encoding="utf-8")) or {}
    folders = []
    for key, default in (("model-paths", ["models"]), ("seed-paths", ["seeds"]),
                         ("test-paths", ["tests"]), ("macro-paths", ["macros"]),
                         ("snapshot-paths", ["snapshots"]), ("analysis-paths", ["analyses"])):
        folders += [str(f) for f in (config.get(key) or default)]
    return folders


def project_files(project: Path) -> dict[str, str]:
    """{project-relative path: digest} of every file the dbt project reads."""
    files: dict[str, str] = {}
    for name in ROOT_FILES:
        if (project / name).is_file():
            files[name] = _file_digest(project / name)
    for folder in _project_paths(project):
        root = project / folder
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            rel = path.relative_to(project)
            if (path.is_file() and path.suffix in DBT_FILE_SUFFIXES
                    and not NOT_DBT.intersection(rel.parts[1:])):
                files[rel.as_posix()] = _file_digest(path)
    data = project / "data"                      # reference files read in place (meta.file_path)
    if data.is_dir():
        for path in data.rglob("*"):
            if path.is_file():
                files[path.relative_to(project).as_posix()] = _file_digest(path)
    return files


def project_settings(project: Path, files: dict[str, str]) -> list[str]:
    """The environment variables the project reads (env_var('NAME') in its files), plus the
    plugin's, minus NOT_INPUTS."""
    names = set(PLUGIN_SETTINGS)
    pattern = re.compile(r"""env_var\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")
    for rel in files:
        if rel.endswith((".yml", ".yaml", ".sql", ".jinja")):
            names.update(pattern.findall((project / rel).read_text(encoding="utf-8", errors="replace")))
    return sorted(names - NOT_INPUTS)


def raw_digests(con) -> dict[str, str]:
    """{raw.<table>: digest} of the raw schema: base tables by content, views by their SQL."""
    out = {}
    tables = con.execute("select table_name, table_type from information_schema.tables "
                         "where table_schema = 'raw' order by table_name").fetchall()
    for name, kind in tables:
        quoted = '"' + name.replace('"', '""') + '"'
        if kind == "VIEW":
            sql = con.execute("select sql from duckdb_views() where schema_name = 'raw' "
                              "and view_name = ?", [name]).fetchone()
            out[f"raw.{name}"] = "view " + _sha((sql[0] if sql else "").encode())
        else:
            # the row as a struct, hashed; the sum (as hugeint) does not depend on row order and
            # counts duplicates; the column list is in it, so an added column changes it too
            rows, total = con.execute(
                f"select count(*), coalesce(sum(hash(t)::hugeint), 0)::varchar "
                f"from raw.{quoted} as t").fetchone()
            columns = con.execute("select string_agg(column_name || ' ' || data_type, ',' "
                                  "order by ordinal_position) from information_schema.columns "
                                  "where table_schema = 'raw' and table_name = ?", [name]).fetchone()[0]
            out[f"raw.{name}"] = f"{rows} rows " + _sha(f"{total}|{columns}".encode())
    return out


def tool_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"tool python": sys.version.split()[0]}
    for name in TOOLS:
        try:
            out[f"tool {name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[f"tool {name}"] = "not installed"
    for module in PLUGIN_MODULES:
        out[f"tool flsdb.{module}"] = _file_digest(Path(__file__).with_name(f"{module}.py"))
    return out


def fingerprint(con, project: Path, postcode_lookup: Path) -> dict[str, str]:
    """{input: digest} of everything a build reads; `con` is a connection to the warehouse."""
    files = project_files(project)
    out = {f"file {rel}": digest for rel, digest in sorted(files.items())}
    out["reference postcode lookup"] = (_file_digest(postcode_lookup) if postcode_lookup.is_file()
                                        else "missing")
    for name in project_settings(project, files):
        value = os.environ.get(name)
        # a digest, never the value (the pseudonym key is a secret)
        out[f"setting {name}"] = "unset" if value is None else _sha(f"{name}={value}".encode())
    out.update({f"data {k}": v for k, v in raw_digests(con).items()})
    out.update(tool_versions())
    return out


def digest_of(components: dict[str, str]) -> str:
    return _sha(json.dumps(components, sort_keys=True).encode())


# --------------------------------------------------------------------------- the record

@dataclass
class Record:
    built_at: dt.datetime
    digest: str
    components: dict[str, str]
    invocation_id: str

    def when(self) -> str:
        return f"{self.built_at.astimezone(dt.timezone.utc):%Y-%m-%d %H:%M:%S} UTC"


def recorded(con) -> Record | None:
    """The record of the last successful plain build, or None (none, or forgotten since)."""
    exists = con.execute("select count(*) from information_schema.tables "
                         "where table_schema = ? and table_name = 'fingerprint'", [SCHEMA]).fetchone()[0]
    if not exists:
        return None
    row = con.execute(f"select built_at, digest, components, dbt_invocation_id from {TABLE}").fetchone()
    if row is None:
        return None
    built_at = row[0] if row[0].tzinfo else row[0].replace(tzinfo=dt.timezone.utc)
    return Record(built_at, row[1], json.loads(row[2]), row[3] or "")


def write_record(con, components: dict[str, str], invocation_id: str) -> Record:
    record = Record(dt.datetime.now(dt.timezone.utc), digest_of(components), components, invocation_id)
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute("begin transaction")
    con.execute(f"create or replace table {TABLE} (built_at timestamptz, digest varchar, "
                "components varchar, dbt_invocation_id varchar)")
    con.execute(f"insert into {TABLE} values (?, ?, ?, ?)",
                [record.built_at, record.digest, json.dumps(components, sort_keys=True), invocation_id])
    con.execute("commit")
    return record


def changes(old: dict[str, str], new: dict[str, str]) -> list[str]:
    """The inputs that differ, worded: `models/marts/kpi_results.sql changed`, `raw.withdrawals 3 -> 4 rows`."""
    out = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        label = key.split(" ", 1)[1]
        if before is None:
            out.append(f"{label} new")
        elif after is None:
            out.append(f"{label} gone")
        elif (" rows " in before and " rows " in after
              and before.split(" rows")[0] != after.split(" rows")[0]):
            out.append(f"{label} {before.split(' rows')[0]} -> {after.split(' rows')[0]} rows")
        elif key.startswith("tool ") and "." not in label:
            out.append(f"{label} {before} -> {after}")
        else:
            out.append(f"{label} changed")
    return out


def invocation_of(run_results: Path) -> str | None:
    try:
        return json.loads(run_results.read_text(encoding="utf-8"))["metadata"]["invocation_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_only(warehouse: Path):
    """A read-only connection that prints no progress bar (the raw hash can take seconds)."""
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    con.execute("set enable_progress_bar = false")
    return con


@dataclass
class Decision:
    skip: bool
    reason: str
    components: dict[str, str] | None      # the inputs as they are now (None: not computed)


def decide(warehouse: Path, project: Path, postcode_lookup: Path, run_results: Path) -> Decision:
    """Skip, or build and why. Never raises for a warehouse that cannot be read: dbt is then left
    to build (and to fail with its own message)."""
    import duckdb

    if not warehouse.exists():
        return Decision(False, "no warehouse yet", None)
    try:
        con = _read_only(warehouse)
    except duckdb.Error as exc:
        return Decision(False, f"the warehouse could not be read to compare ({str(exc).splitlines()[0]})",
                        None)
    try:
        now = fingerprint(con, project, postcode_lookup)
        record = recorded(con)
    finally:
        con.close()
    if record is None:
        return Decision(False, "no build recorded in this warehouse (a first build, or a dbt command "
                               "ran on it since the last `flsdb build`)", now)
    differ = changes(record.components, now)
    if differ:
        shown = ", ".join(differ[:6]) + (f" and {len(differ) - 6} more" if len(differ) > 6 else "")
        return Decision(False, f"changed since the build of {record.when()}: {shown}", now)
    if invocation_of(run_results) != record.invocation_id:
        return Decision(False, f"dbt's results of the build of {record.when()} ({run_results}) were "
                               "replaced or removed since", now)
    return Decision(True, f"nothing changed since the build of {record.when()} ({len(now)} inputs: "
                          "raw data, seeds, project files, reference files, settings, tool versions)",
                    now)


def record_build(warehouse: Path, components: dict[str, str], run_results: Path) -> str:
    """After a successful plain build: record the inputs it read. A warehouse that cannot be
    opened for writing now (a BI tool opened it) costs only the next skip, never the build."""
    import duckdb

    invocation = invocation_of(run_results)
    if invocation is None:
        return f"Build not recorded: {run_results} unreadable; the next build will run in full."
    try:
        con = duckdb.connect(str(warehouse))
    except duckdb.Error as exc:
        return (f"Build not recorded ({str(exc).splitlines()[0]}); the next `flsdb build` will "
                "run in full.")
    try:
        record = write_record(con, components, invocation)
    finally:
        con.close()
    return (f"Build recorded ({len(components)} inputs, fingerprint {record.digest[:12]}): "
            "`flsdb build` with nothing new will skip it.")


def build(dbt_args: list[str], run_dbt: Callable[[list[str]], int], echo: Callable[[str], None],
          force: bool = False) -> int:
    """A production `dbt build` (run through `run_dbt`); a plain one is skipped when nothing
    changed, and recorded when it succeeds. dbt's exit code (0 when skipped)."""
    from flsdb import paths
    from flsdb.quality.validate import default_run_results

    plain = list(dbt_args) == ["build"]
    if not plain:
        return run_dbt(production_args(dbt_args))
    warehouse, run_results = paths.warehouse_path(), default_run_results()
    decision = decide(warehouse, paths.PROJECT_DIR, paths.postcode_lookup_path(), run_results)
    if decision.skip and not force:
        echo(f"{decision.reason[0].upper()}{decision.reason[1:]}: skipped; --full to force.")
        return 0
    echo(f"Building: {'--full given' if force else decision.reason}.")
    code = run_dbt(production_args(dbt_args))
    if code == 0:
        components = decision.components
        if components is None:          # not readable before dbt ran (none yet, or busy): read now
            import duckdb
            try:
                con = _read_only(warehouse)
            except duckdb.Error as exc:
                echo(f"Build not recorded ({str(exc).splitlines()[0]}); the next `flsdb build` will "
                     "run in full.")
                return code
            try:
                components = fingerprint(con, paths.PROJECT_DIR, paths.postcode_lookup_path())
            finally:
                con.close()
        echo(record_build(warehouse, components, run_results))
    return code
