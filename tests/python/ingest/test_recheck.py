"""`flsdb recheck-rejects` (src/flsdb/ingest/recheck.py), round 2: rejects re-checked after the
registry gains an FLS. Helpers: test_hostile_input.py and ingest_env.py."""

from __future__ import annotations

from ingest_env import (  # noqa: F401  (load_env is a fixture)
    assert_counts_balance, csv_text, good_row, load_env)
from test_hostile_input import all_accounted


# --- 8. Re-checking rejects after the registry gains an FLS ----------------------------------

def test_recheck_rejects_after_the_registry_gains_an_fls(load_env):
    from click.testing import CliRunner
    from flsdb.cli import main as cli

    rows = [good_row(0), good_row(1, **{"FLS Code": "NEW1"}),
            good_row(2, **{"FLS Code": " new1\u00a0", "1.09 Date Index Frac Diagnosed": "2015-03-01"}),
            good_row(3, **{"FLS Code": "ZZZ9"}), good_row(4, **{"FLS Code": "NEW1"})]
    load_env.write("x.csv", csv_text(rows))
    load_env.write("y.csv", csv_text([good_row(9, **{"FLS Code": "NEW1"})]))
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.q("SELECT sum(rows_rejected) FROM raw.load_files") == [(5,)]
    runner = CliRunner()
    args = ["recheck-rejects", "--warehouse", str(load_env.warehouse), "--registry",
            str(load_env.registry)]
    out = runner.invoke(cli, args)
    assert out.exit_code == 0 and "0 accepted" in out.output, out.output     # nothing new yet
    load_env.registry.write_text(load_env.registry.read_text() + "NEW1,New service\n")
    out = runner.invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert "3 accepted" in out.output and "1 still rejected" in out.output
    assert load_env.file_row("x.csv")[:5] == ("loaded", None, 5, 3, 2)
    assert load_env.file_row("y.csv")[:5] == ("loaded", None, 1, 1, 0)
    assert load_env.q('SELECT "Record ID", _source_file, _line_number, _load_order '
                      "FROM raw.submission_records ORDER BY 1") == [
        ("R00000", "x.csv", 2, 1), ("R00001", "x.csv", 3, 1), ("R00004", "x.csv", 6, 1),
        ("R00009", "y.csv", 2, 2)]
    assert load_env.q("SELECT _line_number, reject_code FROM raw.submission_rejects "
                      "ORDER BY 1") == [(4, "fracture_before_2016"), (5, "unknown_fls_code")]
    assert load_env.q("SELECT sum(rows_accepted_on_recheck) FROM raw.load_files") == [(3,)]
    assert_counts_balance(load_env)
    out = runner.invoke(cli, args)                                  # idempotent
    assert "0 row(s)" in out.output and load_env.file_row("x.csv")[:5] == ("loaded", None, 5, 3, 2)
