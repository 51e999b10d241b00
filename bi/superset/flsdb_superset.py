"""Apache Superset over the published tier: `make bi` (docs/bi.md). Runs in .venv-bi, never .venv.

    python bi/superset/flsdb_superset.py setup    build Superset's metadata database from scratch
                                                  and import the shipped bundle (bundle/)
    python bi/superset/flsdb_superset.py serve    serve it on 127.0.0.1:8088 until Ctrl-C
    python bi/superset/flsdb_superset.py export   write the dashboard as it now is back to bundle/

The bundle (bundle/: a Superset export, readable YAML) is the dashboard's source. At import,
`setup` fills in the absolute path of the published DuckDB file (the database's URI holds
PUBLISHED_DUCKDB in its place) and the datasets' descriptions, from the dbt docs that
`flsdb publish` writes into the published file as comments (flsdb.publish.comments): a physical
dataset takes its table's comment, and every column the bundle leaves undescribed takes the comment
of the same column in the first publication table its dataset reads. `export` takes both out again.

Settings (environment):
    FLSDB_BI_HOME      Superset's state: metadata database, secret key, logs [default: .bi/]
    FLSDB_BI_PUBLISHED the published DuckDB file [default: $FLSDB_OUTPUT/published/flsdb_published.duckdb,
                       FLSDB_OUTPUT defaulting to output/]
    FLSDB_BI_PASSWORD  the password of the user `admin` [default: flsdb-local, loopback only]
    FLSDB_BI_HOST, FLSDB_BI_PORT   where to serve [default: 127.0.0.1, 8088]
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
PROJECT_DIR = HERE.parents[1]
BUNDLE_DIR = HERE / "bundle"
CONFIG_PATH = HERE / "superset_config.py"
PATH_TOKEN = "PUBLISHED_DUCKDB"
ADMIN_USER = "admin"
#: Without FLSDB_BI_PASSWORD: documented in docs/bi.md, and only ever served on loopback.
DEFAULT_PASSWORD = "flsdb-local"
#: In FLSDB_BI_HOME when `setup` gave admin the default password: `serve` then stays on loopback.
DEFAULT_PASSWORD_MARK = "admin-has-the-default-password"
SCHEMA = "publication"
EXIT_USAGE = 2


class BiError(Exception):
    """An operational failure: one `Error:` line, exit 1 (exit 2 for a refused setting)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# --- settings --------------------------------------------------------------------------------

def _project_path(value: str) -> Path:
    path = Path(value)
    return path if path.is_absolute() else PROJECT_DIR / path


def bi_home() -> Path:
    return _project_path(os.environ.get("FLSDB_BI_HOME", ".bi"))


def published_path() -> Path:
    if os.environ.get("FLSDB_BI_PUBLISHED"):
        return _project_path(os.environ["FLSDB_BI_PUBLISHED"]).resolve()
    output = _project_path(os.environ.get("FLSDB_OUTPUT", "output"))
    return (output / "published" / "flsdb_published.duckdb").resolve()


def password() -> tuple[str, bool]:
    """(password, whether it is the local default)."""
    chosen = os.environ.get("FLSDB_BI_PASSWORD", "")
    return (chosen, False) if chosen else (DEFAULT_PASSWORD, True)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address() -> tuple[str, int]:
    port = os.environ.get("FLSDB_BI_PORT", "8088")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise BiError(f"FLSDB_BI_PORT={port!r} is not a port number", EXIT_USAGE)
    return os.environ.get("FLSDB_BI_HOST", "127.0.0.1"), int(port)


