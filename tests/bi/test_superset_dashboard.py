"""`make test-bi`: the shipped Superset dashboard over the published tier (issue 25, docs/bi.md).

Not part of `make test` (pytest's testpaths is tests/python): it installs .venv-bi, builds a small
published tier, starts Superset and opens the dashboard in headless Chromium (tests/bi/conftest.py).

- Every chart's query, exactly as the dashboard in the browser sent it, is sent again to
  `POST /api/v1/chart/data` and must return the numbers that DuckDB, reading the published file
  with SQL written here (not the datasets' SQL), gives.
- The dashboard renders every chart, none in an error state, and shows the national KPI 1 figure.
- A withheld (suppressed) cell appears as `withheld`, and as no number, in every table and chart.
- Datasets and columns carry the dbt docs (the published file's comments).
- Publishing again under the running server: the next query shows the new numbers.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import shutil
import subprocess
from pathlib import Path

import duckdb

from conftest import BI_PYTHON, BI_SCRIPT, bi_env, bundle_charts

ABOUT = "About this extract"
GLANCE = "Report at a glance: England and Wales"
GLANCE_BARS = "National KPIs: this year beside last year"
DEPRIVATION = "KPI 7 by deprivation quintile (England and Wales)"
SERVICES_BARS = "Services compared on the chosen KPI"
SERVICES_TABLE = "Services: funnel limits and outlier flags"
RUN_CHART = "Monthly run chart (SPC) for the chosen service and KPI"
RUN_TABLE = "Monthly values for the chosen service and KPI"
WITHHELD = "withheld"


# --- reading the published file ----------------------------------------------------------------

def query(db: Path, sql: str, params: list | None = None) -> list[dict]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cursor = con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def pct(value: float) -> str:
    return f"{value:.1f}%"


def epoch_ms(value) -> float:
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    else:
        moment = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    return moment.timestamp() * 1000


def same_number(got, expected) -> bool:
    if expected is None or got is None:
        return got is None and expected is None
    return math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9)


def outlier_flag(row: dict) -> str:
    if row["is_suppressed"]:
        return WITHHELD
    if row["funnel_lower_95_pct"] is None:
        return "not assessed"
    if row["is_outlier_alarm"]:
        return f"alarm (beyond 99.8%), {row['outlier_direction']}"
    if row["is_outlier_alert"]:
        return f"alert (beyond 95%), {row['outlier_direction']}"
    return "within limits"


def national(db: Path, year: int, breakdown: str = "all", kpi: int | None = None) -> list[dict]:
    return query(db, """
        select r.*, d.kpi_short_name from publication.published_kpi_results as r
        inner join publication.published_kpi_definitions as d using (kpi_number)
        where r.geography_level = 'national' and r.breakdown = ? and r.audit_year = ?
          and (? is null or r.kpi_number = ?)
        order by r.kpi_number, r.breakdown_value""", [breakdown, year, kpi, kpi])


def fls_results(db: Path, year: int, kpi: int) -> list[dict]:
    return query(db, """
        select r.*, f.fls_name, f.region_name from publication.published_kpi_results as r
        inner join publication.published_fls as f on r.geography_code = f.fls_code
        where r.geography_level = 'fls' and r.breakdown = 'all' and r.audit_year = ? and r.kpi_number = ?
        order by r.geography_code""", [year, kpi])


def fls_months(db: Path, fls: str, kpi: int) -> list[dict]:
    return query(db, """
        select * from publication.published_kpi_monthly
        where geography_level = 'fls' and geography_code = ? and kpi_number = ?
        order by month_start""", [fls, kpi])


# --- the dashboard's queries -------------------------------------------------------------------

def chart_names(api) -> dict[int, str]:
    answer = api.get(api.base + "/api/v1/chart/?q=(page_size:100)", timeout=60)
    assert answer.status_code == 200, answer.text
    return {c["id"]: c["slice_name"] for c in answer.json()["result"]}


def dashboard_queries(api, dashboard) -> dict[str, dict]:
    """{chart name: the chart-data request the dashboard sent for it}."""
    names = chart_names(api)
    return {names[body["form_data"]["slice_id"]]: body for body in dashboard["chart_data"]
            if body.get("form_data", {}).get("slice_id") in names}


def post_chart_data(api, body: dict) -> list[list[dict]]:
    answer = api.post(api.base + "/api/v1/chart/data", json=body, timeout=300)
    assert answer.status_code == 200, answer.text[:2000]
    return [result["data"] for result in answer.json()["result"]]


def filters(body: dict) -> dict[str, list]:
    return {f["col"]: f["val"] for f in body["queries"][0].get("filters", []) if f.get("op") == "IN"}


def chosen(body: dict) -> dict:
    """The native filters' values the dashboard applied: audit year, KPI, FLS."""
    values = filters(body)
    out = {}
    if "audit_year" in values:
        out["year"] = int(values["audit_year"][0])
    if "kpi_label" in values:
        out["kpi"] = int(re.match(r"KPI (\d+):", values["kpi_label"][0]).group(1))
    if "fls_label" in values:
        out["fls"] = values["fls_label"][0].split()[0]
    return out


