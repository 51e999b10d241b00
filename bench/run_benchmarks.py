"""The flsdb benchmark harness (`make bench`): wall time and peak memory per pipeline stage.

Not a test: it prints a table and writes bench/results/<timestamp>.json (and, with
--write-summary, bench/results/latest.md) so that runs can be compared.

    .venv/bin/python bench/run_benchmarks.py [--scales 1,10,100] [--repeats 3] [--work DIR]
                                             [--incremental] [--monthly-cycle] [--write-summary]

For each scale S (S x one national year, audit year 2024: 1x is about 83,500 records) it uses a
separate folder <work>/x<S>/ holding the landing set and the warehouse, and runs, each in a child
process:

  generate   flsdb.synthetic.generate(years=[2024], scale=S, seed=20240101) -- cached: the landing
             set is reused when it exists (its generation figures are then those recorded then)
  load       flsdb.ingest.load_landing into a fresh warehouse
  dbt build  `flsdb build --full`, the production build: seeds, models and data tests (unit
             tests are for `make test` and CI, issue 21); split into models and tests from
             run_results.json (wall-clock union of the nodes' execution intervals; `overhead` is
             start-up, parsing and everything between nodes)
  baseline   bench/baseline_kpis.sql, one hand-written DuckDB query from the raw table (median of
             --baseline-runs runs in one process); checked row for row against marts.kpi_results
             (national and FLS, breakdown 'all', numerator and denominator to 1e-9)
  validate   `flsdb validate` and `flsdb report`, when the installed CLI has them ("n/a" if not)
  nothing new  (issue 21) `flsdb build` again on that warehouse (skipped when nothing changed), the
             baseline query as a whole process (start-up, connect, one run) that it and the full
             build are compared with, run by run (medians of the paired ratios, wall and CPU),
             `flsdb report` again, and the size of the report site

Peak memory is the largest sum of RSS over the whole process tree of the stage (polled from /proc
every 50 ms). Each repeat starts from a fresh warehouse; medians are reported. The machine's load
average is recorded at each stage, because other work on the machine moves wall times.

--incremental (1x only): splits the 1x landing set into the records fractured before December
2024 and a "new month" (the December records, about 7,000), builds the first, then loads the month
and times `dbt build` again; compares with a full rebuild of the same data and checks that both
give identical marts.kpi_results.

--monthly-cycle (1x only; issue 14 part 6): the same split, through the CLI. Last month's state is
the base landing set loaded, built, validated, published and reported. Then, timed per step: the
month arrives and `flsdb refresh` (load, data-only build, validate, publish, report;
or the steps of --cycle-refresh), against a full rebuild of the same landing set (`flsdb build
--full-refresh`, validate, publish, report) on the same warehouse path and dbt target folder.
Prints the share (refresh / full rebuild, wall and CPU; target 30%) and checks that both give
identical marts.kpi_results. With --write-summary its section of bench/results/latest.md is
replaced (the other figures are kept when only the cycle ran).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RESULTS = PROJECT / "bench" / "results"
BASELINE_SQL = PROJECT / "bench" / "baseline_kpis.sql"
NATIONAL_YEAR = 2024
SEED = 20240101
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------- process-tree memory sampling

def _tree_rss(root: int) -> int:
    """Sum of RSS (bytes) of `root` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{entry.name}/statm", "rb") as f:
                resident = int(f.read().split()[1]) * PAGE
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        pid = int(entry.name)
        children.setdefault(ppid, []).append(pid)
        rss[pid] = resident
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def run_stage(cmd: list[str], env: dict | None = None, cwd: Path = PROJECT,
              log: Path | None = None) -> dict:
    """Run one stage as a child process; wall seconds, peak tree RSS (MiB), return code."""
    load_before = os.getloadavg()[0]
    out = open(log, "w") if log else subprocess.DEVNULL
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = rc = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    done.set()
    sampler.join()
    if log:
        out.close()
    # CPU seconds of the stage's whole tree (waited-for descendants included): steadier than wall
    # time when other work shares the machine.
    cpu = usage.ru_utime + usage.ru_stime
    return {"seconds": wall, "cpu_s": cpu, "peak_mib": peak / 2**20, "rc": rc, "load_avg": load_before}


# ---------------------------------------------------------------- environment and stages