def check_port_free(host: str, port: int) -> None:
    """Refuse when something already listens there (a running `make bi` uses this metadata
    database: rebuilding it under the server would break the server)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BiError(f"{host}:{port} is in use ({exc.strerror}): is `make bi` already running? "
                          "Stop it with Ctrl-C, or set FLSDB_BI_PORT to another port") from exc


def superset_environment() -> None:
    """Point Superset at our configuration and state before it is imported."""
    home = bi_home()
    home.mkdir(parents=True, exist_ok=True)
    key = home / "secret_key"
    if not key.exists():   # generated once per install, never committed (docs/bi.md)
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
    os.environ["FLSDB_BI_HOME"] = str(home)
    os.environ["SUPERSET_CONFIG_PATH"] = str(CONFIG_PATH)
    os.environ.setdefault("FLASK_APP", "superset")


# --- the bundle ------------------------------------------------------------------------------

def published_comments(db_path: Path) -> dict[str, tuple[str, dict[str, str], dict[str, str]]]:
    """{table: (comment, {column: comment}, {column: type})} of the publication schema of the
    published file, columns in their order."""
    import duckdb

    if not db_path.exists():
        raise BiError(f"no published tier at {db_path}: run `make run` first "
                      "(or set FLSDB_BI_PUBLISHED to a published flsdb_published.duckdb)")
    try:
        con = duckdb.connect(str(db_path), read_only=True)
    except duckdb.Error as exc:
        raise BiError(f"cannot open the published tier {db_path} read-only: {exc}") from exc
    try:
        tables = dict(con.execute("select table_name, coalesce(comment, '') from duckdb_tables() "
                                  "where schema_name = ?", [SCHEMA]).fetchall())
        docs = {table: (comment, {}, {}) for table, comment in tables.items()}
        for table, column, comment, kind in con.execute(
                "select table_name, column_name, coalesce(comment, ''), data_type from duckdb_columns() "
                "where schema_name = ? order by table_name, column_index", [SCHEMA]).fetchall():
            docs[table][1][column] = comment
            docs[table][2][column] = kind
    finally:
        con.close()
    if not docs:
        raise BiError(f"{db_path} holds no schema {SCHEMA}: is it a published tier?")
    return docs


def read_tables(dataset: dict) -> list[str]:
    """The publication tables a dataset reads, in order: its table, or those its SQL names."""
    if not dataset.get("sql"):
        return [dataset["table_name"]]
    return list(dict.fromkeys(re.findall(rf"\b{SCHEMA}\.(\w+)", dataset["sql"])))


def derived_descriptions(dataset: dict, docs: dict) -> tuple[str | None, dict[str, str]]:
    """(dataset description, {column: description}) that the dbt docs give a dataset."""
    tables = [t for t in read_tables(dataset) if t in docs]
    if dataset.get("sql"):
        table_description = None
    else:
        if dataset["table_name"] not in docs:
            raise BiError(f"the published tier has no table {SCHEMA}.{dataset['table_name']}, "
                          "which the bundle's dataset of that name reads")
        table_description = docs[dataset["table_name"]][0] or None
    columns = {}
    for column in dataset.get("columns", []):
        if column.get("expression"):
            continue
        for table in tables:
            comment = docs[table][1].get(column["column_name"])
            if comment:
                columns[column["column_name"]] = comment
                break
    return table_description, columns


def new_column(name: str, kind: str) -> dict:
    return {"column_name": name, "verbose_name": None, "is_dttm": kind.startswith(("DATE", "TIMESTAMP")),
            "is_active": True, "type": kind, "advanced_data_type": None, "groupby": True,
            "filterable": True, "expression": None, "description": None, "python_date_format": None,
            "datetime_format": None, "extra": {}}


def sync_physical_columns(dataset: dict, docs: dict) -> None:
    """A physical dataset has its table's columns as published: one the bundle does not list yet
    is added, one the table no longer has is left out (an export then records the change)."""
    if dataset.get("sql") or dataset["table_name"] not in docs:
        return
    kinds = docs[dataset["table_name"]][2]
    listed = [c for c in dataset.get("columns", []) if c.get("expression") or c["column_name"] in kinds]
    names = {c["column_name"] for c in listed}
    dataset["columns"] = listed + [new_column(n, k) for n, k in kinds.items() if n not in names]


def fill_dataset(dataset: dict, docs: dict) -> dict:
    sync_physical_columns(dataset, docs)
    table_description, columns = derived_descriptions(dataset, docs)
    if table_description:
        dataset["description"] = table_description
    for column in dataset.get("columns", []):
        if not column.get("description") and column["column_name"] in columns:
            column["description"] = columns[column["column_name"]]
    return dataset


def bundle_contents(db_path: Path, bundle_dir: Path = BUNDLE_DIR) -> dict[str, str]:
    """The bundle as Superset's importer takes it ({path: YAML}), filled in for db_path."""
    docs = published_comments(db_path)
    contents = {}
    for path in sorted(bundle_dir.rglob("*.yaml")):
        name = path.relative_to(bundle_dir).as_posix()
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        if name.startswith("databases/"):
            if PATH_TOKEN not in config["sqlalchemy_uri"]:
                raise BiError(f"{path}: sqlalchemy_uri must hold {PATH_TOKEN} in place of the path")
            config["sqlalchemy_uri"] = config["sqlalchemy_uri"].replace(PATH_TOKEN, str(db_path))
        elif name.startswith("datasets/"):
            config = fill_dataset(config, docs)
        elif name == "metadata.yaml":
            config["type"] = "assets"
        contents[name] = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    return contents