# --- what DuckDB says each chart must show ------------------------------------------------------

def expect_about(db, body):
    info = query(db, "select * from publication.publication_info")[0]
    return [{"extract_date": epoch_ms(info["extract_date"]), "built_at": epoch_ms(info["built_at"]),
             "is_synthetic_data": info["is_synthetic_data"]}]


def expect_glance(db, body):
    year = chosen(body)["year"]
    last = {r["kpi_number"]: r for r in national(db, year - 1)}
    rows = []
    for r in national(db, year):
        before = last.get(r["kpi_number"])
        rows.append({
            "kpi_label": f"KPI {r['kpi_number']}: {r['kpi_short_name']}",
            "value_shown": WITHHELD if r["is_suppressed"] else pct(r["value_pct"]),
            "rating_shown": WITHHELD if r["is_suppressed"] else (r["rating"] or "not rated"),
            "target_shown": "no target" if r["target_pct"] is None else f"{r['target_pct']:.0f}%",
            "against_target": (WITHHELD if r["is_suppressed"] else "no target" if r["target_pct"] is None
                               else "target met" if r["value_pct"] >= r["target_pct"]
                               else f"{r['target_pct'] - r['value_pct']:.1f} points below"),
            "last_year_value_shown": ("no result" if before is None else WITHHELD if before["is_suppressed"]
                                      else pct(before["value_pct"])),
            "last_year_rating_shown": ("no result" if before is None else WITHHELD if before["is_suppressed"]
                                       else before["rating"] or "not rated"),
            "change_shown": (WITHHELD if r["is_suppressed"] or (before and before["is_suppressed"])
                             else "no result" if before is None
                             else f"{r['value_pct'] - before['value_pct']:+.1f}"),
        })
    return rows


def expect_glance_bars(db, body):
    year = chosen(body)["year"]
    last = {r["kpi_number"]: r["value_pct"] for r in national(db, year - 1)}
    return {r["kpi_number"]: {"This year (%)": r["value_pct"], "Last year (%)": last.get(r["kpi_number"])}
            for r in national(db, year)}


def expect_deprivation(db, body):
    return {r["breakdown_value"]: r for r in national(db, chosen(body)["year"], "deprivation_quintile", 7)}


def compare_rows(got: list[dict], expected: list[dict], name: str) -> None:
    assert len(got) == len(expected), (name, len(got), len(expected))
    for g, e in zip(got, expected):
        for column, value in e.items():
            if isinstance(value, float):
                assert same_number(g.get(column), value), (name, column, g, e)
            else:
                assert g.get(column) == value, (name, column, g, e)


