"""Withdrawing data at the raw level (src/flsdb/ingest/withdraw.py, `flsdb withdraw`) and files
deleted from the landing folder (outcomes.note_missing_from_landing): hostile input, round 3
(issue 19). What staging, the marts, the data-quality facts and the history then do is tested
end to end in tests/python/ingest/test_withdraw.py. Helpers: ingest_env.py."""

from __future__ import annotations

import shutil

import pytest

from flsdb.ingest import withdraw as w

from ingest_env import (  # noqa: F401  (load_env is a fixture)
    assert_counts_balance, csv_text, good_row, load_env)
from test_hostile_input import all_accounted


def _three_files(env):
    env.write("a.csv", csv_text([good_row(i) for i in range(3)]))
    env.write("sub/b.csv", csv_text([good_row(10 + i, **{"FLS Code": "RX2"}) for i in range(2)]))
    env.write("c.csv", csv_text([good_row(20, **{"Record ID": " R-OBJ "}),
                                 good_row(21, **{"FLS Code": " rx1 ", "Record ID": "R-OBJ"})]))
    return env.load()


def _withdraw(env, **kw):
    return w.withdraw(env.warehouse, by=kw.pop("by", "Audit Lead"),
                      reason=kw.pop("reason", "wrong file"), landing=env.landing, **kw)


# --- withdrawing -----------------------------------------------------------------------------------

def test_a_file_is_withdrawn_by_name_path_or_sha_once(load_env):
    _three_files(load_env)
    (sha,), = load_env.q("SELECT file_sha256 FROM raw.load_files WHERE source_file = 'sub/b.csv'")
    first = _withdraw(load_env, file="sub/b.csv")
    assert first.created and first.withdrawal.rows_covered == 2
    assert str(first).startswith("Withdrawn: file sub/b.csv")
    for spec in (str(load_env.landing / "sub" / "b.csv"), f"sha256:{sha[:10]}", "sub/b.csv"):
        again = _withdraw(load_env, file=spec, by="someone else")
        assert not again.created and again.withdrawal.withdrawal_id == 1, spec
        assert str(again).startswith("Already withdrawn: withdrawal 1")
    assert load_env.q("SELECT withdrawal_id, withdrawal_kind, file_sha256, source_file, "
                      "withdrawn_by, reason FROM raw.withdrawals") == [
        (1, "file", sha, "sub/b.csv", "Audit Lead", "wrong file")]
    # nothing is deleted from raw: the counts still hold
    assert load_env.q("SELECT count(*) FROM raw.submission_records WHERE _file_sha256 = ?", [sha]) \
        == [(2,)]
    assert_counts_balance(load_env)


def test_a_file_gone_from_the_landing_folder_is_withdrawn_by_the_name_it_was_loaded_under(load_env):
    _three_files(load_env)
    (load_env.landing / "a.csv").unlink()
    out = _withdraw(load_env, file="a.csv")
    assert out.created and out.withdrawal.rows_covered == 3


def test_a_record_is_matched_as_staging_reads_it_in_every_file(load_env):
    _three_files(load_env)
    out = w.withdraw(load_env.warehouse, by="Caldicott Guardian", reason="patient objection",
                     record="  Rx1 :R-OBJ ")
    assert out.created and out.withdrawal.rows_covered == 2        # ' R-OBJ ' and ' rx1 '
    again = w.withdraw(load_env.warehouse, by="x", reason="y", record="RX1:R-OBJ")
    assert not again.created
    none_yet = w.withdraw(load_env.warehouse, by="x", reason="objection", record="RX1:NOT-YET")
    assert none_yet.created and none_yet.withdrawal.rows_covered == 0
    assert "also covers any later submission" in str(none_yet)
    # a record ID holding a colon: split at the first colon only
    assert w.parse_record("RX1:a:b") == ("RX1", "a:b")


def test_revoking_is_recorded_and_idempotent_and_listed(load_env):
    _three_files(load_env)
    _withdraw(load_env, file="a.csv")
    revoked = w.revoke(load_env.warehouse, 1, by="Audit Lead", reason="the right file after all")
    assert revoked.created and not revoked.withdrawal.is_active
    assert not w.revoke(load_env.warehouse, 1, by="x", reason="y").created
    # withdrawing again after a revocation is a new withdrawal
    assert _withdraw(load_env, file="a.csv").withdrawal.withdrawal_id == 2
    listed = w.format_list(w.list_withdrawals(load_env.warehouse))
    assert "2 withdrawal(s) (1 active)" in listed and "REVOKED by Audit Lead" in listed
    with pytest.raises(w.WithdrawError, match="no withdrawal 9"):
        w.revoke(load_env.warehouse, 9, by="x", reason="y")