def stage_env(warehouse: Path, landing: Path, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update({
        "DBT_PROFILES_DIR": str(PROJECT),
        "FLSDB_PROJECT_DIR": str(PROJECT),
        "FLSDB_WAREHOUSE": str(warehouse),
        "FLSDB_LANDING": str(landing),
        "FLSDB_POSTCODE_LOOKUP": str(landing / "_reference" / "synthetic_nspl_postcode_lookup.csv"),
        # `flsdb publish` appends to the extract history: the bench's, not the project's
        "FLSDB_HISTORY": str(warehouse.parent / "history.duckdb"),
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYTHONWARNINGS": "ignore",
    })
    env.update(extra or {})
    return env


GENERATE = ("import sys; from flsdb.synthetic import generate; "
            "print(generate(years=[{year}], scale=float(sys.argv[1]), out_dir=sys.argv[2], seed={seed}))")
LOAD = ("import sys; from flsdb.ingest import load_landing; "
        "r = load_landing(sys.argv[1], sys.argv[2], progress=False); "
        "print(r.rows_read, r.rows_accepted, r.rows_rejected)")
BASELINE = r"""
import json, sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
sql = open(sys.argv[2]).read()
times = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    rows = con.execute(sql).fetchall()
    times.append(time.perf_counter() - t)
marts = con.execute(
    "select audit_year, geography_level, geography_code, kpi_number, numerator, denominator "
    "from marts.kpi_results where breakdown = 'all' and geography_level in ('national', 'fls')"
).fetchall()
b = {r[:4]: r[4:] for r in rows}
m = {r[:4]: r[4:] for r in marts}
def differs(x, y):
    return abs((x or 0) - (y or 0)) > 1e-9 * max(1.0, abs(y or 0))
bad = sorted(set(b) ^ set(m)) + [k for k in b if k in m and any(map(differs, b[k], m[k]))]
print(json.dumps({"times": times, "rows": len(rows), "mismatches": len(bad),
                  "examples": [str(k) for k in bad[:5]]}))
"""


def dbt_cmd(args: list[str], target: Path) -> list[str]:
    return [str(BIN / "dbt"), *args, "--project-dir", str(PROJECT), "--target-path", str(target)]


def _union_seconds(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def split_run_results(target: Path) -> dict:
    """Models vs tests wall time from run_results.json (union of execution intervals)."""
    results = json.loads((target / "run_results.json").read_text())
    groups: dict[str, list[tuple[float, float]]] = {"models": [], "tests": []}
    per_model = {}
    for r in results["results"]:
        kind = r["unique_id"].split(".")[0]
        group = "models" if kind in ("model", "seed", "snapshot") else "tests" if "test" in kind else None
        spans = [t for t in r.get("timing", []) if t.get("started_at") and t.get("completed_at")]
        if group and spans:
            start = min(dt.datetime.fromisoformat(t["started_at"].rstrip("Z")) for t in spans)
            end = max(dt.datetime.fromisoformat(t["completed_at"].rstrip("Z")) for t in spans)
            groups[group].append((start.timestamp(), end.timestamp()))
        if kind == "model":
            per_model[r["unique_id"].split(".")[-1]] = round(r["execution_time"], 3)
    return {"models_s": _union_seconds(groups["models"]), "tests_s": _union_seconds(groups["tests"]),
            "dbt_elapsed_s": results["elapsed_time"], "per_model_s": per_model,
            "nodes": len(results["results"]),
            "failures": [r["unique_id"] for r in results["results"]
                         if r["status"] not in ("success", "pass", "no-op")]}


def cli_commands() -> set[str]:
    out = subprocess.run([str(BIN / "flsdb"), "--help"], capture_output=True, text=True).stdout
    names, in_commands = set(), False
    for line in out.splitlines():
        if line.strip().lower().startswith("commands"):
            in_commands = True
        elif in_commands and line.startswith("  ") and line.strip():
            names.add(line.split()[0])
    return names


# ---------------------------------------------------------------- one scale

def ensure_landing(folder: Path, scale: float, log_dir: Path) -> dict:
    landing = folder / "landing"
    marker = folder / "generate.json"
    if marker.exists() and landing.exists():
        cached = json.loads(marker.read_text())
        if cached.get("scale") == scale and cached.get("seed") == SEED:
            return {**cached["result"], "cached": True}
    if landing.exists():
        shutil.rmtree(landing)
    r = run_stage([sys.executable, "-c", GENERATE.format(year=NATIONAL_YEAR, seed=SEED), str(scale),
                   str(landing)], env=stage_env(folder / "unused.duckdb", landing),
                  log=log_dir / "generate.log")
    if r["rc"]:
        raise SystemExit(f"generate x{scale:g} failed; see {log_dir / 'generate.log'}")
    marker.write_text(json.dumps({"scale": scale, "seed": SEED, "result": r}))
    return {**r, "cached": False}


def run_scale(scale: float, work: Path, repeats: int, baseline_runs: int, commands: set[str],
              dbt_args: list[str]) -> dict:
    folder = work / f"x{scale:g}"
    folder.mkdir(parents=True, exist_ok=True)
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    print(f"\n[x{scale:g}] work folder {folder}", flush=True)
    gen = ensure_landing(folder, scale, logs)
    print(f"[x{scale:g}] generate {gen['seconds']:.1f}s, peak {gen['peak_mib']:.0f} MiB"
          f"{' (cached figures)' if gen['cached'] else ''}", flush=True)
    landing = folder / "landing"
    warehouse = folder / "warehouse.duckdb"
    target = folder / "target"
    env = stage_env(warehouse, landing, {"FLSDB_OUTPUT": str(folder / "output"),
                                         "DBT_TARGET_PATH": str(target)})
    runs = []
    for i in range(repeats):
        for p in (warehouse, Path(str(warehouse) + ".wal")):
            p.unlink(missing_ok=True)
        run: dict = {}
        run["load"] = run_stage([sys.executable, "-c", LOAD, str(landing), str(warehouse)], env=env,
                                log=logs / "load.log")
        # the production build (issue 21: no unit tests; --full: built even if a record matched)
        run["dbt_build"] = run_stage([str(BIN / "flsdb"), "build", "--full", *dbt_args], env=env,
                                     log=logs / "dbt_build.log")
        if run["dbt_build"]["rc"] == 0 or (target / "run_results.json").exists():
            run["dbt_build"].update(split_run_results(target))
        b = run_stage([sys.executable, "-c", BASELINE, str(warehouse), str(BASELINE_SQL),
                       str(baseline_runs)], env=env, log=logs / "baseline.log")
        try:
            lines = (logs / "baseline.log").read_text().strip().splitlines()
            b.update(json.loads(lines[-1]))
            b["query_s"] = statistics.median(b["times"])
        except (ValueError, IndexError):
            b["error"] = "baseline failed; see baseline.log"
        run["baseline"] = b
        run["validate"] = run["report"] = None
        if "validate" in commands:
            run["validate"] = run_stage([str(BIN / "flsdb"), "validate", "--run-results",
                                         str(target / "run_results.json")], env=env,
                                        log=logs / "validate.log")
        if "report" in commands:
            # the report reads the published marts: sign off and publish (when the CLI has them),
            # then report. The bench's data is synthetic; the sign-off is the harness's.
            steps = [APPROVE] if "approve" in commands else []
            steps += [["publish"]] if "publish" in commands else []
            parts = [run_stage([str(BIN / "flsdb"), *step], env=env, log=logs / f"{step[0]}.log")
                     for step in steps + [["report"]]]
            run["report"] = {"seconds": sum(p["seconds"] for p in parts),
                             "cpu_s": sum(p["cpu_s"] for p in parts),
                             "peak_mib": max(p["peak_mib"] for p in parts),
                             "rc": max(p["rc"] for p in parts), "load_avg": parts[0]["load_avg"]}
        nothing_new(run, env, warehouse, folder, logs, commands, baseline_runs)
        runs.append(run)
        d = run["dbt_build"]
        print(f"[x{scale:g}] run {i + 1}/{repeats}: load {run['load']['seconds']:.1f}s, dbt build "
              f"{d['seconds']:.1f}s (models {d.get('models_s', float('nan')):.1f}s, tests "
              f"{d.get('tests_s', float('nan')):.1f}s, rc {d['rc']}), baseline "
              f"{b.get('query_s', float('nan')):.2f}s ({b.get('mismatches', '?')} mismatches), "
              f"load avg {d['load_avg']:.1f}", flush=True)
        a = run["build_again"]
        print(f"[x{scale:g}] run {i + 1}/{repeats}: nothing new: `flsdb build` {a['seconds']:.1f}s "
              f"(CPU {a['cpu_s']:.1f}s, {'skipped' if a['skipped'] else 'NOT skipped'}), baseline "
              f"process {run['baseline_process']['seconds']:.1f}s (CPU "
              f"{run['baseline_process']['cpu_s']:.1f}s), report again "
              f"{fmt((run.get('report_again') or {}).get('seconds'))}s; load avg {a['load_avg']:.1f}",
              flush=True)
    return {"scale": scale, "records": round(83_500 * scale), "generate": gen, "runs": runs,
            "summary": summarise(gen, runs)}


def nothing_new(run: dict, env: dict, warehouse: Path, folder: Path, logs: Path, commands: set[str],
                baseline_runs: int) -> None:
    """Issue 21: on the warehouse just built, validated, published and reported, with nothing new:
    `flsdb build` again (skipped when its record matches), the baseline query as a whole process
    (Python start-up, connect, one query: what `flsdb build` is compared with), `flsdb report`
    again, and the site's size."""
    run["build_again"] = run_stage([str(BIN / "flsdb"), "build"], env=env, log=logs / "build_again.log")
    run["build_again"]["skipped"] = "skipped; --full to force" in (logs / "build_again.log").read_text()
    run["baseline_process"] = run_stage([sys.executable, "-c", BASELINE, str(warehouse), str(BASELINE_SQL),
                                         "1"], env=env, log=logs / "baseline_process.log")
    run["report_again"] = None
    if "report" in commands:
        run["report_again"] = run_stage([str(BIN / "flsdb"), "report"], env=env, log=logs / "report_again.log")
    site = folder / "output" / "site"
    run["site_mib"] = (sum(p.stat().st_size for p in site.rglob("*") if p.is_file()) / 2**20
                       if site.is_dir() else None)


def _median(runs: list[dict], stage: str, key: str):
    values = [r[stage][key] for r in runs if r.get(stage) and r[stage].get(key) is not None]
    return statistics.median(values) if values else None


def summarise(gen: dict, runs: list[dict]) -> dict:
    s = {"generate": {"seconds": gen["seconds"], "peak_mib": gen["peak_mib"]}}
    for stage in ("load", "dbt_build", "baseline", "validate", "report", "build_again",
                  "baseline_process", "report_again"):
        if any(r.get(stage) for r in runs):
            s[stage] = {k: _median(runs, stage, k) for k in ("seconds", "cpu_s", "peak_mib", "load_avg")}
            s[stage]["rc"] = max(r[stage]["rc"] for r in runs if r.get(stage))
        else:
            s[stage] = None
    for k in ("models_s", "tests_s", "dbt_elapsed_s"):
        s["dbt_build"][k] = _median(runs, "dbt_build", k)
    s["dbt_build"]["failures"] = sorted({f for r in runs for f in r["dbt_build"].get("failures", [])})
    s["baseline"]["query_s"] = _median(runs, "baseline", "query_s")
    s["baseline"]["mismatches"] = max(r["baseline"].get("mismatches", -1) for r in runs)
    if s["baseline"]["query_s"]:
        s["ratio_models_to_baseline"] = s["dbt_build"]["models_s"] / s["baseline"]["query_s"]
    # issue 21's "Done when", each run paired with its own baseline process, then the median
    def paired(stage: str, key: str) -> float | None:
        values = [r[stage][key] / r["baseline_process"][key] for r in runs
                  if r.get(stage) and r.get("baseline_process") and r["baseline_process"][key]]
        return statistics.median(values) if values else None
    s["ratio_nothing_new"] = {k: paired("build_again", k) for k in ("seconds", "cpu_s")}
    s["ratio_full_rebuild"] = {k: paired("dbt_build", k) for k in ("seconds", "cpu_s")}
    s["nothing_new_skipped"] = all(r["build_again"]["skipped"] for r in runs)
    sizes = [r["site_mib"] for r in runs if r.get("site_mib") is not None]
    s["site_mib"] = statistics.median(sizes) if sizes else None
    pipeline = [s[k]["seconds"] for k in ("generate", "load", "dbt_build") if s.get(k)]
    s["pipeline_s"] = sum(pipeline)
    s["pipeline_peak_mib"] = max(s[k]["peak_mib"] for k in ("generate", "load", "dbt_build",
                                                              "validate", "report") if s.get(k))
    return s


# ---------------------------------------------------------------- incremental: one new month

def _fracture_month(line: bytes, column: int) -> str | None:
    try:
        row = next(csv.reader(io.StringIO(line.decode("latin-1"))))
        value = row[column].strip()
    except (StopIteration, IndexError):
        return None
    if len(value) == 10 and value[4] == "-":
        return value[:7]
    if len(value) == 10 and value[2] == "/":
        return f"{value[6:]}-{value[3:5]}"
    return None


def split_month(landing: Path, base: Path, month: Path, which: str = f"{NATIONAL_YEAR}-12") -> int:
    """Copy `landing` to `base` without the rows fractured in month `which`; those rows go to
    `month` (one extra file per source file, same header). Returns the number of rows moved."""
    for folder in (base, month):
        if folder.exists():
            shutil.rmtree(folder)
    shutil.copytree(landing / "_reference", base / "_reference")
    moved = 0
    for path in sorted(landing.rglob("*.csv")):
        rel = path.relative_to(landing)
        if rel.parts[0] == "_reference":
            continue
        lines = path.read_bytes().splitlines(keepends=True)
        header = lines[0]
        names = next(csv.reader(io.StringIO(header.decode("latin-1").lstrip("\ufeff").lstrip("ï»¿"))))
        column = [n.strip() for n in names].index("1.09 Date Index Frac Diagnosed")
        keep, new = [header], [header]
        for line in lines[1:]:
            (new if _fracture_month(line, column) == which else keep).append(line)
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_bytes(b"".join(keep))
        if len(new) > 1:
            target = month / rel.with_name(rel.stem + f"_new_{which}.csv")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"".join(new))
            moved += len(new) - 1
    return moved


KPI_ROWS = ("select * exclude (is_synthetic_data) from marts.kpi_results "
            "order by audit_year, geography_level, geography_code, kpi_number, breakdown, breakdown_value")


def kpi_rows(warehouse: Path) -> list:
    import duckdb
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(KPI_ROWS).fetchall()
    finally:
        con.close()


def same_rows(a: list, b: list) -> bool:
    """Row for row equal; doubles to 1e-12 relative (see compare_kpi_results.py: sums of doubles
    can differ in the last bit between two builds of the same data)."""
    def same(x, y) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-12)
        return x == y
    return len(a) == len(b) and all(len(r) == len(q) and all(map(same, r, q)) for r, q in zip(a, b))