def check_chart(name: str, db: Path, body: dict, results: list[list[dict]]) -> int:
    """Assert one chart's data against DuckDB; the number of withheld cells it shows."""
    data = results[0]
    if name == ABOUT:
        compare_rows(data, expect_about(db, body), name)
        return 0
    if name == GLANCE:
        expected = expect_glance(db, body)
        compare_rows(data, expected, name)
        return sum(r["value_shown"] == WITHHELD for r in expected)
    if name == GLANCE_BARS:
        expected = expect_glance_bars(db, body)
        assert len(data) == len(expected), (name, data)
        for row in data:
            kpi = int(re.match(r"KPI\s+(\d+):", row["kpi_axis_label"]).group(1))
            for metric, value in expected[kpi].items():
                assert same_number(row.get(metric), value), (name, kpi, metric, row, value)
        return sum(v["This year (%)"] is None for v in expected.values())
    if name == DEPRIVATION:
        expected = expect_deprivation(db, body)
        assert len(data) == len(expected), (name, data)
        for row in data:
            quintile = row["quintile_label"].split()[0]
            cell = expected[quintile]
            assert same_number(row.get("KPI 7 (%)"), cell["value_pct"]), (name, row, cell)
            assert row["quintile_label"].endswith("(withheld)") == cell["is_suppressed"], (name, row)
        return sum(c["is_suppressed"] for c in expected.values())
    if name in (SERVICES_BARS, SERVICES_TABLE):
        pick = chosen(body)
        expected = {r["geography_code"]: r for r in fls_results(db, pick["year"], pick["kpi"])}
        assert len(data) == len(expected), (name, len(data), len(expected))
        for row in data:
            if name == SERVICES_BARS:
                code = row["fls_code_shown"].split()[0]
                cell = expected[code]
                assert row["fls_code_shown"].endswith("(withheld)") == cell["is_suppressed"], (name, row)
                flag = outlier_flag(cell)
                for series, value in row.items():
                    if series != "fls_code_shown":
                        assert same_number(value, cell["value_pct"] if series == flag else None), (name, row, flag)
            else:
                code = row["fls_label"].split()[0]
                cell = expected[code]
                hidden = cell["is_suppressed"]
                assert row == {
                    "fls_label": f"{code} {cell['fls_name']}", "region_name": cell["region_name"],
                    "value_shown": WITHHELD if hidden else pct(cell["value_pct"]),
                    "denominator_shown": WITHHELD if hidden else f"{cell['denominator']:,.0f}",
                    "funnel_95_shown": (WITHHELD if hidden else "no funnel" if cell["funnel_lower_95_pct"] is None
                                        else f"{pct(cell['funnel_lower_95_pct'])} to {pct(cell['funnel_upper_95_pct'])}"),
                    "funnel_998_shown": (WITHHELD if hidden else "no funnel" if cell["funnel_lower_998_pct"] is None
                                         else f"{pct(cell['funnel_lower_998_pct'])} to {pct(cell['funnel_upper_998_pct'])}"),
                    "outlier_flag": outlier_flag(cell),
                    "rating_shown": WITHHELD if hidden else cell["rating"] or "not rated",
                }, (name, row, cell)
        return sum(c["is_suppressed"] for c in expected.values())
    if name in (RUN_CHART, RUN_TABLE):
        pick = chosen(body)
        months = {epoch_ms(m["month_start"]): m for m in fls_months(db, pick["fls"], pick["kpi"])}
        if name == RUN_TABLE:
            assert len(data) == len(months), (name, len(data), len(months))
            for row in data:
                m = months[row["month_start"]]
                lines_hidden = m["spc_lines_withheld"]
                # a withheld value or line says why: `withheld: <reason>` (docs/bi.md, "Monthly series")
                month_withheld = f"{WITHHELD}: {m['suppression_reason']}"
                lines_withheld = f"{WITHHELD}: {m['spc_lines_withheld_reason']}"
                assert row == {
                    "month_start": row["month_start"],
                    "value_shown": (month_withheld if m["is_suppressed"] else "no records" if m["value_pct"] is None
                                    else pct(m["value_pct"])),
                    "point_type_shown": (month_withheld if m["is_suppressed"] else "no point"
                                         if m["point_type"] is None else m["point_type"].replace("_", " ")),
                    "centre_shown": (lines_withheld if lines_hidden else "no chart" if m["centre_pct"] is None
                                     else pct(m["centre_pct"])),
                    "limits_shown": (lines_withheld if lines_hidden else "no chart" if m["lower_limit_pct"] is None
                                     else f"{pct(m['lower_limit_pct'])} to {pct(m['upper_limit_pct'])}"),
                }, (name, row, m)
            return sum(m["is_suppressed"] for m in months.values())
        lines = {"Value (%)": "value_pct", "Centre": "centre_pct", "Lower process limit": "lower_limit_pct",
                 "Upper process limit": "upper_limit_pct", "Target (%)": "target_pct"}
        points = {"Common cause": "common_cause", "Special cause: concern": "special_cause_concern",
                  "Special cause: improvement": "special_cause_improvement"}
        for result, series in ((results[0], lines), (results[1], points)):
            shown = {row["month_start"]: row for row in result}
            for month, m in months.items():
                if series is lines:
                    want = {label: m[column] for label, column in series.items()}
                else:
                    want = {label: m["value_pct"] if m["point_type"] == kind else None
                            for label, kind in series.items()}
                if all(v is None for v in want.values()):
                    assert month not in shown or all(shown[month].get(k) is None for k in want), (name, month)
                    continue
                assert month in shown, (name, month, want)
                for label, value in want.items():
                    assert same_number(shown[month].get(label), value), (name, month, label, shown[month], value)
            assert set(shown) <= set(months), (name, set(shown) - set(months))
        return sum(m["is_suppressed"] for m in months.values())
    raise AssertionError(f"no DuckDB check written for the chart {name!r}")


