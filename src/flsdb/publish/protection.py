"""The protection audit: how closely a reader of everything published can pin down a small count.

Secondary suppression (models/publication/suppression/) withholds complements so that no small
count can be worked out from what is published. This module checks the result from the outside,
as an attacker would, with linear programming, and is independent of the SQL that chose the
complements.

The reader knows every published number of `published_kpi_results` and `published_kpi_monthly`
and every additive relation between their cells (it rebuilds them from `published_geography` and
the keys, as a reader would):

- geography: the FLSs of a region add up to the region, the regions of a country to the country,
  the countries to England and Wales (same year, KPI, breakdown value, or month);
- breakdown: the values of one breakdown add up to the `all` row;
- time: the months of an audit year add up to the yearly `all` row; a year whose series lacks
  months gets one unknown "not in series" cell for them.

Only relations that hold exactly on the true numbers are used (one that does not hold would lead a
reader astray, not closer). For each count a cell holds, separately (the relations are additive in
each): the numerator (patients meeting the KPI) and, for a proportion, the patients not meeting it
(denominator - numerator). Every withheld count is an unknown >= 0. For every small count of a
cell withheld for small numbers (1-4 patients, or any count above 0 of a proportion whose
denominator is below the minimum), the interval a reader can derive is the smallest and the largest
value the count can take with every relation satisfied: two linear programmes (HiGHS, through
highspy). Only as much of the interval as is needed is computed: a solution found any cheaper way
(a rectangle of withheld cells along which the true counts can move, checked by multiplying it
out; or one programme shared by many counts) already proves the interval at least that wide, and
each count's own programmes run only when those do not show it wide enough.

**Protection level** (docs/bi.md, "Suppression"): the interval must be at least
P = suppression_max_small_count + 1 patients wide (5 with the default vars). An interval that wide
always holds a count the small-number rule would have published (0, or P and more), so a reader of
everything published cannot tell the small count from a publishable one. A cell with no patient in
the count (0) holds nothing to hide and is not audited.

Not covered: the intervals are those of the linear programme (counts may take any value >= 0); a
reader who also uses that counts are whole numbers could narrow some of them further.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml
import highspy
from scipy.sparse import csc_matrix

from flsdb import paths

KEY = ("audit_year", "geography_level", "geography_code", "kpi_number", "breakdown", "breakdown_value")
NOT_IN_SERIES = "not in series"
QUANTITIES = ("numerator", "not_met")
TOLERANCE = 1e-6
#: Whole-component programmes shared by every target not yet shown wide enough, before each
#: remaining target gets its own.
_SHARED_ROUNDS = 16


def suppression_vars() -> dict[str, float]:
    """The small-number vars of dbt_project.yml and the protection level they give."""
    project = yaml.safe_load((paths.PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
    small = float(project["suppression_max_small_count"])
    return {"max_small_count": small, "min_denominator": float(project["suppression_min_denominator"]),
            "protection_level": small + 1}


@dataclass
class Interval:
    cell: tuple
    quantity: str
    true_value: float
    lower: float
    upper: float

    @property
    def width(self) -> float:
        return self.upper - self.lower


@dataclass
class AuditResult:
    protection_level: float
    audited: int = 0                     # small counts audited
    relations: int = 0                   # exact relations used (over both quantities)
    programmes: int = 0                  # linear programmes solved
    seconds: float = 0.0
    too_narrow: list[Interval] = field(default_factory=list)
    narrowest: Interval | None = None

    @property
    def passed(self) -> bool:
        return self.audited > 0 and not self.too_narrow

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        line = (f"protection audit {verdict}: {self.audited} small counts, {len(self.too_narrow)} known to within "
                f"less than {self.protection_level:g} patients; {self.relations} relations, "
                f"{self.programmes} linear programmes, {self.seconds:.1f} s")
        if self.narrowest is not None:
            n = self.narrowest
            line += (f"; narrowest {n.quantity} of {n.cell}: {n.true_value:g} within "
                     f"[{n.lower:g}, {n.upper:g}]")
        return line


# ---------------------------------------------------------------------------------------------
# Cells and relations, as a reader of the published tier sees them
# ---------------------------------------------------------------------------------------------

def _published_cells(published_db: Path) -> tuple[pd.DataFrame, dict]:
    """Every cell of the yearly results and monthly series (with the months not in the series),
    whether it is blank, why, and its value type; and the parent of each geography."""
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        yearly = con.execute("""
            select r.audit_year, r.geography_level, r.geography_code, r.kpi_number, r.breakdown,
                   r.breakdown_value, r.numerator, r.denominator, r.is_suppressed, r.suppression_reason,
                   d.value_type
            from publication.published_kpi_results as r
            inner join publication.published_kpi_definitions as d on r.kpi_number = d.kpi_number
            where d.value_type != 'completeness'""").df()
        monthly = con.execute("""
            select cast(extract(year from m.month_start) as integer) as audit_year, m.geography_level,
                   m.geography_code, m.kpi_number, 'month' as breakdown,
                   cast(cast(extract(month from m.month_start) as integer) as varchar) as breakdown_value,
                   m.numerator, m.denominator, m.is_suppressed, m.suppression_reason, d.value_type
            from publication.published_kpi_monthly as m
            inner join publication.published_kpi_definitions as d on m.kpi_number = d.kpi_number""").df()
        geography = con.execute(
            "select geography_level, geography_code, parent_geography_level, parent_geography_code "
            "from publication.published_geography where parent_geography_level is not null").fetchall()
    finally:
        con.close()
    months = monthly.groupby(["audit_year", "geography_level", "geography_code", "kpi_number"]).size()
    headline = yearly.loc[yearly["breakdown"] == "all"].set_index(
        ["audit_year", "geography_level", "geography_code", "kpi_number"])
    short = months[months < 12].index.intersection(headline.index)
    later = pd.DataFrame([(*k, "month", NOT_IN_SERIES) for k in short], columns=list(KEY))
    later["is_suppressed"] = True
    later["suppression_reason"] = NOT_IN_SERIES
    later["value_type"] = headline.loc[short, "value_type"].to_numpy() if len(short) else []
    cells = pd.concat([yearly, monthly, later], ignore_index=True)
    cells["is_suppressed"] = cells["is_suppressed"].astype(bool)
    parent = {(level, code): (p_level, p_code) for level, code, p_level, p_code in geography}
    return cells, parent


def _true_counts(warehouse: Path, cells: pd.DataFrame) -> dict[str, dict[tuple, float]]:
    """The true numerator and not-met count of every cell (internal marts)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        truth = con.execute(f"""
            select {', '.join(KEY)}, numerator, denominator from marts.kpi_results
            union all
            select cast(extract(year from month_start) as integer), geography_level, geography_code, kpi_number,
                   'month', cast(cast(extract(month from month_start) as integer) as varchar), numerator, denominator
            from marts.kpi_monthly""").df()
    finally:
        con.close()
    keys = list(truth[list(KEY)].itertuples(index=False, name=None))
    numerator = dict(zip(keys, truth["numerator"].fillna(0.0).astype(float)))
    not_met = dict(zip(keys, (truth["denominator"].fillna(0.0) - truth["numerator"].fillna(0.0)).astype(float)))
    counts = {"numerator": numerator, "not_met": not_met}
    # the months not in the series: the yearly result minus the months
    months: dict[str, dict[tuple, float]] = {q: defaultdict(float) for q in QUANTITIES}
    for key in keys:
        if key[4] == "month":
            for q in QUANTITIES:
                months[q][key[:4]] += counts[q][key]
    for key in cells.loc[cells["breakdown_value"] == NOT_IN_SERIES, list(KEY)].itertuples(index=False, name=None):
        for q in QUANTITIES:
            counts[q][key] = counts[q][(*key[:4], "all", "all")] - months[q][key[:4]]
    return counts