REBUILDS = {
    # everything, as `make run` does
    "dbt build": ["build"],
    # only what new submissions can change: models and data tests downstream of the raw
    # submissions (unit tests, seeds and reference data cannot change when only data arrives)
    "dbt build, data-dependent nodes": ["build", "--select", "source:fls_db+",
                                        "--exclude-resource-type", "unit_test"],
}


def run_incremental(work: Path, repeats: int, dbt_args: list[str]) -> dict:
    folder = work / "x1"
    logs = folder / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ensure_landing(folder, 1.0, logs)
    inc = work / "incremental"
    inc.mkdir(parents=True, exist_ok=True)
    base, month = inc / "landing", inc / "month"
    moved = split_month(folder / "landing", base, month)
    built = inc / "base.duckdb"
    target = inc / "target"
    env = stage_env(built, base)
    built.unlink(missing_ok=True)
    run_stage([sys.executable, "-c", LOAD, str(base), str(built)], env=env, log=inc / "load_base.log")
    first = run_stage(dbt_cmd(["build", *dbt_args], target), env=env, log=inc / "build_base.log")
    if first["rc"]:
        raise SystemExit(f"incremental: base build failed; see {inc / 'build_base.log'}")
    # the month arrives: its files join the landing folder
    landing_all = inc / "landing_all"
    if landing_all.exists():
        shutil.rmtree(landing_all)
    shutil.copytree(base, landing_all)
    shutil.copytree(month, landing_all, dirs_exist_ok=True)
    w = inc / "warehouse.duckdb"
    e = stage_env(w, landing_all)
    out: dict = {"new_rows": moved, "dbt_args": dbt_args, "rebuilds": {}, "full": []}
    for i in range(repeats):
        for name, args in REBUILDS.items():
            shutil.copyfile(built, w)
            ld = run_stage([sys.executable, "-c", LOAD, str(landing_all), str(w)], env=e,
                           log=inc / "load_month.log")
            b = run_stage(dbt_cmd([*args, *dbt_args], target), env=e, log=inc / "build_month.log")
            b.update(split_run_results(target))
            rows = kpi_rows(w)
            f = run_stage(dbt_cmd(["build", "--full-refresh", *dbt_args], target), env=e,
                          log=inc / "build_full.log")
            f.update(split_run_results(target))
            b["identical_to_full_refresh"] = same = same_rows(rows, kpi_rows(w))
            b["rc"] = max(b["rc"], f["rc"])
            out["rebuilds"].setdefault(name, []).append({"load": ld, "build": b})
            out["full"].append(f)
            print(f"[incremental] run {i + 1}/{repeats}: {moved:,} new rows; load {ld['seconds']:.1f}s; "
                  f"{name}: {b['seconds']:.1f}s (CPU {b['cpu_s']:.1f}s) vs full rebuild "
                  f"{f['seconds']:.1f}s (CPU {f['cpu_s']:.1f}s); kpi_results identical: {same}; "
                  f"load avg {b['load_avg']:.1f}", flush=True)
    out["full_rebuild_s"] = statistics.median(f["seconds"] for f in out["full"])
    out["full_rebuild_cpu_s"] = statistics.median(f["cpu_s"] for f in out["full"])
    out["load_month_s"] = statistics.median(r["load"]["seconds"] for v in out["rebuilds"].values()
                                            for r in v)
    out["summary"] = {}
    for name, runs in out["rebuilds"].items():
        secs = statistics.median(r["build"]["seconds"] for r in runs)
        cpu = statistics.median(r["build"]["cpu_s"] for r in runs)
        out["summary"][name] = {
            "seconds": secs, "cpu_s": cpu, "ratio": secs / out["full_rebuild_s"],
            "cpu_ratio": cpu / out["full_rebuild_cpu_s"],
            "identical": all(r["build"]["identical_to_full_refresh"] for r in runs)}
    return out