# --- Superset, in this process ---------------------------------------------------------------

def _app():
    superset_environment()
    from superset.app import create_app

    return create_app()


@contextlib.contextmanager
def output_to(log: Path):
    """Superset's own output (migrations, warnings) goes to the log file, not the terminal."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, original in zip((1, 2), saved):
            os.dup2(original, fd)
            os.close(original)


def rescope_native_filters(dashboard) -> None:
    """chartsInScope of each native filter from its scope, with the ids the import gave the
    charts (the importer renumbers `scope.excluded` but leaves chartsInScope as exported)."""
    metadata = json.loads(dashboard.json_metadata or "{}")
    chart_ids = sorted(chart.id for chart in dashboard.slices)
    for native_filter in metadata.get("native_filter_configuration", []):
        excluded = set(native_filter.get("scope", {}).get("excluded", []))
        native_filter["chartsInScope"] = [i for i in chart_ids if i not in excluded]
    dashboard.json_metadata = json.dumps(metadata)


def setup(args: argparse.Namespace) -> None:
    """Superset's metadata database from scratch, the admin user, the bundle imported."""
    db_path = published_path()
    contents = bundle_contents(db_path)   # before anything is deleted: fails on a bad tier
    check_port_free(*address())
    home = bi_home()
    home.mkdir(parents=True, exist_ok=True)
    for stale in ("superset.db", "superset.db-journal", "setup.log"):
        (home / stale).unlink(missing_ok=True)
    log = home / "setup.log"
    try:
        with output_to(log):
            _build_metadata(contents)
    except BiError:
        raise
    except Exception as exc:
        raise BiError(f"Superset set-up failed ({type(exc).__name__}: {str(exc)[:300]}); "
                      f"see {log}") from exc
    print(f"Superset metadata database built from scratch: {home / 'superset.db'}\n"
          f"  dashboard bundle  {BUNDLE_DIR.relative_to(PROJECT_DIR)}/ "
          f"({sum(n.startswith('charts/') for n in contents)} charts, "
          f"{sum(n.startswith('datasets/') for n in contents)} datasets)\n"
          f"  published tier    {db_path} (read-only)\n"
          f"  set-up log        {log}")


def _build_metadata(contents: dict[str, str]) -> None:
    app = _app()
    with app.app_context():
        from flask_migrate import upgrade
        import superset
        from superset import appbuilder, security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.extensions import db
        from superset.models.dashboard import Dashboard
        from superset.utils.core import override_user

        upgrade(directory=str(Path(superset.__file__).parent / "migrations"))
        appbuilder.add_permissions(update_perms=True)   # `superset init`
        security_manager.sync_role_definitions()
        secret, is_default = password()
        mark = bi_home() / DEFAULT_PASSWORD_MARK
        if is_default:
            mark.touch()
        else:
            mark.unlink(missing_ok=True)
        admin = security_manager.add_user(ADMIN_USER, "FLS-DB", "analyst", "admin@localhost",
                                          security_manager.find_role("Admin"), password=secret)
        if not admin:
            raise BiError("could not create the Superset user admin")
        with override_user(admin):
            ImportAssetsCommand(contents, overwrite=True).run()
        for dashboard in db.session.query(Dashboard).all():
            rescope_native_filters(dashboard)
        db.session.commit()