# --- the tests ---------------------------------------------------------------------------------

def test_dashboard_renders_every_chart_with_no_error_and_the_expected_figure(dashboard, published):
    charts = {c["name"]: c for c in dashboard["charts"]}
    assert set(charts) == set(bundle_charts()), set(charts) ^ set(bundle_charts())
    broken = [name for name, c in charts.items() if c["error"] or not c["drawn"] or c["loading"]]
    assert not broken, {name: charts[name]["text"][:500] for name in broken}
    # The national KPI 1 result (never suppressed: docs/specification/kpi-definitions.md exempts KPI 1) of the year shown.
    year = max(r["audit_year"] for r in query(published["db"], "select distinct audit_year from "
                                              "publication.published_kpi_results"))
    (kpi_1,) = national(published["db"], year, kpi=1)
    row = next(r for r in charts[GLANCE]["rows"] if r and r[0].startswith("KPI 1:"))
    assert row[1] == pct(kpi_1["value_pct"]), (row, kpi_1)
    assert dashboard["screenshot"].stat().st_size > 50_000
    print(f"screenshot: {dashboard['screenshot']}")


def test_every_chart_query_returns_the_numbers_duckdb_gives(api, dashboard, published):
    sent = dashboard_queries(api, dashboard)
    assert set(sent) == set(bundle_charts()), set(bundle_charts()) - set(sent)
    withheld = {name: check_chart(name, published["db"], body, post_chart_data(api, body))
                for name, body in sorted(sent.items())}
    # The small test tier withholds cells: the checks above have seen some.
    assert sum(withheld.values()) > 0, withheld
    print(f"withheld cells per chart: {withheld}")