# ---------------------------------------------------------------- the monthly cycle (issue 14 part 6)

#: the refresh `--monthly-cycle` times after one new month, through the CLI; the recommended
#: monthly command (README, "New submissions: what a rebuild redoes")
CYCLE_REFRESH = ["refresh"]
#: The sign-off `flsdb publish` needs (the bench's data is synthetic: the harness signs it off).
APPROVE = ["approve", "--reviewer", "benchmark harness (synthetic data)", "--yes"]
#: the full rebuild of the same landing set it is compared with
CYCLE_FULL = ["build", "--full-refresh"]


def _validate_steps(log: Path) -> dict:
    """Seconds per `flsdb validate` step, from its progress lines `[validate   1.2s] step`."""
    marks = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("[validate") and "s]" in line:
            head, _, name = line.partition("s] ")
            try:
                marks.append((float(head.split()[-1]), name.split(" (")[0].split(":")[0][:40]))
            except ValueError:
                continue
    return {name: round(marks[i + 1][0] - at, 2) for i, (at, name) in enumerate(marks[:-1])}


def _cycle(steps: list[list[str]], env: dict, target: Path, logs: Path, tag: str) -> dict:
    """Run CLI steps one after another (each a child process); wall/CPU per step and in total."""
    out: dict = {"steps": {}}
    for step in steps:
        name = step[0]
        log = logs / f"cycle_{tag}_{name}.log"
        r = run_stage([str(BIN / "flsdb"), *step], env=env, log=log)
        if name in ("build", "refresh") and (target / "run_results.json").exists():
            d = split_run_results(target)
            r.update({k: d[k] for k in ("models_s", "tests_s", "dbt_elapsed_s", "nodes", "failures")})
            r["dbt_startup_s"] = r["seconds"] - d["dbt_elapsed_s"] if name == "build" else None
        if name in ("validate", "refresh"):
            r["validate_steps"] = _validate_steps(log)
        out["steps"][" ".join(step)] = r
        if r["rc"]:
            raise SystemExit(f"monthly cycle: `flsdb {' '.join(step)}` failed (rc {r['rc']}); see {log}")
    out["seconds"] = sum(r["seconds"] for r in out["steps"].values())
    out["cpu_s"] = sum(r["cpu_s"] for r in out["steps"].values())
    return out