def relations(cells: pd.DataFrame, parent: dict) -> list[tuple[tuple, list[tuple]]]:
    """(total, parts) of every additive relation between cells a reader can write down."""
    existing = set(cells[list(KEY)].itertuples(index=False, name=None))
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for key in existing:
        year, level, code, kpi, breakdown, value = key
        if (level, code) in parent:
            p_level, p_code = parent[(level, code)]
            groups[((year, p_level, p_code, kpi, breakdown, value), "geography")].append(key)
        if breakdown != "all":
            groups[((year, level, code, kpi, "all", "all"), breakdown)].append(key)
    return [(total, parts) for (total, _), parts in groups.items() if total in existing]


# ---------------------------------------------------------------------------------------------
# The linear programmes
# ---------------------------------------------------------------------------------------------

def _components(equations: list[tuple[tuple, list[tuple]]], blank: set) -> list[tuple[list, list]]:
    """Split equations into independent groups that share no blank cell: (cells, equations)."""
    root: dict[tuple, tuple] = {}

    def find(x):
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    for total, parts in equations:
        unknown = [c for c in (total, *parts) if c in blank]
        for c in unknown:
            root.setdefault(c, c)
        for c in unknown[1:]:
            a, b = find(unknown[0]), find(c)
            if a != b:
                root[a] = b
    grouped: dict[tuple, tuple[list, list]] = {}
    for total, parts in equations:
        unknown = [c for c in (total, *parts) if c in blank]
        if unknown:
            grouped.setdefault(find(unknown[0]), ([], []))[1].append((total, parts))
    for c in root:
        grouped[find(c)][0].append(c)
    return list(grouped.values())