def test_a_withheld_cell_is_shown_as_withheld_never_as_a_number(api, dashboard, published):
    """In the page as rendered: every cell suppressed in the published file reads `withheld` in
    every column of its table row; the bar charts' data hold no number for it (checked above)."""
    charts = {c["name"]: c for c in dashboard["charts"]}
    sent = dashboard_queries(api, dashboard)
    db = published["db"]
    number = re.compile(r"\d")
    seen = 0
    pick = chosen(sent[SERVICES_TABLE])
    hidden = {f"{r['geography_code']} {r['fls_name']}" for r in fls_results(db, pick["year"], pick["kpi"])
              if r["is_suppressed"]}
    for cells in charts[SERVICES_TABLE]["rows"]:
        if cells and cells[0] in hidden:
            seen += 1
            assert all(c == WITHHELD for c in cells[2:]), cells      # value .. rating
    year = chosen(sent[GLANCE])["year"]
    for r in national(db, year):
        if r["is_suppressed"]:
            cells = next(c for c in charts[GLANCE]["rows"] if c and c[0] == f"KPI {r['kpi_number']}: {r['kpi_short_name']}")
            seen += 1
            assert cells[1] == WITHHELD and cells[2] == WITHHELD and not number.search(cells[4]), cells
    pick = chosen(sent[RUN_TABLE])
    hidden_months = [m for m in fls_months(db, pick["fls"], pick["kpi"]) if m["is_suppressed"]]
    # value and point type of a withheld month read `withheld: <reason>` (docs/bi.md, "Monthly series")
    shown_withheld = [c for c in charts[RUN_TABLE]["rows"] if len(c) > 2 and c[1].startswith(WITHHELD)]
    assert sorted(c[1] for c in shown_withheld) == sorted(f"{WITHHELD}: {m['suppression_reason']}"
                                                          for m in hidden_months), shown_withheld
    seen += len(hidden_months)
    assert all(c[2] == c[1] and not number.search(c[1]) for c in shown_withheld), shown_withheld
    assert seen > 0, "the test tier shows no withheld cell: nothing was checked"


def test_datasets_and_columns_carry_the_dbt_docs(api, dashboard, published):
    comments = {}
    for r in query(published["db"], "select table_name, comment from duckdb_tables() where schema_name = 'publication'"):
        comments[r["table_name"]] = (r["comment"], {})
    for r in query(published["db"], "select table_name, column_name, comment from duckdb_columns() "
                                     "where schema_name = 'publication'"):
        comments[r["table_name"]][1][r["column_name"]] = r["comment"]
    answer = api.get(api.base + "/api/v1/dataset/?q=(page_size:100)", timeout=60)
    assert answer.status_code == 200, answer.text
    datasets = answer.json()["result"]
    assert {d["table_name"] for d in datasets} >= set(comments), set(comments) - {d["table_name"] for d in datasets}
    for listed in datasets:
        dataset = api.get(f"{api.base}/api/v1/dataset/{listed['id']}", timeout=60).json()["result"]
        assert dataset["description"], dataset["table_name"]
        sources = [dataset["table_name"]] if not dataset["sql"] else \
            list(dict.fromkeys(re.findall(r"publication\.(\w+)", dataset["sql"])))
        if not dataset["sql"]:
            assert dataset["description"] == comments[dataset["table_name"]][0]
            # every column of the published table, also one the bundle does not list yet
            assert {c["column_name"] for c in dataset["columns"]} == set(comments[dataset["table_name"]][1])
        for column in dataset["columns"]:
            assert column["description"], (dataset["table_name"], column["column_name"])
            documented = [comments[t][1][column["column_name"]] for t in sources
                          if column["column_name"] in comments.get(t, ("", {}))[1]]
            if documented:
                assert column["description"] == documented[0], (dataset["table_name"], column["column_name"])
    # and a BI user sees them: the table's column headers carry them as tooltips
    about = next(c for c in dashboard["charts"] if c["name"] == ABOUT)
    assert about["headers"]["extract_date"] == comments["publication_info"][1]["extract_date"]


def test_the_dashboard_requests_nothing_beyond_the_server(dashboard, superset):
    """Superset 6.1's page footer holds a usage pixel (apachesuperset.gateway.scarf.sh) that its
    configuration cannot turn off: our Content-Security-Policy (bi/superset/superset_config.py)
    blocks it in the browser, so nothing leaves the machine."""
    local = (superset["url"], "data:", "blob:", "about:")
    outside = [(url, blocked) for url, blocked in dashboard["urls"] if not url.startswith(local)]
    assert all(blocked == "csp" for _, blocked in outside), outside