def run_monthly_cycle(work: Path, repeats: int, refresh: list[list[str]] | None = None) -> dict:
    """On a built 1x warehouse of the default landing set minus its last month (December 2024):
    load the month, then refresh (build, validate, publish, report) through the CLI; against a
    full rebuild of the same landing set (`flsdb build --full-refresh`, validate, publish,
    report). Both on the same warehouse path and dbt target folder (as month after month in
    production, so that dbt's partial parsing stays valid); kpi_results must be identical."""
    folder = work / "x1"
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    ensure_landing(folder, 1.0, folder / "logs")
    cyc = work / "cycle"
    logs = cyc / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    base, month = cyc / "landing_base", cyc / "month"
    moved = split_month(folder / "landing", base, month)
    landing_all = cyc / "landing"
    if landing_all.exists():
        shutil.rmtree(landing_all)
    w, target, output, history = (cyc / "warehouse.duckdb", cyc / "target", cyc / "output",
                                  cyc / "history.duckdb")
    snap_w, snap_h = cyc / "base.duckdb", cyc / "base_history.duckdb"
    env = stage_env(w, landing_all, {"FLSDB_OUTPUT": str(output), "FLSDB_HISTORY": str(history),
                                     "DBT_TARGET_PATH": str(target)})
    refresh = refresh or [CYCLE_REFRESH]
    full = [CYCLE_FULL, ["validate"], APPROVE, ["publish"], ["report"]]
    # last month's state: the base landing set loaded, built, validated, published, reported
    for p in (w, Path(f"{w}.wal"), history):
        p.unlink(missing_ok=True)
    shutil.copytree(base, landing_all)
    _cycle([["load"], ["build"], ["validate"], APPROVE, ["publish"], ["report"]], env, target, logs, "base")
    shutil.copyfile(w, snap_w)
    shutil.copyfile(history, snap_h)
    shutil.copytree(month, landing_all, dirs_exist_ok=True)  # the month arrives
    out: dict = {"new_rows": moved, "refresh": [" ".join(s) for s in refresh],
                 "full": [" ".join(s) for s in full], "runs": []}
    for i in range(repeats):
        shutil.copyfile(snap_w, w)
        shutil.copyfile(snap_h, history)
        Path(f"{w}.wal").unlink(missing_ok=True)
        # `flsdb refresh` loads the new files itself
        steps = refresh if refresh[0][0] == "refresh" else [["load"], *refresh]
        new = _cycle(steps, env, target, logs, "month")
        rows = kpi_rows(w)
        # the full rebuild of the same landing set (the month already loaded)
        f = _cycle(full, env, target, logs, "full")
        same = same_rows(rows, kpi_rows(w))
        out["runs"].append({"month": new, "full": f, "identical_to_full_refresh": same})
        print(f"[monthly cycle] run {i + 1}/{repeats}: {moved:,} new rows; load + refresh "
              f"{new['seconds']:.1f}s (CPU {new['cpu_s']:.1f}s) vs full rebuild {f['seconds']:.1f}s "
              f"(CPU {f['cpu_s']:.1f}s): {100 * new['seconds'] / f['seconds']:.0f}% "
              f"(CPU {100 * new['cpu_s'] / f['cpu_s']:.0f}%); kpi_results identical: {same}; "
              f"load avg {os.getloadavg()[0]:.1f}", flush=True)
    med = statistics.median
    out["month_s"] = med(r["month"]["seconds"] for r in out["runs"])
    out["month_cpu_s"] = med(r["month"]["cpu_s"] for r in out["runs"])
    out["full_s"] = med(r["full"]["seconds"] for r in out["runs"])
    out["full_cpu_s"] = med(r["full"]["cpu_s"] for r in out["runs"])
    out["share"] = med(r["month"]["seconds"] / r["full"]["seconds"] for r in out["runs"])
    out["cpu_share"] = med(r["month"]["cpu_s"] / r["full"]["cpu_s"] for r in out["runs"])
    out["identical"] = all(r["identical_to_full_refresh"] for r in out["runs"])
    out["steps"] = {}
    for side in ("month", "full"):
        for name in out["runs"][0][side]["steps"]:
            rs = [r[side]["steps"][name] for r in out["runs"]]
            entry = {"seconds": med(r["seconds"] for r in rs), "cpu_s": med(r["cpu_s"] for r in rs)}
            for k in ("dbt_elapsed_s", "models_s", "tests_s", "nodes"):
                if rs[0].get(k) is not None:
                    entry[k] = med(r[k] for r in rs)
            if rs[0].get("validate_steps"):
                entry["validate_steps"] = {s: med(r["validate_steps"].get(s, 0) for r in rs)
                                           for s in rs[0]["validate_steps"]}
            out["steps"][f"{side}: flsdb {name}"] = entry
    return out


