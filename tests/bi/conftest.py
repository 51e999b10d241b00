"""Fixtures of `make test-bi`: a published tier, Superset serving the shipped dashboard over it,
and the dashboard as headless Chromium renders it.

- The published tier: `flsdb run --scale 0.05` (2023 and 2024 at 5% of the national volume:
  small numbers, so that many cells are withheld) with every path in a temporary folder; or a
  copy of output/published/flsdb_published.duckdb when `make run` has written one with the dbt
  docs as comments (FLSDB_BI_TEST_PUBLISHED names another file). The tests never touch the
  original.
- Superset: `bi/superset/flsdb_superset.py setup` then `serve`, in .venv-bi, on a free port of
  127.0.0.1, with its state in the temporary folder.
- The dashboard: loaded once in headless Chromium, logged in with the session cookie; the page's
  text, its chart-data requests and a screenshot are kept for the tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
import requests
import yaml

from flsdb import paths

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cdp import Browser, chromium_path  # noqa: E402

BI_PYTHON = paths.PROJECT_DIR / ".venv-bi" / "bin" / "python"
BI_SCRIPT = paths.PROJECT_DIR / "bi" / "superset" / "flsdb_superset.py"
PASSWORD = "test-bi-password"
DASHBOARD = "/superset/dashboard/fls-db/"
#: Figures printed at the end of the session (the issue asks for them).
FIGURES: dict[str, str] = {}


def bundle_charts() -> dict[str, dict]:
    """{slice name: chart YAML} of the charts the shipped dashboard places."""
    bundle = BI_SCRIPT.parent / "bundle"
    charts = {c["uuid"]: c for c in (yaml.safe_load(p.read_text()) for p in (bundle / "charts").glob("*.yaml"))}
    placed = set()
    for path in (bundle / "dashboards").glob("*.yaml"):
        placed |= {node["meta"]["uuid"] for node in yaml.safe_load(path.read_text())["position"].values()
                   if isinstance(node, dict) and node.get("type") == "CHART"}
    return {charts[u]["slice_name"]: charts[u] for u in placed}


def has_comments(db_path: Path) -> bool:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        (undocumented,) = con.execute(
            "select count(*) from duckdb_columns() where schema_name = 'publication' "
            "and coalesce(comment, '') = ''").fetchone()
        (tables,) = con.execute("select count(*) from duckdb_tables() "
                                "where schema_name = 'publication'").fetchone()
    finally:
        con.close()
    return tables > 0 and undocumented == 0


def build_small_published_tier(root: Path) -> Path:
    env = dict(os.environ)
    env.update({
        "FLSDB_PROJECT_DIR": str(paths.PROJECT_DIR), "DBT_PROFILES_DIR": str(paths.PROJECT_DIR),
        "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "FLSDB_LANDING": str(root / "landing"), "FLSDB_WAREHOUSE": str(root / "warehouse" / "flsdb.duckdb"),
        "FLSDB_OUTPUT": str(root / "output"), "FLSDB_HISTORY": str(root / "history" / "flsdb_history.duckdb"),
        "DBT_TARGET_PATH": str(root / "target"), "DBT_LOG_PATH": str(root / "logs"),
    })
    flsdb = Path(sys.executable).with_name("flsdb")
    started = time.perf_counter()
    run = subprocess.run([str(flsdb), "run", "--scale", "0.05"], env=env, cwd=paths.PROJECT_DIR,
                         capture_output=True, text=True)
    assert run.returncode == 0, (run.stdout[-5000:], run.stderr[-5000:])
    FIGURES["published tier built (flsdb run --scale 0.05)"] = f"{time.perf_counter() - started:.0f} s"
    return root / "output" / "published" / "flsdb_published.duckdb"


@pytest.fixture(scope="session")
def published(tmp_path_factory) -> dict[str, Path]:
    """{'db': the published file Superset reads, 'output': its output folder, 'source': a copy to
    publish again from}."""
    root = tmp_path_factory.mktemp("bi")
    chosen = os.environ.get("FLSDB_BI_TEST_PUBLISHED")
    existing = Path(chosen) if chosen else paths.PROJECT_DIR / "output" / "published" / "flsdb_published.duckdb"
    output = root / "output"
    (output / "published").mkdir(parents=True)
    if existing.exists() and has_comments(existing):
        shutil.copy2(existing, output / "published" / existing.name)
        FIGURES["published tier"] = f"copy of {existing}"
    else:
        assert not chosen, f"{chosen}: not a published tier with the dbt docs as comments"
        built = build_small_published_tier(root / "pipeline")
        shutil.copy2(built, output / "published" / built.name)
        FIGURES["published tier"] = "flsdb run --scale 0.05 (2023, 2024)"
    db = output / "published" / "flsdb_published.duckdb"
    source = root / "source.duckdb"
    shutil.copy2(db, source)
    return {"db": db, "output": output, "source": source, "root": root}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def bi_env(home: Path, db: Path, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"FLSDB_BI_HOME": str(home), "FLSDB_BI_PUBLISHED": str(db),
                "FLSDB_BI_PORT": str(port), "FLSDB_BI_HOST": "127.0.0.1",
                "FLSDB_BI_PASSWORD": PASSWORD})
    return env


def rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) if found else 0


def process_tree(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return [pid, *[p for child in children for p in process_tree(child)]]


@pytest.fixture(scope="session")
def superset(published, tmp_path_factory):
    if not BI_PYTHON.exists():
        pytest.fail(f"{BI_PYTHON} not found: `make test-bi` installs .venv-bi from requirements-bi.lock")
    home = tmp_path_factory.mktemp("bi-home")
    port = free_port()
    env = bi_env(home, published["db"], port)
    started = time.perf_counter()
    setup = subprocess.run([str(BI_PYTHON), str(BI_SCRIPT), "setup"], env=env, capture_output=True,
                           text=True, timeout=900)
    assert setup.returncode == 0, (setup.stdout[-3000:], setup.stderr[-3000:],
                                   (home / "setup.log").read_text()[-5000:] if (home / "setup.log").exists() else "")
    FIGURES["Superset set-up (metadata DB from scratch + import)"] = f"{time.perf_counter() - started:.0f} s"
    started = time.perf_counter()
    log = open(home / "serve.log", "w")
    server = subprocess.Popen([str(BI_PYTHON), str(BI_SCRIPT), "serve"], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, (home / "serve.log").read_text()[-5000:]
            try:
                if requests.get(url + "/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (home / "serve.log").read_text()[-5000:]
            time.sleep(1)
        FIGURES["Superset server up"] = f"{time.perf_counter() - started:.0f} s"
        yield {"url": url, "home": home, "env": env, "pid": server.pid}
    finally:
        tree = process_tree(server.pid)
        gunicorn = [p for p in tree if b"gunicorn" in Path(f"/proc/{p}/cmdline").read_bytes()]
        FIGURES["RSS of Superset (gunicorn master + worker)"] = \
            " + ".join(f"{rss_kb(p) / 1024:.0f}" for p in gunicorn) + \
            f" = {sum(rss_kb(p) for p in gunicorn) / 1024:.0f} MB; the serve wrapper " \
            f"{sum(rss_kb(p) for p in tree if p not in gunicorn) / 1024:.0f} MB"
        os.killpg(server.pid, signal.SIGTERM)   # the session this fixture started, and only it
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture(scope="session")
def api(superset) -> requests.Session:
    """A requests session logged in to Superset's API (JWT)."""
    session = requests.Session()
    login = session.post(superset["url"] + "/api/v1/security/login", timeout=60,
                         json={"username": "admin", "password": PASSWORD, "provider": "db", "refresh": False})
    assert login.status_code == 200, login.text
    session.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
    session.base = superset["url"]
    return session