def test_exporting_the_dashboard_gives_back_the_shipped_bundle(superset, tmp_path):
    """`flsdb_superset.py export` (docs/bi.md: how to change the dashboard) writes what it
    imported: the published file's path and the dbt docs taken out again, ids made canonical."""
    exported = tmp_path / "bundle"
    done = subprocess.run([str(BI_PYTHON), str(BI_SCRIPT), "export", "--to", str(exported)],
                          env=superset["env"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    shipped = BI_SCRIPT.parent / "bundle"
    names = sorted(p.relative_to(shipped).as_posix() for p in shipped.rglob("*.yaml"))
    assert sorted(p.relative_to(exported).as_posix() for p in exported.rglob("*.yaml")) == names
    for name in names:
        assert (exported / name).read_text() == (shipped / name).read_text(), name


def test_serve_refuses_to_bind_beyond_loopback_with_the_default_password(published, tmp_path):
    env = bi_env(tmp_path, published["db"], 8088)
    del env["FLSDB_BI_PASSWORD"]
    env["FLSDB_BI_HOST"] = "0.0.0.0"
    refused = subprocess.run([str(BI_PYTHON), str(BI_SCRIPT), "serve"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.startswith("Error: refusing to serve on 0.0.0.0"), refused.stderr
    assert "Traceback" not in refused.stderr
    # a password given now does not count when the metadata database was set up without one
    (tmp_path / "admin-has-the-default-password").touch()
    env["FLSDB_BI_PASSWORD"] = "chosen-later"
    refused = subprocess.run([str(BI_PYTHON), str(BI_SCRIPT), "serve"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.startswith("Error: refusing"), refused.stderr


def test_setup_without_a_published_tier_says_to_run_make_run(tmp_path):
    env = bi_env(tmp_path, tmp_path / "nothing" / "flsdb_published.duckdb", 8088)
    failed = subprocess.run([str(BI_PYTHON), str(BI_SCRIPT), "setup"], env=env, capture_output=True, text=True)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines() == [
        (f"Error: no published tier at {tmp_path / 'nothing' / 'flsdb_published.duckdb'}: run `make run` first "
         "(or set FLSDB_BI_PUBLISHED to a published flsdb_published.duckdb)")]
    assert not (tmp_path / "superset.db").exists()


def test_a_republication_under_the_running_server_is_seen_on_the_next_query(api, dashboard, published):
    """`flsdb publish` writes the new file beside the old one and renames it over it; Superset
    opens a connection per query (and caches nothing), so the next query reads the new file."""
    from flsdb.publish.marts import publish_marts

    body = dashboard_queries(api, dashboard)[GLANCE]
    year = chosen(body)["year"]
    before = next(r for r in post_chart_data(api, body)[0] if r["kpi_label"].startswith("KPI 1:"))
    (kpi_1,) = national(published["db"], year, kpi=1)
    assert before["value_shown"] == pct(kpi_1["value_pct"])
    changed = published["root"] / "changed.duckdb"
    shutil.copy2(published["source"], changed)
    con = duckdb.connect(str(changed))
    con.execute("update publication.published_kpi_results set value_pct = value_pct / 2 "
                "where geography_level = 'national' and breakdown = 'all' and kpi_number = 1 and audit_year = ?",
                [year])
    con.close()
    try:
        publish_marts(changed, published["output"])
        after = next(r for r in post_chart_data(api, body)[0] if r["kpi_label"].startswith("KPI 1:"))
        assert after["value_shown"] == pct(kpi_1["value_pct"] / 2), (before, after)
    finally:
        publish_marts(published["source"], published["output"])
    assert next(r for r in post_chart_data(api, body)[0]
                if r["kpi_label"].startswith("KPI 1:"))["value_shown"] == before["value_shown"]