def serve(args: argparse.Namespace) -> None:
    host, port = address()
    _, is_default = password()
    # the password the metadata database holds is the one `setup` was given
    is_default = is_default or (bi_home() / DEFAULT_PASSWORD_MARK).exists()
    if is_default and not is_loopback(host):
        raise BiError(f"refusing to serve on {host}: without FLSDB_BI_PASSWORD the admin password "
                      f"is the documented local default, so Superset binds to loopback only",
                      EXIT_USAGE)
    check_port_free(host, port)
    if not (bi_home() / "superset.db").exists():
        raise BiError(f"no Superset metadata database in {bi_home()}: run the setup first (make bi)")
    superset_environment()
    shown = "localhost" if is_loopback(host) else host
    login = "the password in FLSDB_BI_PASSWORD" if not is_default else \
        f"password {DEFAULT_PASSWORD} (local default; set FLSDB_BI_PASSWORD to choose one)"
    # a SIGTERM (kill, a CI runner) stops gunicorn as Ctrl-C does
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"Starting Superset on {host}:{port} ...", flush=True)
    gunicorn = Path(sys.executable).with_name("gunicorn")
    log = open(bi_home() / "server.log", "ab")  # noqa: SIM115 (open while the server runs; closed below)
    server = subprocess.Popen([str(gunicorn), "--bind", f"{host}:{port}", "--workers", "1",
                               "--threads", "4", "--timeout", "120", "--graceful-timeout", "5",
                               "--access-logfile", str(bi_home() / "access.log"), "--log-level", "warning",
                               "superset.app:create_app()"], stdout=log, stderr=log)
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "localhost") else host
    health = f"http://{'[' + local + ']' if ':' in local else local}:{port}/health"
    try:
        deadline = time.monotonic() + 600
        while not healthy(health):
            if server.poll() is not None:
                raise BiError(f"Superset stopped while starting (exit {server.returncode}); "
                              f"see {bi_home() / 'server.log'}")
            if time.monotonic() > deadline:
                server.terminate()
                raise BiError(f"Superset did not answer within 10 minutes; see {bi_home() / 'server.log'}")
            time.sleep(1)
        print(f"\nSuperset is serving the FLS-DB dashboard over {published_path()}:\n"
              f"  http://{shown}:{port}/superset/dashboard/fls-db/\n"
              f"  log in as {ADMIN_USER}, {login}\n"
              f"  stop it with Ctrl-C\n", flush=True)
        server.wait()
    except KeyboardInterrupt:
        print("Stopping Superset ...", flush=True)
    finally:
        if server.poll() is None:   # Ctrl-C reaches gunicorn too; a SIGTERM to us does not
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        log.close()
    print("Superset stopped.")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except (OSError, ValueError):
        return False


