"""Secondary suppression: no suppressed cell of the published tier can be worked out by subtraction.

The attack reads only what is published (output/published/flsdb_published.duckdb) and tries every
subtraction a reader can do: the FLSs of a region add up to the region, the regions of a country to
the country, the countries to England and Wales (published_geography says which is which), and
the values of each breakdown to the `all` row; numerators and denominators alike. It writes every
such relation as a linear equation over the blank (suppressed) cells and solves them all together
for each year and KPI, so chains of subtractions across tables and levels count too: a blank cell
is recovered when the equations determine it (its unit vector lies in their row space).

The relations are checked against the true numbers of the internal marts first, so the attack
only uses subtractions that really hold. A cell with no patient (true denominator 0) holds nothing
to hide and may be worked out (it is 0). With a weak rule (complements chosen over the breakdown
relations only: var secondary_suppression_relation_types) the same attack must recover cells, and
their true values. How closely a reader can bound a small count is the protection audit's job
(test_protection.py).
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from conftest import run_dbt
from flsdb.publish.marts import PUBLISHED_DB_NAME, publish_marts

KEY = ["audit_year", "geography_level", "geography_code", "kpi_number", "breakdown", "breakdown_value"]
QUANTITIES = ("numerator", "denominator")
# Complements over the breakdown relations only: the weak rule the attack must defeat.
WEAK_RULE = {"secondary_suppression_relation_types": ["breakdown"]}
SUPPRESSION_MODELS = ["publication_suppression_patterns+"]


def published_tables(out_dir: Path) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(out_dir / "published" / PUBLISHED_DB_NAME), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'publication'").fetchall()]
        return {name: con.execute(f'select * from publication."{name}"').df() for name in names}
    finally:
        con.close()


def relations(results: pd.DataFrame, geography: pd.DataFrame) -> list[tuple[tuple, list[tuple]]]:
    """(total cell key, [part cell keys]) of every subtraction a reader can do."""
    parent = {(r.geography_level, r.geography_code): (r.parent_geography_level, r.parent_geography_code)
              for r in geography.itertuples() if isinstance(r.parent_geography_level, str)}
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for key in results[KEY].itertuples(index=False, name=None):
        year, level, code, kpi, breakdown, value = key
        if (level, code) in parent:                                     # geography
            p_level, p_code = parent[(level, code)]
            groups[(year, p_level, p_code, kpi, breakdown, value)].append(key)
        if breakdown != "all":                                          # breakdown values -> all
            groups[(year, level, code, kpi, "all", "all", breakdown)].append(key)
    return [(total[:6], parts) for total, parts in groups.items()]


def exact_relations(rels, truth: pd.DataFrame) -> list:
    """The relations that hold on the true (internal) numbers, for both quantities."""
    values = {q: dict(zip(truth[KEY].itertuples(index=False, name=None), truth[q].fillna(0.0))) for q in QUANTITIES}
    kept = []
    for total, parts in rels:
        if total not in values["numerator"]:
            continue
        if all(abs(values[q][total] - sum(values[q][p] for p in parts)) < 1e-6 for q in QUANTITIES):
            kept.append((total, parts))
    return kept


def recover(results: pd.DataFrame, rels: list) -> dict[tuple, dict[str, float]]:
    """Every blank cell the published numbers determine: {cell: {quantity: value}}."""
    blank = set(results.loc[results["numerator"].isna() | results["is_suppressed"].astype(bool),
                            KEY].itertuples(index=False, name=None))
    by_component: dict[tuple, list] = defaultdict(list)
    for total, parts in rels:
        cells = [total, *parts]
        if any(c in blank for c in cells):
            by_component[(total[0], total[3])].append((total, parts))
    recovered: dict[tuple, dict[str, float]] = {}
    for quantity in QUANTITIES:
        known = dict(zip(results[KEY].itertuples(index=False, name=None), results[quantity]))
        for equations in by_component.values():
            unknowns = sorted({c for total, parts in equations for c in [total, *parts] if c in blank})
            column = {c: i for i, c in enumerate(unknowns)}
            matrix = np.zeros((len(equations), len(unknowns)))
            constants = np.zeros(len(equations))
            for row, (total, parts) in enumerate(equations):   # total - sum(parts) = 0
                for cell, sign in [(total, 1.0)] + [(p, -1.0) for p in parts]:
                    if cell in blank:
                        matrix[row, column[cell]] += sign
                    else:
                        constants[row] -= sign * float(known[cell] if pd.notna(known[cell]) else 0.0)
            _, singular, vt = np.linalg.svd(matrix)
            rank = int((singular > 1e-9 * max(1.0, singular.max(initial=0.0))).sum())
            null_space = vt[rank:]
            solution = np.linalg.lstsq(matrix, constants, rcond=None)[0]
            for cell, i in column.items():
                if null_space.shape[0] == 0 or np.abs(null_space[:, i]).max() < 1e-9:
                    recovered.setdefault(cell, {})[quantity] = float(solution[i])
    return recovered


def attack(out_dir: Path, truth: pd.DataFrame) -> tuple[dict, int]:
    tables = published_tables(out_dir)
    results = tables["published_kpi_results"]
    rels = relations(results, tables["published_geography"])
    exact = exact_relations(rels, truth)
    return recover(results, exact), len(exact)


@pytest.fixture(scope="module")
def truth(marts) -> pd.DataFrame:
    return marts.execute(f"select {', '.join(KEY)}, numerator, denominator from marts.kpi_results").df()


@pytest.fixture(scope="module")
def published(built_warehouse, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("suppression") / "output"
    publish_marts(built_warehouse["warehouse"], out)
    return out


def test_no_suppressed_cell_can_be_recovered_by_subtraction(published, truth, marts):
    recovered, used = attack(published, truth)
    assert used > 10_000, "the attack should have thousands of exact subtractions to try"
    true_den = dict(zip(truth[KEY].itertuples(index=False, name=None), truth["denominator"].fillna(0.0)))
    leaks = {c: v for c, v in recovered.items() if true_den[c] != 0}
    assert leaks == {}, f"{len(leaks)} suppressed cells recoverable, e.g. {list(leaks.items())[:3]}"
    results = published_tables(published)["published_kpi_results"]
    primary = int(marts.execute("select count(*) from marts.kpi_results where is_suppressed").fetchone()[0])
    reasons = results["suppression_reason"].value_counts().to_dict()
    assert reasons.get("small numbers") == primary and reasons.get("complementary", 0) > 0, reasons
    print(f"primary {primary}, complementary {reasons.get('complementary')} of {len(results)} cells")


def test_every_other_published_table_keeps_suppressed_cells_hidden(published):
    tables = published_tables(published)
    results = tables["published_kpi_results"]
    fls = results.loc[(results["geography_level"] == "fls") & (results["breakdown"] == "all")]
    rated = fls.loc[fls["rating"].notna()].groupby(["audit_year", "kpi_number"]).size()
    shares = tables["published_fls_green_shares"].set_index(["audit_year", "kpi_number"])["fls_rated"]
    assert (shares.reindex(rated.index) == rated).all(), "green shares must count published ratings only"
    curves = tables["published_funnel_limits"]
    for (year, kpi), curve in curves.groupby(["audit_year", "kpi_number"]):
        dens = fls.loc[(fls["audit_year"] == year) & (fls["kpi_number"] == kpi), "denominator"].dropna()
        dens = dens[dens > 0]
        assert curve["denominator"].min() == pytest.approx(0.9 * dens.min())
        assert curve["denominator"].max() == pytest.approx(1.1 * dens.max())
    comp = tables["published_kpi_data_completeness"]
    assert comp.loc[comp["is_suppressed"], ["records_measured", "records_recorded", "completeness_pct"]].isna().all().all()


def test_the_attack_recovers_cells_under_a_weak_rule(built_warehouse, truth, tmp_path):
    """The test above can fail: with complements chosen over the breakdown relations only, the
    same attack recovers suppressed cells, and their true numbers."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse["warehouse"], warehouse)
    result = run_dbt(["run", "--select", *SUPPRESSION_MODELS, "--vars", json.dumps(WEAK_RULE)],
                     warehouse, built_warehouse["landing"], tmp_path / "target")
    assert result.returncode == 0, result.stdout[-5000:]
    out = tmp_path / "output"
    publish_marts(warehouse, out)
    recovered, _ = attack(out, truth)
    assert len(recovered) > 100, len(recovered)
    true = {k: (n, d) for k, n, d in zip(truth[KEY].itertuples(index=False, name=None),
                                         truth["numerator"], truth["denominator"])}
    for cell, values in recovered.items():
        for quantity, value in values.items():
            expected = true[cell][QUANTITIES.index(quantity)]
            assert value == pytest.approx(0.0 if pd.isna(expected) else expected, abs=1e-6), (cell, quantity)