def cycle_table(c: dict) -> str:
    lines = [f"One new month ({c['new_rows']:,} rows, the December 2024 records) on a built 1x "
             f"warehouse of the rest; medians of {len(c['runs'])}; `kpi_results` identical to the "
             f"full rebuild: {'yes' if c['identical'] else 'NO'}.", "",
             "| step | wall s | CPU s | detail |", "|---|---|---|---|"]
    for name, e in c["steps"].items():
        detail = []
        if e.get("dbt_elapsed_s") is not None:
            detail.append(f"dbt {e['dbt_elapsed_s']:.1f} s in-run ({e.get('nodes', 0):.0f} nodes: "
                          f"models {e['models_s']:.1f}, tests {e['tests_s']:.1f})")
        if e.get("validate_steps"):
            detail.append("; ".join(f"{k} {v:.1f}" for k, v in e["validate_steps"].items()))
        lines.append(f"| {name} | {e['seconds']:.1f} | {e['cpu_s']:.1f} | {' '.join(detail)} |")
    load = "" if c["refresh"][0].startswith("refresh") else "`flsdb load` + "
    lines.append(f"| **load the month + refresh** | **{c['month_s']:.1f}** | {c['month_cpu_s']:.1f} | "
                 f"{load}`flsdb {' ; flsdb '.join(c['refresh'])}` |")
    lines.append(f"| **full rebuild** | **{c['full_s']:.1f}** | {c['full_cpu_s']:.1f} | "
                 f"`flsdb {' ; flsdb '.join(c['full'])}` |")
    ok = "met" if c["share"] <= 0.30 else "NOT met"
    lines.append(f"| **monthly-cycle share** | **{100 * c['share']:.0f}%** | {100 * c['cpu_share']:.0f}% | "
                 f"target 30%: {ok} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- output

def fmt(value, spec=".1f", none="n/a") -> str:
    return none if value is None else format(value, spec)


def table(results: list[dict], incremental: dict | None) -> str:
    lines = ["| scale | records | stage | wall s (median) | CPU s | peak MiB | load avg |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        s = r["summary"]
        rows = [("generate", s["generate"]), ("load", s["load"]), ("dbt build", s["dbt_build"])]
        for name, st in rows + [("  models", None), ("  tests", None), ("  overhead", None),
                                ("baseline SQL", s["baseline"]), ("validate", s["validate"]),
                                ("report", s["report"])]:
            d = s["dbt_build"]
            if name == "  models":
                lines.append(f"| | | models (seed + run) | {fmt(d['models_s'])} | | | |")
                continue
            if name == "  tests":
                lines.append(f"| | | tests (data; unit tests are for make test) | {fmt(d['tests_s'])} | | | |")
                continue
            if name == "  overhead":
                lines.append(f"| | | start-up, parse, between nodes | "
                             f"{fmt(d['seconds'] - (d['dbt_elapsed_s'] or 0))} + in-run gaps | | | |")
                continue
            if st is None:
                lines.append(f"| | | {name} | n/a | | n/a | |")
                continue
            value = st.get("query_s") if name == "baseline SQL" else st["seconds"]
            note = " (failed)" if st.get("rc") else ""
            lines.append(f"| x{r['scale']:g} | {r['records']:,} | {name} | {fmt(value, '.2f')}{note} | "
                         f"{fmt(st.get('cpu_s'))} | {fmt(st['peak_mib'], '.0f')} | {fmt(st.get('load_avg'))} |")
        nn, fr = s.get("ratio_nothing_new") or {}, s.get("ratio_full_rebuild") or {}
        lines.append(f"| x{r['scale']:g} | | `flsdb build`, nothing new "
                     f"({'skipped' if s.get('nothing_new_skipped') else 'NOT skipped'}) | "
                     f"{fmt(s['build_again']['seconds'], '.2f')} | {fmt(s['build_again']['cpu_s'], '.2f')} | "
                     f"{fmt(s['build_again']['peak_mib'], '.0f')} | {fmt(s['build_again']['load_avg'])} |")
        lines.append(f"| x{r['scale']:g} | | baseline query, whole process | "
                     f"{fmt(s['baseline_process']['seconds'], '.2f')} | {fmt(s['baseline_process']['cpu_s'], '.2f')} | "
                     f"{fmt(s['baseline_process']['peak_mib'], '.0f')} | {fmt(s['baseline_process']['load_avg'])} |")
        lines.append(f"| x{r['scale']:g} | | nothing new / baseline process (target 8x) | "
                     f"{fmt(nn.get('seconds'), '.1f')}x | {fmt(nn.get('cpu_s'), '.1f')}x | | |")
        lines.append(f"| x{r['scale']:g} | | full rebuild (`flsdb build --full`) / baseline process (target 15x) | "
                     f"{fmt(fr.get('seconds'), '.1f')}x | {fmt(fr.get('cpu_s'), '.1f')}x | | |")
        if s.get("report_again"):
            lines.append(f"| x{r['scale']:g} | | `flsdb report`, nothing changed (target 5 s) | "
                         f"{fmt(s['report_again']['seconds'], '.2f')} | {fmt(s['report_again']['cpu_s'], '.2f')} | "
                         f"{fmt(s['report_again']['peak_mib'], '.0f')} | {fmt(s['report_again']['load_avg'])} |")
        lines.append(f"| x{r['scale']:g} | | report site size (MiB) | {fmt(s.get('site_mib'), '.1f')} | | | |")
        ratio = s.get("ratio_models_to_baseline")
        lines.append(f"| x{r['scale']:g} | | **pipeline (generate+load+build)** | {s['pipeline_s']:.1f} | | "
                     f"{s['pipeline_peak_mib']:.0f} | |")
        lines.append(f"| x{r['scale']:g} | | marts models / baseline | {fmt(ratio, '.2f')}x "
                     f"(baseline = marts: {'yes' if s['baseline']['mismatches'] == 0 else 'NO'}) | | | |")
    if incremental:
        i = incremental
        lines.append(f"| x1 | +{i['new_rows']:,} | new month: load | {i['load_month_s']:.1f} | | | |")
        lines.append(f"| x1 | | full rebuild (`dbt build --full-refresh`) | {i['full_rebuild_s']:.1f} | "
                     f"{i['full_rebuild_cpu_s']:.1f} | | |")
        for name, r in i["summary"].items():
            lines.append(f"| x1 | | new month: {name} | {r['seconds']:.1f} ({100 * r['ratio']:.0f}% of full; "
                         f"CPU {100 * r['cpu_ratio']:.0f}%; same kpi_results: {r['identical']}) | "
                         f"{r['cpu_s']:.1f} | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", default="1,10", help="comma-separated scales of one national year")
    ap.add_argument("--repeats", type=int, default=3, help="repeats per scale (medians reported)")
    ap.add_argument("--baseline-runs", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("FLSDB_BENCH_DIR", "/tmp/flsdb-bench")),
                    help="scratch folder [$FLSDB_BENCH_DIR or /tmp/flsdb-bench]")
    ap.add_argument("--incremental", action="store_true", help="also time adding one month at 1x")
    ap.add_argument("--write-summary", action="store_true", help="also write bench/results/latest.md")
    ap.add_argument("--only-incremental", action="store_true", help="skip the scales; only --incremental")
    ap.add_argument("--monthly-cycle", action="store_true",
                    help="also time the monthly cycle at 1x: load one new month + refresh (build, validate, "
                         "publish, report) against a full rebuild of the same landing set")
    ap.add_argument("--only-monthly-cycle", action="store_true", help="skip the scales; only --monthly-cycle")
    ap.add_argument("--cycle-refresh", default=None,
                    help="the refresh to time, as `;`-separated flsdb commands "
                         "[default: `refresh`, the recommended monthly command]")
    ap.add_argument("--no-validate", action="store_true", help="skip `flsdb validate` and `flsdb report`")
    ap.add_argument("--dbt-vars", default=None, help="--vars passed to every dbt build (e.g. to compare designs)")
    args = ap.parse_args()
    scales = [float(s) for s in args.scales.split(",") if s.strip()]
    args.work.mkdir(parents=True, exist_ok=True)
    commands = set() if args.no_validate else cli_commands()
    started = dt.datetime.now()
    print(f"flsdb bench: scales {args.scales}, {args.repeats} repeat(s), work {args.work}; "
          f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}", flush=True)
    dbt_args = ["--vars", args.dbt_vars] if args.dbt_vars else []
    only = args.only_incremental or args.only_monthly_cycle
    results = [] if only else [
        run_scale(s, args.work, args.repeats if s <= 10 else 1, args.baseline_runs, commands, dbt_args)
        for s in scales]
    incremental = (run_incremental(args.work, args.repeats, dbt_args)
                   if args.incremental or args.only_incremental else None)
    refresh = ([s.split() for s in args.cycle_refresh.split(";") if s.strip()]
               if args.cycle_refresh else None)
    cycle = (run_monthly_cycle(args.work, args.repeats, refresh)
             if args.monthly_cycle or args.only_monthly_cycle else None)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True,
                         text=True).stdout.strip()
    record = {"started": started.isoformat(timespec="seconds"), "git": git, "host": platform.node(),
              "cpus": os.cpu_count(), "load_avg_end": os.getloadavg(), "args": vars(args) | {"work": str(args.work)},
              "scales": results, "incremental": incremental,
              "monthly_cycle": cycle}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"{started:%Y%m%dT%H%M%S}.json"
    if out.exists():        # two benches started in the same second (e.g. --only-monthly-cycle beside one)
        out = out.with_name(f"{started:%Y%m%dT%H%M%S}-{os.getpid()}.json")
    out.write_text(json.dumps(record, indent=1, default=str))
    text = table(results, incremental) if results or incremental else ""
    cycle_text = (f"## Monthly cycle (`--monthly-cycle`)\n\n{started:%Y-%m-%d %H:%M}, git {git}, "
                  f"`bench/results/{out.name}`.\n\n{cycle_table(cycle)}\n") if cycle else ""
    print("\n" + text + ("\n\n" + cycle_text if cycle_text else ""))
    ones = {r["scale"]: r["summary"]["dbt_build"]["seconds"] for r in results}
    if 1.0 in ones and 10.0 in ones:
        print(f"\n10x / 1x dbt build: {ones[10.0] / ones[1.0]:.2f}x")
    print(f"\nresults: {out}")
    if args.write_summary:
        summary = (f"# Benchmark summary\n\n{started:%Y-%m-%d %H:%M}, git {git}, {os.cpu_count()} cpus, "
                   f"scales {args.scales}, {args.repeats} repeat(s) (medians; 100x once). Full figures: "
                   f"`bench/results/{out.name}`.\n\n{text}\n")
        latest = RESULTS / "latest.md"
        if not text and latest.exists():
            # only the monthly cycle ran: keep the other figures, replace its own section
            summary = latest.read_text()
        summary = _replace_section(summary, "## Monthly cycle", cycle_text) if cycle_text else summary
        latest.write_text(summary)


def _replace_section(markdown: str, heading: str, section: str) -> str:
    """`markdown` with its `heading` section (up to the next `## `) replaced by `section`, or
    with `section` appended."""
    start = markdown.find(heading)
    if start < 0:
        return markdown.rstrip("\n") + "\n\n" + section
    end = markdown.find("\n## ", start + len(heading))
    return markdown[:start] + section + (markdown[end + 1:] if end >= 0 else "")


if __name__ == "__main__":
    main()