def export(args: argparse.Namespace) -> None:
    """Write every database, dataset, chart and dashboard of the metadata database to bundle/
    (or --to), without the published file's path and the descriptions the dbt docs give."""
    db_path = published_path()
    docs = published_comments(db_path)
    home = bi_home()
    if not (home / "superset.db").exists():
        raise BiError(f"no Superset metadata database in {home}: run `make bi` first")
    try:
        with output_to(home / "export.log"):
            files = _export_files()
    except Exception as exc:
        raise BiError(f"Superset export failed ({type(exc).__name__}: {str(exc)[:300]}); "
                      f"see {home / 'export.log'}") from exc
    target = Path(args.to).resolve() if args.to else BUNDLE_DIR
    staging = target.with_name(f".{target.name}.export")
    shutil.rmtree(staging, ignore_errors=True)
    written = set()
    for name, text in sorted(files.items()):
        config = yaml.safe_load(text)
        if name.startswith("queries/"):
            continue   # SQL Lab's saved queries are not part of the dashboard
        if name.startswith("databases/"):
            config["sqlalchemy_uri"] = config["sqlalchemy_uri"].replace(str(db_path), PATH_TOKEN)
        elif name.startswith("datasets/"):
            table_description, columns = derived_descriptions(config, docs)
            if table_description and config.get("description") == table_description:
                config["description"] = None
            for column in config.get("columns", []):
                if column.get("description") and column["description"] == columns.get(column["column_name"]):
                    column["description"] = None
        elif name == "metadata.yaml":
            config.pop("timestamp", None)   # not needed to import; a new one each export
        elif name.startswith("charts/"):
            canonical_chart(config)
        elif name.startswith("dashboards/"):
            canonical_dashboard(config)
        # Superset names files <name>_<id>.yaml; ids change with every set-up, names do not.
        stable = re.sub(r"_\d+\.yaml$", ".yaml", name)
        name = stable if stable not in written else name
        written.add(name)
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.dump(config, Dumper=BundleDumper, sort_keys=False, allow_unicode=True,
                                  width=100), encoding="utf-8")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    print(f"Exported {len(written)} files to {target} (review with `git diff`)")


class BundleDumper(yaml.SafeDumper):
    """Multi-line text (a virtual dataset's SQL, a Markdown block) as a YAML block, readable."""


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


BundleDumper.add_representer(str, _text)


def canonical_chart(config: dict) -> None:
    """Without the ids of this metadata database (the importer sets them again): a re-export of
    an unchanged dashboard is byte for byte the bundle."""
    for key in ("slice_id", "datasource", "dashboards"):
        config["params"].pop(key, None)
    config["query_context"] = None   # saved by the chart editor, full of ids; not needed to render


def canonical_dashboard(config: dict) -> None:
    """Chart ids numbered 1, 2, ... in the order of the charts' uuids, everywhere they appear."""
    charts = [node for node in config["position"].values()
              if isinstance(node, dict) and node.get("type") == "CHART"]
    renumber = {node["meta"]["chartId"]: n
                for n, node in enumerate(sorted(charts, key=lambda node: node["meta"]["uuid"]), 1)}
    for node in charts:
        node["meta"]["chartId"] = renumber[node["meta"]["chartId"]]

    def ids(values):
        return sorted(renumber[v] for v in values if v in renumber)

    metadata = config.get("metadata", {})
    for item in [*metadata.get("native_filter_configuration", []),
                 metadata.get("global_chart_configuration") or {},
                 *(c.get("crossFilters") or {} for c in (metadata.get("chart_configuration") or {}).values())]:
        if "chartsInScope" in item:
            item["chartsInScope"] = ids(item["chartsInScope"])
        if item.get("scope", {}).get("excluded"):
            item["scope"]["excluded"] = ids(item["scope"]["excluded"])
    if metadata.get("chart_configuration"):
        metadata["chart_configuration"] = {
            str(renumber[int(k)]): {**v, "id": renumber[int(k)]}
            for k, v in metadata["chart_configuration"].items() if int(k) in renumber}
    for key in ("timed_refresh_immune_slices",):
        if metadata.get(key):
            metadata[key] = ids(metadata[key])


def _export_files() -> dict[str, str]:
    app = _app()
    with app.app_context():
        from superset import security_manager
        from superset.commands.export.assets import ExportAssetsCommand
        from superset.utils.core import override_user

        with override_user(security_manager.find_user(username=ADMIN_USER)):
            return {name: content() if callable(content) else content
                    for name, content in ExportAssetsCommand().run()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help=setup.__doc__).set_defaults(run=setup)
    commands.add_parser("serve", help="serve on FLSDB_BI_HOST:FLSDB_BI_PORT").set_defaults(run=serve)
    exporter = commands.add_parser("export", help=export.__doc__)
    exporter.add_argument("--to", help="folder to write [default: bi/superset/bundle]")
    exporter.set_defaults(run=export)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except BiError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