# ---------------------------------------------------------------------------------------------
# The monthly series (published_kpi_monthly): the same attack, with the months as cells too.
# ---------------------------------------------------------------------------------------------

LATER = "later months"


def monthly_cells(months: pd.DataFrame) -> pd.DataFrame:
    """Monthly rows as cells of the attack: key (year, level, code, kpi, 'month', 'YYYY-MM')."""
    month = pd.to_datetime(months["month_start"])
    return pd.DataFrame({"audit_year": month.dt.year.astype(int), "geography_level": months["geography_level"],
                         "geography_code": months["geography_code"], "kpi_number": months["kpi_number"].astype(int),
                         "breakdown": "month", "breakdown_value": month.dt.strftime("%Y-%m"),
                         "numerator": months["numerator"], "denominator": months["denominator"],
                         "is_suppressed": months["is_suppressed"]})


def monthly_relations(cells: pd.DataFrame, geography: pd.DataFrame, yearly: set) -> list:
    """The months of a year -> the yearly result (breakdown all; with one blank `later months`
    cell when the year's December is not in the series yet), and FLS -> region -> country ->
    England and Wales for each month."""
    parent = {(r.geography_level, r.geography_code): (r.parent_geography_level, r.parent_geography_code)
              for r in geography.itertuples() if isinstance(r.parent_geography_level, str)}
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for key in cells[KEY].itertuples(index=False, name=None):
        year, level, code, kpi, _, value = key
        groups[(year, level, code, kpi, "all", "all")].append(key)
        if (level, code) in parent:
            p_level, p_code = parent[(level, code)]
            groups[(year, p_level, p_code, kpi, "month", value)].append(key)
    rels = []
    for total, parts in groups.items():
        if total[4] == "all":
            if total not in yearly:
                continue
            if not any(p[5].endswith("-12") for p in parts):
                parts = [*parts, (*total[:4], "month", LATER)]
        rels.append((total, parts))
    return rels