def session_cookie(url: str) -> str:
    """Log in through Superset's login form; its session cookie."""
    session = requests.Session()
    page = session.get(url + "/login/", timeout=60).text
    token = re.search(r'name="csrf_token"[^>]*?value="([^"]+)"', page, re.S)
    assert token, "no CSRF token on the login page"
    answer = session.post(url + "/login/", allow_redirects=False, timeout=60,
                          data={"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)})
    assert answer.status_code in (302, 303) and "session" in session.cookies, answer.text[:500]
    return session.cookies["session"]


#: Per chart holder of the dashboard: its title, viz type, whether it shows an error, whether it
#: drew something (a canvas, or table rows), its text, and its table headers' tooltips.
CHARTS_JS = """
Array.from(document.querySelectorAll('[data-test="chart-grid-component"]')).map(chart => ({
  name: chart.getAttribute('data-test-chart-name'),
  viz: chart.getAttribute('data-test-viz-type'),
  error: chart.querySelectorAll('[role="alert"], .ant-alert-error').length > 0,
  loading: chart.querySelectorAll('[data-test="loading-indicator"], .loading').length > 0,
  drawn: chart.querySelectorAll('canvas').length + chart.querySelectorAll('tbody tr').length,
  text: chart.innerText,
  rows: Array.from(chart.querySelectorAll('tbody tr')).map(tr =>
      Array.from(tr.querySelectorAll('td')).map(td => td.innerText.trim())),
  headers: Object.fromEntries(Array.from(chart.querySelectorAll('th[id^="header-"]')).map(th =>
      [th.id.slice(7), th.getAttribute('title') || ''])),
}))
"""


@pytest.fixture(scope="session")
def dashboard(superset, published):
    """The dashboard as headless Chromium renders it."""
    if not chromium_path():
        pytest.fail("chromium is not installed (`make browser` installs Debian's chromium as root)")
    url = superset["url"]
    cookie = session_cookie(url)
    browser = Browser(1600, 3400)
    try:
        browser.set_cookie(url + "/", "session", cookie)
        started = time.perf_counter()
        browser.goto(url + DASHBOARD)
        expected = len(bundle_charts())
        charts = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            charts = browser.evaluate(CHARTS_JS) or []
            settled = charts and all(c["error"] or (c["drawn"] and not c["loading"]) for c in charts)
            if settled and len(charts) >= expected:
                break
            time.sleep(2)
        time.sleep(2)   # the last canvas paints
        charts = browser.evaluate(CHARTS_JS)
        FIGURES["dashboard rendered in Chromium (after login)"] = f"{time.perf_counter() - started:.0f} s"
        screenshot = published["root"] / "dashboard.png"
        browser.screenshot(screenshot, full_page=False)
        if os.environ.get("FLSDB_BI_SCREENSHOT"):
            shutil.copy2(screenshot, os.environ["FLSDB_BI_SCREENSHOT"])
        requested = browser.requests("")
        blocked = {e["params"]["requestId"]: e["params"].get("blockedReason")
                   for e in browser.events if e.get("method") == "Network.loadingFailed"}
        yield {"charts": charts, "screenshot": screenshot,
               "urls": [(e["params"]["request"]["url"], blocked.get(e["params"]["requestId"]))
                        for e in browser.events if e.get("method") == "Network.requestWillBeSent"],
               "chart_data": [json.loads(r["postData"]) for r in requested
                              if "/api/v1/chart/data" in r["url"] and r.get("postData")]}
    finally:
        browser.close()


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("make test-bi: figures")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")