@pytest.mark.parametrize("spec,error,needle", [
    ("nope.csv", w.WithdrawError, "No loaded file loaded as 'nope.csv'"),
    ("sha256:0000000000", w.WithdrawError, "No loaded file whose sha256 starts with"),
    ("sha256:12", ValueError, "at least 8 hexadecimal"),
])
def test_a_file_that_was_never_loaded_cannot_be_withdrawn(load_env, spec, error, needle):
    _three_files(load_env)
    with pytest.raises(error, match=needle):
        _withdraw(load_env, file=spec)


def test_a_file_in_the_landing_folder_not_yet_loaded_says_to_remove_it(load_env):
    _three_files(load_env)
    load_env.write("new.csv", csv_text([good_row(40)]))
    with pytest.raises(w.WithdrawError, match="never been loaded.*remove it from the landing"):
        _withdraw(load_env, file="new.csv")


def test_several_contents_under_one_name_must_be_told_apart(load_env):
    _three_files(load_env)
    load_env.write("a.csv", csv_text([good_row(i) for i in range(4)]))      # a new version
    load_env.load()
    (load_env.landing / "a.csv").unlink()
    with pytest.raises(w.WithdrawError, match="2 different contents.*sha256:"):
        _withdraw(load_env, file="a.csv")


@pytest.mark.parametrize("reason", ["NHS 943 476 5919 objected", "born 14/03/1941",
                                    "lives at SW1A 2AA", "   "])
def test_a_reason_with_an_identifier_or_nothing_is_refused(load_env, reason):
    _three_files(load_env)
    with pytest.raises(ValueError, match="--reason"):
        _withdraw(load_env, file="a.csv", reason=reason)
    assert load_env.q("SELECT count(*) FROM raw.withdrawals") == [(0,)]


# --- files deleted from the landing folder ----------------------------------------------------------

def test_a_deleted_file_is_reported_and_not_withdrawn_a_moved_or_replaced_one_is_not(load_env):
    _three_files(load_env)
    (load_env.landing / "a.csv").unlink()                                   # deleted
    shutil.move(load_env.landing / "sub" / "b.csv", load_env.landing / "b_moved.csv")   # moved
    load_env.write("c.csv", csv_text([good_row(30)]))                      # replaced (new version)
    result = load_env.load()
    all_accounted(load_env, result)
    assert [m.source_file for m in result.missing] == ["a.csv"]
    table = result.summary_table()
    assert "MISSING a.csv" in table and "flsdb withdraw --file" in table
    assert "their rows still count" in table
    (since,), = load_env.q("SELECT missing_since FROM raw.load_files WHERE source_file = 'a.csv'")
    assert since is not None
    assert load_env.q("SELECT count(*) FROM raw.withdrawals") == [(0,)]     # never automatic
    # the next load reports it again, with the same first-noticed time
    again = load_env.load()
    assert [(m.source_file, m.missing_since) for m in again.missing] == [("a.csv", since)]
    # put back: no longer missing
    load_env.write("a.csv", csv_text([good_row(i) for i in range(3)]))
    back = load_env.load()
    assert back.missing == []
    assert load_env.q("SELECT missing_since FROM raw.load_files WHERE source_file = 'a.csv'") \
        == [(None,)]


def test_a_withdrawn_file_deleted_from_the_landing_folder_is_not_reported(load_env):
    _three_files(load_env)
    _withdraw(load_env, file="a.csv")
    (load_env.landing / "a.csv").unlink()
    assert load_env.load().missing == []


def test_a_rejected_file_deleted_from_the_landing_folder_is_not_reported(load_env):
    load_env.write("bad.csv", b"")
    load_env.write("good.csv", csv_text([good_row(1)]))
    load_env.load()
    (load_env.landing / "bad.csv").unlink()
    assert load_env.load().missing == []                # nothing of it was in the audit
