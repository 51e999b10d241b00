"""Benchmark `flsdb generate`: records per second and peak memory at 1x and 10x the 2024 volume.

Not a test. Run: .venv/bin/python bench/bench_generate.py [--scales 1,10] [--keep DIR]

Each scale runs in a fresh child process so that peak memory (ru_maxrss of that child) belongs
to that run alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from flsdb.synthetic import generate
scale, out = float(sys.argv[1]), sys.argv[2]
t0 = time.perf_counter()
summary = generate(years=[2024], scale=scale, out_dir=out, seed=20240101)
elapsed = time.perf_counter() - t0
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
print(json.dumps({"elapsed": elapsed, "peak_kib": peak_kib}))
"""


def run(scale: float, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(scale), str(out)],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    records = round(83500 * scale)
    size = sum(p.stat().st_size for p in out.rglob("*.csv") if "_reference" not in p.parts)
    return {"scale": scale, "records": records, **result,
            "records_per_s": records / result["elapsed"], "bytes": size}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scales", default="1,10")
    ap.add_argument("--keep", type=Path, default=None, help="write output here instead of a tmp dir")
    args = ap.parse_args()
    print(f"cpus: {os.cpu_count()}, python {sys.version.split()[0]}")
    print(f"{'scale':>6} {'records':>10} {'seconds':>8} {'records/s':>10} {'peak MiB':>9} "
          f"{'CSV MiB':>8}")
    for scale in [float(s) for s in args.scales.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            out = (args.keep / f"x{scale:g}") if args.keep else Path(tmp)
            r = run(scale, out)
        print(f"{r['scale']:>6g} {r['records']:>10,} {r['elapsed']:>8.1f} "
              f"{r['records_per_s']:>10,.0f} {r['peak_kib'] / 1024:>9.0f} "
              f"{r['bytes'] / 2**20:>8.0f}")
    _ = resource, time  # (imported for readers: the child uses them)


if __name__ == "__main__":
    main()