def _solve_component(component_cells: list, equations: list, known: dict, targets: list,
                     level: float, quantity: str, result: AuditResult) -> None:
    """Bound each target of one component (A x = b over its withheld cells, x >= 0).

    The true counts are one solution. Every other solution found widens a target's proven interval
    (a reader cannot rule it out), so the audit looks for cheap ones first:
    1. a rectangle (or pair) of withheld cells: a direction d with A d = 0, checked by multiplying
       it out, along which the true counts can move: the target rises by the smallest count d takes
       from and falls by the smallest count d adds to;
    2. a few whole-component programmes shared by the targets not yet P wide (maximise, minimise
       their sum; then the same for random halves of them);
    3. for each target still short, its own maximum, then its own minimum: its exact interval."""
    column = {c: i for i, c in enumerate(component_cells)}
    rows, cols, data, rhs = [], [], [], []
    for row, (total, parts) in enumerate(equations):        # total - sum(parts) = 0
        constant = 0.0
        for cell, sign in [(total, 1.0)] + [(p, -1.0) for p in parts]:
            if cell in column:
                rows.append(row)
                cols.append(column[cell])
                data.append(sign)
            else:
                constant -= sign * known[cell]
        rhs.append(constant)
    by_column = csc_matrix((data, (rows, cols)), shape=(len(equations), len(column)))
    rows_of: list[dict[int, float]] = [{} for _ in column]
    cells_of: list[dict[int, float]] = [{} for _ in equations]
    for r, j, v in zip(rows, cols, data):
        rows_of[j][r] = rows_of[j].get(r, 0.0) + v
        cells_of[r][j] = cells_of[r].get(j, 0.0) + v
    truth = np.array([known[c] for c in component_cells])
    bounds = {i: _rectangle_bounds(i, rows_of, cells_of, truth, level) for i in (column[c] for c, _ in targets)}
    open_targets = [i for i, (lower, upper) in bounds.items() if upper - lower < level - TOLERANCE]
    whole = _model(by_column, np.array(rhs)) if open_targets else None
    # Whole-component programmes for many targets at once: any solution is a point a reader cannot
    # rule out, so it widens the proven interval of every target at once (a few rounds).
    rng = np.random.default_rng(0)
    for round_number in range(_SHARED_ROUNDS):
        if not open_targets:
            break
        # all open targets together, then random halves of them (targets that compete for the
        # same cells rise in different rounds)
        chosen = (open_targets if round_number < 2 else
                  [i for i in open_targets if rng.random() < 0.5] or open_targets)
        weights = np.ones(len(chosen))
        sense = highspy.ObjSense.kMaximize if round_number % 2 == 0 else highspy.ObjSense.kMinimize
        point = _solution(whole, chosen, weights, sense)
        result.programmes += 1
        for i in open_targets:
            lower, upper = bounds[i]
            bounds[i] = (min(lower, point[i]), max(upper, point[i]))
        open_targets = [i for i in open_targets if bounds[i][1] - bounds[i][0] < level - TOLERANCE]
    for cell, true_value in targets:
        i = column[cell]
        lower, upper = bounds[i]
        if upper - lower < level - TOLERANCE:              # the target's own programmes decide
            upper = _optimum(whole, i, highspy.ObjSense.kMaximize, cell, quantity)
            result.programmes += 1
            if upper - lower < level - TOLERANCE:
                lower = _optimum(whole, i, highspy.ObjSense.kMinimize, cell, quantity)
                result.programmes += 1
        interval = Interval(cell, quantity, true_value, lower, upper)
        result.audited += 1
        if result.narrowest is None or interval.width < result.narrowest.width:
            result.narrowest = interval
        if interval.width < level - TOLERANCE:
            result.too_narrow.append(interval)


