"""Month-by-month performance drift in a few SYNTHETIC services, so that SPC charts
(docs/specification/monitoring.md) have real signals to find.

About one service in six gets one shift in one behaviour behind a KPI: a *step* (a sudden,
sustained change from a start month) or a *trend* (a linear change from the start month that
reaches its full size 6-12 months later, then holds). Half the shifts improve, half worsen, so
national figures hardly move. A shift adds `size_logit` to the service's random effect on the
logit scale of that behaviour, for records whose fracture month is at or after the start.

Every shift is listed in `_reference/injected_shifts.csv`. The shifts come from their own random
stream, so turning drift off (`--no-drift`) leaves every other draw unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from flsdb.synthetic.geography import active_fls

# Behaviour (a pathway random effect, higher = better) -> the KPI it drives most directly.
BEHAVIOURS = {
    "assessed": (4, "FLS assessment"),
    "dxa": (5, "DXA done"),
    "falls": (6, "falls risk assessed"),
    "sb": (8, "strength and balance exercise started"),
    "fu16": (9, "16-week monitoring contact"),
}
SHARE_OF_SERVICES = 1 / 6
SIZE_RANGE = (0.8, 1.3)      # |size| on the logit scale
TREND_MONTHS = (6, 12)       # months from start to full size
SHIFT_COLUMNS = ["fls_code", "kpi_number", "behaviour", "description", "kind", "start_month",
                 "full_month", "direction", "size_logit"]


@dataclass(frozen=True)
class Shift:
    fls: int                 # registry row position
    fls_code: str
    behaviour: str
    kind: str                # "step" or "trend"
    start_month: int         # months since 1970-01 (numpy datetime64[M] as int)
    full_month: int          # month the full size is reached (= start for a step)
    size_logit: float        # signed: > 0 improves

    def row(self) -> dict:
        kpi, description = BEHAVIOURS[self.behaviour]
        month = lambda m: str(np.datetime64(int(m), "M")) + "-01"  # noqa: E731
        return {"fls_code": self.fls_code, "kpi_number": kpi, "behaviour": self.behaviour,
                "description": description, "kind": self.kind,
                "start_month": month(self.start_month), "full_month": month(self.full_month),
                "direction": "improve" if self.size_logit > 0 else "worsen",
                "size_logit": round(self.size_logit, 3)}


def month_index(day_numbers: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of day numbers (days since 1970-01-01)."""
    return np.asarray(day_numbers).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def plan_shifts(seed: int, registry: pd.DataFrame, years: list[int]) -> list[Shift]:
    """The shifts of this run: services active in every generated year (or, failing enough of
    those, in the last one), start months at least a quarter of the span from either end."""
    rng = np.random.default_rng([seed, 4099])  # own stream: the main draws stay the same
    first = int(np.datetime64(f"{min(years)}-01", "M").astype(np.int64))
    last = int(np.datetime64(f"{max(years)}-12", "M").astype(np.int64))
    span = last - first + 1
    final_active = active_fls(registry, max(years))
    n_shifts = max(2, int(round(SHARE_OF_SERVICES * len(final_active))))
    always = np.array(sorted(set.intersection(*(set(active_fls(registry, y).tolist())
                                                for y in years))), dtype=np.int64)
    pool = always if len(always) >= n_shifts else final_active
    chosen = rng.choice(pool, size=min(n_shifts, len(pool)), replace=False)
    margin = max(3, span // 4)
    behaviours = list(BEHAVIOURS)
    shifts = []
    for k, fls in enumerate(chosen):
        behaviour = behaviours[int(rng.integers(len(behaviours)))]
        direction = 1.0 if k % 2 == 0 else -1.0
        kind = "step" if rng.random() < 0.6 else "trend"
        size = direction * float(rng.uniform(*SIZE_RANGE))
        start = first + int(rng.integers(margin, span - margin + 1))
        full = start if kind == "step" else min(start + int(rng.integers(TREND_MONTHS[0],
                                                                         TREND_MONTHS[1] + 1)),
                                                last)
        shifts.append(Shift(fls=int(fls), fls_code=str(registry.at[int(fls), "fls_code"]),
                            behaviour=behaviour, kind=kind, start_month=start, full_month=full,
                            size_logit=size))
    return sorted(shifts, key=lambda s: s.fls_code)


def shift_offsets(shifts: list[Shift], fls: np.ndarray, fracture_day: np.ndarray
                  ) -> dict[str, np.ndarray]:
    """Per behaviour, the logit offset of every record (only behaviours with a shift)."""
    months = month_index(fracture_day)
    offsets: dict[str, np.ndarray] = {}
    for shift in shifts:
        sel = np.flatnonzero(fls == shift.fls)
        gone = months[sel] - shift.start_month + 1
        ramp = np.clip(gone / (shift.full_month - shift.start_month + 1), 0.0, 1.0)
        offsets.setdefault(shift.behaviour, np.zeros(len(fls)))[sel] += shift.size_logit * ramp
    return offsets


def write_shifts(path: Path, shifts: list[Shift]) -> None:
    pd.DataFrame([s.row() for s in shifts], columns=SHIFT_COLUMNS).to_csv(
        path, index=False, lineterminator="\n")
