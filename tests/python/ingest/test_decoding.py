"""Hostile input at decoding (src/flsdb/ingest/decoding.py), round 2: the encoding is never a
silent change (Windows-1252 only when certain). Helpers: test_hostile_input.py and test_load.py."""

from __future__ import annotations

import pytest

from test_hostile_input import all_accounted
from test_load import csv_text, good_row, load_env  # noqa: F401  (load_env: a fixture)


# --- 4. Encoding: never a silent change ------------------------------------------------------

def _names_file(names: list[str]) -> str:
    return csv_text([good_row(i, **{"Record ID": f"R-{v}"}) for i, v in enumerate(names)])


NAMES = ["José", "Zoë", "Müller", "Françoise", "Øyvind", "Straße", "Muñoz", "O’Brien"]


@pytest.mark.parametrize("stray", [b"\xe9", b"\x92", b"\x80", b"\xa3", b"\xfc", b"\xff"])
def test_utf8_file_with_a_stray_single_byte_is_rejected_not_mojibake(load_env, stray):
    data = _names_file(NAMES).encode("utf-8")
    lines = data.split(b"\n")
    lines[4] = lines[4].replace(b"R-", b"R" + stray + b"-", 1)      # one stray byte on line 5
    load_env.write("mixed.csv", b"\n".join(lines))
    result = load_env.load()
    all_accounted(load_env, result)
    status, reason, *_ = load_env.file_row("mixed.csv")
    assert status == "rejected" and "Mixed encoding" in reason and "line 5" in reason, reason
    assert load_env.q("SELECT count(*) FROM raw.submission_records") == [(0,)]


@pytest.mark.parametrize("names", [["José"], ["Zoë"], ["Muñoz"], ["Straße"], ["Øyvind"],
                                   ["O’Brien", "don’t"], NAMES])
def test_macroman_file_is_rejected_not_mojibake(load_env, names):
    load_env.write("mac.csv", _names_file(names).encode("mac_roman"))
    result = load_env.load()
    all_accounted(load_env, result)
    status, reason, *_ = load_env.file_row("mac.csv")
    assert status == "rejected" and "encoding" in reason and "line " in reason, reason


@pytest.mark.parametrize("names", [["José"], ["Zoë", "Müller"], ["Françoise", "€5 fee"],
                                   ["José’s"], ["Renée", "Søren"]])
def test_windows_1252_file_is_decoded_only_when_certain(load_env, names):
    load_env.write("win.csv", _names_file(names).encode("cp1252"))
    result = load_env.load()
    all_accounted(load_env, result)
    assert load_env.file_row("win.csv")[0] == "loaded"
    stored = sorted(r[0] for r in load_env.q('SELECT "Record ID" FROM raw.submission_records'))
    assert stored == sorted(f"R-{n}" for n in names)               # exactly, no mojibake


def test_no_stored_value_is_mojibake_after_any_encoding_case(load_env):
    for i, enc in enumerate(["utf-8", "cp1252", "mac_roman", "latin-1", "utf-8-sig"]):
        try:
            load_env.write(f"enc_{i}.csv", _names_file(NAMES[:3]).encode(enc))
        except UnicodeEncodeError:
            continue
    result = load_env.load()
    all_accounted(load_env, result)
    dump = str(load_env.q("SELECT * FROM raw.submission_records"))
    for mojibake in ("Ã", "Â", "Ž", "Ë", "Š", "\ufffd"):
        assert mojibake not in dump