def monthly_attack(out_dir: Path, truth: pd.DataFrame, true_months: pd.DataFrame) -> tuple[dict, int]:
    """Every suppressed month (or yearly result) that the published yearly results and months
    determine, quantity by quantity, using the relations that hold exactly on the true numbers
    (the `later months` cell is given its true value, yearly minus the months, to check them)."""
    tables = published_tables(out_dir)
    yearly = tables["published_kpi_results"]
    months = monthly_cells(tables["published_kpi_monthly"])
    rels = monthly_relations(months, tables["published_geography"],
                             set(yearly[KEY].itertuples(index=False, name=None)))
    rels += relations(yearly, tables["published_geography"])
    later = {p for _, parts in rels for p in parts if p[5] == LATER}
    true_cells = pd.concat([truth, monthly_cells(true_months)[KEY + list(QUANTITIES)]], ignore_index=True)
    values = {q: dict(zip(true_cells[KEY].itertuples(index=False, name=None), true_cells[q].fillna(0.0)))
              for q in QUANTITIES}
    for total, parts in rels:
        for cell in parts:
            if cell in later:
                for q in QUANTITIES:
                    values[q][cell] = values[q][total] - sum(values[q].get(p, 0.0) for p in parts if p != cell)
    published = pd.concat([yearly[KEY + list(QUANTITIES) + ["is_suppressed"]], months,
                           pd.DataFrame([(*c, None, None, True) for c in sorted(later)],
                                        columns=KEY + list(QUANTITIES) + ["is_suppressed"])], ignore_index=True)
    recovered: dict = {}
    used = 0
    for q in QUANTITIES:
        exact = [(t, ps) for t, ps in rels
                 if t in values[q] and abs(values[q][t] - sum(values[q].get(p, 0.0) for p in ps)) < 1e-6]
        used += len(exact)
        for cell, found in recover(published, exact).items():
            if q in found and cell not in later:
                recovered.setdefault(cell, {})[q] = found[q]
    return recovered, used


@pytest.fixture(scope="module")
def true_months(marts) -> pd.DataFrame:
    return marts.execute("select geography_level, geography_code, kpi_number, month_start, numerator, denominator, "
                         "is_suppressed from marts.kpi_monthly").df()