def _rectangle_bounds(i: int, rows_of: list, cells_of: list, truth: np.ndarray,
                      level: float) -> tuple[float, float]:
    """The widest proven interval of column i along one rectangle or pair of withheld cells,
    (lower, upper); (truth, truth) when there is none. rows_of[j]: {row: coefficient} of column j;
    cells_of[r]: {column: coefficient} of row r. A cell in more than two relations (a total) has
    none: the whole programme decides."""
    best = (truth[i], truth[i])
    equations = list(rows_of[i])
    if len(equations) > 2:
        return best
    partners = [[(j, -v * rows_of[i][e]) for j, v in cells_of[e].items() if j != i] for e in equations]
    if len(equations) == 1:
        candidates = [{i: 1.0, j: s} for j, s in partners[0]]
    else:
        candidates = []
        for j, sj in partners[0]:
            reach_j = {m for r in rows_of[j] for m in cells_of[r]}
            for k, sk in partners[1]:
                fourth = reach_j.intersection(m for r in rows_of[k] for m in cells_of[r]) - {i, j, k}
                candidates += [{i: 1.0, j: sj, k: sk, m: sj * sk} for m in fourth]
    for direction in candidates:
        balance: dict[int, float] = defaultdict(float)
        for j, v in direction.items():
            for r, coefficient in rows_of[j].items():
                balance[r] += coefficient * v
        if any(abs(v) > TOLERANCE for v in balance.values()):  # not a direction every relation keeps
            continue
        up = min((truth[j] for j, v in direction.items() if v < 0), default=math.inf)
        down = min((truth[j] for j, v in direction.items() if v > 0), default=math.inf)
        if up + down > best[1] - best[0]:
            best = (truth[i] - down, truth[i] + up)
            if up + down >= level:
                break
    return best


def _model(matrix: csc_matrix, rhs: np.ndarray) -> highspy.Highs:
    """One HiGHS model per component (A x = b, x >= 0), solved again for each objective."""
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    lp.col_cost_ = np.zeros(matrix.shape[1])
    lp.col_lower_ = np.zeros(matrix.shape[1])
    lp.col_upper_ = np.full(matrix.shape[1], highspy.kHighsInf)
    lp.row_lower_ = lp.row_upper_ = rhs
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = matrix.indptr, matrix.indices, matrix.data
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.passModel(lp)
    return highs


