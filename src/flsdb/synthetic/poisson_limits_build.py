"""Build ``seeds/poisson_exact_limits.csv``: exact 95% confidence limits for a Poisson count.

Run ``python -m flsdb.synthetic.poisson_limits_build`` (deterministic).

KPI 2 and KPI 3 divide an observed count (patients identified) by an expected count, and
``docs/specification/kpi-definitions.md`` asks for an exact Poisson interval on the observed count. For an observed
count ``k`` the exact (Garwood 1936) two-sided 95% limits of the Poisson mean are

    lower = chi2.ppf(0.025, 2k) / 2      (0 when k = 0)
    upper = chi2.ppf(0.975, 2k + 2) / 2

The interval of the ratio is then ``lower / expected`` to ``upper / expected``.

The table covers k = 0..2000 (any single FLS, and most breakdowns). Above 2000 the models use
Byar's approximation (macro ``poisson_limit_byar``), whose relative error against the exact limits
is below 0.01% there. Limits are written with 6 decimals.
"""

from __future__ import annotations

import csv
import io

from scipy.stats import chi2

from flsdb import paths

MAX_COUNT = 2000
ALPHA = 0.05


def limits(k: int) -> tuple[float, float]:
    lower = 0.0 if k == 0 else float(chi2.ppf(ALPHA / 2, 2 * k)) / 2
    upper = float(chi2.ppf(1 - ALPHA / 2, 2 * k + 2)) / 2
    return lower, upper


def to_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["observed_count", "lower_95", "upper_95"])
    for k in range(MAX_COUNT + 1):
        lower, upper = limits(k)
        writer.writerow([k, f"{lower:.6f}", f"{upper:.6f}"])
    return out.getvalue()


def main() -> None:
    target = paths.seeds_dir() / "poisson_exact_limits.csv"
    target.write_text(to_csv(), encoding="utf-8")
    print(f"wrote {target}: {MAX_COUNT + 1} rows")


if __name__ == "__main__":
    main()