def test_no_suppressed_month_can_be_recovered_by_subtraction(published, truth, true_months):
    recovered, used = monthly_attack(published, truth, true_months)
    assert used > 20_000, used
    # a month with denominator 0 (no record, nothing to hide) may be worked out: it is 0
    true_den = dict(zip(monthly_cells(true_months)[KEY].itertuples(index=False, name=None),
                        true_months["denominator"]))
    leaks = {c: v for c, v in recovered.items() if c[4] == "month" and true_den.get(c, 1.0) != 0}
    assert leaks == {}, f"{len(leaks)} suppressed months recoverable, e.g. {list(leaks.items())[:3]}"
    # and the months give no yearly result away that the yearly tables alone did not
    yearly_only, _ = attack(published, truth)
    extra = {c: v for c, v in recovered.items() if c[4] != "month" and c not in yearly_only}
    assert extra == {}, f"{len(extra)} yearly cells recoverable through the months, e.g. {list(extra.items())[:3]}"
    months = published_tables(published)["published_kpi_monthly"]
    reasons = months["suppression_reason"].value_counts().to_dict()
    assert reasons.get("small numbers") == int(true_months["is_suppressed"].sum())
    assert reasons.get("complementary", 0) > 0, reasons


def test_the_monthly_attack_recovers_months_under_a_weak_rule(built_warehouse, truth, true_months, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse["warehouse"], warehouse)
    result = run_dbt(["run", "--select", *SUPPRESSION_MODELS, "--vars", json.dumps(WEAK_RULE)],
                     warehouse, built_warehouse["landing"], tmp_path / "target")
    assert result.returncode == 0, result.stdout[-5000:]
    out = tmp_path / "output"
    publish_marts(warehouse, out)
    recovered, _ = monthly_attack(out, truth, true_months)
    cells = monthly_cells(true_months)
    true = {k: (n, d) for k, n, d in zip(cells[KEY].itertuples(index=False, name=None),
                                         cells["numerator"], cells["denominator"])}
    months = {c: v for c, v in recovered.items() if c[4] == "month" and true[c][1] != 0}
    assert len(months) > 20, len(months)
    for cell, values in months.items():
        for quantity, value in values.items():
            assert value == pytest.approx(true[cell][QUANTITIES.index(quantity)], abs=1e-6), (cell, quantity)


# ---------------------------------------------------------------------------------------------
# The SPC lines of published_kpi_monthly and published_kpi_spc_summary (docs/specification/kpi-definitions.md,
# "SPC lines"): the centre is the mean of a group's baseline points and the limits add its average
# moving range, so a reader who knows which months are points (the worst case) gets the sum of the
# withheld baseline values from the centre: n x centre - the published ones.
# ---------------------------------------------------------------------------------------------

# Lines published unless 1 or 2 baseline points are withheld: a group whose points are all withheld
# then shows its mean and limits, the leak the rule closes.
WEAK_LINES_RULE = {"spc_lines_min_published_share": 0}
LINES = ["centre_pct", "lower_limit_pct", "upper_limit_pct", "lower_near_limit_pct", "upper_near_limit_pct"]
SERIES = ["geography_level", "geography_code", "kpi_number"]


