"""Benchmark `flsdb load`: rows/second and peak memory at 1x and 10x national volume.

Usage: .venv/bin/python bench/bench_load.py [--scales 1,10] [--keep DIR]

Input comes from the project generator, `flsdb.synthetic.generate(years=[2024], scale=...,
out_dir=..., seed=1)` (with its injected defects). If that module is not importable, a simple
stand-in writer in this script produces contract-shaped files of about the same volume (85k rows
in 150 files at 1x; 10x is the same files, ten times longer) and the script says so.
Wall time depends on what else the machine is doing, so CPU time and load average are printed
too.

Each scale is loaded in a fresh subprocess so that peak memory (ru_maxrss) is that load's alone.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from flsdb import contract, paths

NATIONAL_ROWS = 85_000
NATIONAL_FILES = 150


def _nhs(rng: random.Random) -> str:
    while True:
        d = f"{rng.randrange(10**9):09d}"
        check = (11 - sum(int(x) * w for x, w in zip(d, range(10, 1, -1))) % 11) % 11
        if check != 10:
            return d + str(check)


def stand_in_generate(out_dir: Path, scale: float, registry: Path, seed: int = 1) -> str:
    rng = random.Random(seed)
    with open(registry, newline="") as f:
        codes = [r["fls_code"] for r in csv.DictReader(f)] or ["SYN001"]
    cols = list(contract.COLUMNS)
    rows_per_file = int(NATIONAL_ROWS * scale / NATIONAL_FILES)
    for i in range(NATIONAL_FILES):
        code = codes[i % len(codes)]
        p = out_dir / f"{code}" / f"{code}_2024_{i:03d}.csv"
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for j in range(rows_per_file):
                frac = f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                row = {c: "" for c in cols}
                row.update({
                    "FLS Code": code, "Record ID": f"{code}-{i}-{j}",
                    "Last Updated": "2025-02-01T12:00:00", "1.01 NHS Number": _nhs(rng),
                    "1.02 Date of Birth": f"{rng.randint(1925, 1970)}-{rng.randint(1, 12):02d}-15",
                    "1.03 Gender": rng.choice(["Female", "Male"]), "1.04 Post Code": "SW1A 1AA",
                    "1.09 Date Index Frac Diagnosed": frac,
                    "1.11 SiteFirstFrac": rng.choice(contract.SITES),
                    "2.01 Height": str(rng.randint(140, 190)), "3.01 DXA": "Done",
                    "4.01 BoneTherapy": "Alendronate",
                })
                if rng.random() < 0.002:
                    row["1.01 NHS Number"] = "1234567890"
                w.writerow([row[c] for c in cols])
    return f"stand-in writer: {NATIONAL_FILES} files, {rows_per_file * NATIONAL_FILES} rows"


def make_input(out_dir: Path, scale: float, registry: Path) -> str:
    try:
        from flsdb.synthetic import generate
    except ImportError:
        return stand_in_generate(out_dir, scale, registry)
    summary = generate(years=[2024], scale=scale, out_dir=out_dir, seed=1)
    return f"flsdb.synthetic.generate: {str(summary).splitlines()[0] if summary else ''}".strip()


CHILD = """
import json, resource, sys, time
from flsdb.ingest import load_landing
t = time.perf_counter()
c = time.process_time()
r = load_landing(sys.argv[1], sys.argv[2], registry_path=sys.argv[3], progress=False)
s = time.perf_counter() - t
cpu = time.process_time() - c
print(json.dumps({"seconds": s, "cpu_seconds": cpu, "files": len(r.files), "loaded": r.files_loaded,
                  "files_rejected": r.files_rejected, "rows_read": r.rows_read,
                  "rows_accepted": r.rows_accepted, "rows_rejected": r.rows_rejected,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_once(landing: Path, warehouse: Path, registry: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(landing), str(warehouse),
                          str(registry)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", default="1,10")
    ap.add_argument("--registry", default=str(paths.seeds_dir() / "fls_registry.csv"))
    ap.add_argument("--keep", default=None, help="keep inputs and warehouses under this folder")
    args = ap.parse_args()
    registry = Path(args.registry)
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="flsdb-bench-"))
    try:
        for scale in [float(s) for s in args.scales.split(",")]:
            landing = base / f"landing_x{scale:g}"
            warehouse = base / f"bench_x{scale:g}.duckdb"
            if warehouse.exists():
                warehouse.unlink()
            if not landing.exists():
                t = time.perf_counter()
                source = make_input(landing, scale, registry)
                print(f"[x{scale:g}] input: {source} ({time.perf_counter() - t:.1f}s)")
            size_mb = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()) / 1e6
            r = run_once(landing, warehouse, registry)
            again = run_once(landing, warehouse, registry)
            print(f"[x{scale:g}] {r['files']} files ({size_mb:.0f} MB), {r['rows_read']:,} rows "
                  f"read, {r['rows_accepted']:,} accepted, {r['rows_rejected']:,} rejected, "
                  f"{r['files_rejected']} files rejected")
            print(f"[x{scale:g}] load: {r['seconds']:.2f}s = "
                  f"{r['rows_read'] / r['seconds']:,.0f} rows/s (CPU time {r['cpu_seconds']:.1f}s over "
                  f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}); "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB;"
                  f" re-run (nothing new): {again['seconds']:.2f}s")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