def _optimum(highs: highspy.Highs, column: int, sense, cell: tuple, quantity: str) -> float:
    highs.changeObjectiveSense(sense)
    highs.changeColCost(column, 1.0)
    highs.run()
    status = highs.getModelStatus()
    value = highs.getInfo().objective_function_value
    highs.changeColCost(column, 0.0)
    if status == highspy.HighsModelStatus.kUnbounded:             # no published total bounds it
        return math.inf if sense == highspy.ObjSense.kMaximize else 0.0
    if status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"protection audit: the linear programme for the {quantity} of {cell} did not solve "
                           f"({highs.modelStatusToString(status)})")
    return value + 0.0                                          # no "-0"


def _solution(highs: highspy.Highs, columns: list[int], weights: np.ndarray, sense) -> np.ndarray:
    """A solution of the whole programme that maximises (or minimises) a weighted sum of columns."""
    index = np.array(columns, dtype=np.int32)
    highs.changeObjectiveSense(sense)
    highs.changeColsCost(len(index), index, weights.astype(float))
    highs.run()
    status = highs.getModelStatus()
    values = np.array(highs.getSolution().col_value) + 0.0          # no "-0"
    highs.changeColsCost(len(index), index, np.zeros(len(index)))
    if status == highspy.HighsModelStatus.kUnbounded:
        return np.full(len(values), np.nan)              # no point: the targets' own programmes decide
    if status != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"protection audit: a shared linear programme did not solve "
                           f"({highs.modelStatusToString(status)})")
    return values


def _small_counts(cells: pd.DataFrame, counts: dict, limits: dict) -> dict[str, list[tuple[tuple, float]]]:
    """The small counts of every cell withheld for small numbers, by quantity."""
    primary = cells.loc[cells["suppression_reason"] == "small numbers"]
    small: dict[str, list] = {q: [] for q in QUANTITIES}
    for row in primary.itertuples(index=False):
        key = tuple(getattr(row, k) for k in KEY)
        denominator = counts["numerator"][key] + counts["not_met"][key]
        for q in QUANTITIES:
            if q == "not_met" and row.value_type != "proportion":
                continue
            value = counts[q][key]
            few_patients = row.value_type == "proportion" and denominator < limits["min_denominator"]
            if value >= 1 and (value <= limits["max_small_count"] or few_patients):
                small[q].append((key, value))
    return small


def audit_protection(published_db: Path, warehouse: Path, protection_level: float | None = None) -> AuditResult:
    """Audit every small count withheld in the published tier at `published_db` (true numbers from
    the marts of `warehouse`); see the module docstring."""
    started = time.monotonic()
    limits = suppression_vars()
    level = limits["protection_level"] if protection_level is None else protection_level
    result = AuditResult(protection_level=level)
    cells, parent = _published_cells(Path(published_db))
    counts = _true_counts(Path(warehouse), cells)
    value_type = dict(zip(cells[list(KEY)].itertuples(index=False, name=None), cells["value_type"]))
    blank = set(cells.loc[cells["is_suppressed"], list(KEY)].itertuples(index=False, name=None))
    all_relations = relations(cells, parent)
    small = _small_counts(cells, counts, limits)
    for quantity in QUANTITIES:
        values = counts[quantity]
        exact = [(t, ps) for t, ps in all_relations
                 if (quantity == "numerator" or value_type[t] == "proportion")
                 and t in values and all(p in values for p in ps)
                 and abs(values[t] - sum(values[p] for p in ps)) < TOLERANCE]
        result.relations += len(exact)
        targets_by_cell = dict(small[quantity])
        for component_cells, equations in _components(exact, blank):
            targets = [(c, targets_by_cell[c]) for c in component_cells if c in targets_by_cell]
            if targets:
                _solve_component(component_cells, equations, values, targets, level, quantity, result)
        # a small count in no exact relation at all is bounded by nothing a reader knows
        in_components = {c for t, ps in exact for c in (t, *ps) if c in blank}
        result.audited += sum(1 for cell, _ in small[quantity] if cell not in in_components)
    result.seconds = time.monotonic() - started
    return result