def spc_line_problems(out_dir: Path, warehouse: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """{problem: [group or cell]} of the published SPC lines and summary, read from the published
    file and checked against the true chart (marts.kpi_monthly, the baseline of
    intermediate.int_spc_months_grouped); empty lists when they hide what they must."""
    tables = published_tables(out_dir)
    months, summary = tables["published_kpi_monthly"], tables["published_kpi_spc_summary"]
    truth = warehouse.execute(
        "select m.geography_level, m.geography_code, m.kpi_number, m.month_start, m.value_pct as true_value_pct, "
        "m.centre_pct as true_centre_pct, m.upper_limit_pct as true_upper_limit_pct, "
        "coalesce(g.is_baseline_point, false) as is_baseline_point "
        "from marts.kpi_monthly as m left join intermediate.int_spc_months_grouped as g "
        "using (geography_level, geography_code, kpi_number, month_start)").df()
    rows = months.merge(truth, on=[*SERIES, "month_start"], how="inner", validate="one_to_one")
    assert len(rows) == len(months) == len(truth)
    problems: dict[str, list] = defaultdict(list)
    for group, g in rows.groupby([*SERIES, "spc_group"]):
        base = g.loc[g["is_baseline_point"]]
        hidden = base.loc[base["is_suppressed"].astype(bool)]
        shows = g[LINES].notna().any().any()
        if shows and len(hidden) and len(hidden) == len(base):
            problems["lines of a group whose points are all withheld"].append(group)
        if shows and len(hidden) == 1:
            # the attack: n x mean - the published values gives the withheld one
            centre = g["centre_pct"].dropna().iloc[0]
            value = len(base) * centre - base.loc[~base["is_suppressed"].astype(bool), "value_pct"].sum()
            assert value == pytest.approx(hidden["true_value_pct"].iloc[0], abs=1e-6), group
            problems["a withheld value worked out from the mean"].append((group, value))
        if shows and len(hidden) == 2:
            problems["lines that leave 2 withheld values to solve for"].append(group)
        if shows and len(hidden) and len(base) - len(hidden) < 0.5 * len(base):
            problems["lines of a group with fewer than half its points published"].append(group)
        if g["true_centre_pct"].notna().any() and g["centre_pct"].isna().all() and g["spc_lines_withheld_reason"].isna().any():
            problems["lines withheld without a reason"].append(group)
        shown = g.loc[g["centre_pct"].notna()]
        if ((shown["centre_pct"] != shown["true_centre_pct"]).any()
                or (shown["upper_limit_pct"].fillna(-1.0) != shown["true_upper_limit_pct"].fillna(-1.0)).any()):
            problems["a published line differs from the chart"].append(group)
    for r in months.loc[months["is_suppressed"].astype(bool) & months["suppression_reason"].isna()].itertuples():
        problems["a withheld month without a reason"].append((r.geography_code, r.kpi_number, r.month_start))
    s = summary.merge(months[[*SERIES, "month_start", "suppression_reason", "spc_lines_withheld_reason"]].rename(
        columns={"month_start": "latest_point_month_start", "suppression_reason": "month_reason",
                 "spc_lines_withheld_reason": "month_lines_reason"}), on=[*SERIES, "latest_point_month_start"], how="left")
    for r in s.itertuples():
        if r.is_latest_point_suppressed and (r.latest_point_suppression_reason != r.month_reason
                                             or pd.notna(r.latest_value_pct) or pd.notna(r.variation)):
            problems["a withheld latest point shown, or without its month's reason"].append((r.geography_code, r.kpi_number))
        if r.spc_lines_withheld and (r.spc_lines_withheld_reason != r.month_lines_reason
                                     or pd.notna(r.assurance) or pd.notna(r.latest_centre_pct)):
            problems["withheld summary lines shown, or without their group's reason"].append((r.geography_code, r.kpi_number))
    return dict(problems)


def test_spc_lines_give_no_withheld_month_away_and_every_withheld_cell_says_why(published, marts):
    problems = spc_line_problems(published, marts)
    assert problems == {}, {k: (len(v), v[:3]) for k, v in problems.items()}
    months = published_tables(published)["published_kpi_monthly"]
    withheld = months.loc[months["spc_lines_withheld"].astype(bool)]
    reasons = withheld.groupby([*SERIES, "spc_group"])["spc_lines_withheld_reason"].first().value_counts().to_dict()
    assert reasons.get("most months withheld", 0) > 0 and reasons.get("complementary", 0) > 0, reasons
    print(f"SPC groups with their lines withheld, by reason: {reasons}")


def test_the_spc_line_check_finds_leaks_under_a_weak_rule(built_warehouse, tmp_path):
    """The test above can fail: with lines published whenever 3 or more points are withheld, the
    groups whose points are all withheld show their mean and limits."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(built_warehouse["warehouse"], warehouse)
    result = run_dbt(["run", "--select", "published_kpi_monthly+", "--vars", json.dumps(WEAK_LINES_RULE)],
                     warehouse, built_warehouse["landing"], tmp_path / "target")
    assert result.returncode == 0, result.stdout[-5000:]
    out = tmp_path / "output"
    publish_marts(warehouse, out)
    connection = duckdb.connect(str(warehouse), read_only=True)
    try:
        problems = spc_line_problems(out, connection)
    finally:
        connection.close()
    assert len(problems.get("lines of a group whose points are all withheld", [])) > 0, problems.keys()
    assert len(problems.get("lines of a group with fewer than half its points published", [])) > 0, problems.keys()
