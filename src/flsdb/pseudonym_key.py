"""The pseudonymisation key: the one check of FLSDB_PSEUDONYM_KEY, used by the dbt-duckdb plugin
(flsdb.dbt_duckdb_plugin, every build) and by the CLI's start-up checks (flsdb.settings). Kept apart
from the plugin so that checking the key does not import dbt (seconds of start-up for every
`flsdb` command).
"""

from __future__ import annotations

import os

KEY_VARIABLE = "FLSDB_PSEUDONYM_KEY"
DEVELOPMENT_KEY = "DEVELOPMENT-KEY-SYNTHETIC-DATA-ONLY"
MAX_KEY_LENGTH = 64  # HMAC-SHA256 block size: longer keys would need hashing first


MIN_KEY_BYTES = 32  # outside development mode; an HMAC key should be as long as its hash


def check_pseudonym_key() -> str:
    """The pseudonym key, checked: the one check, used by the plugin's SQL function (every build)
    and by the CLI before dbt starts. Development mode is FLSDB_PSEUDONYM_KEY unset: the labelled
    development key (the staging model refuses it for real data). A key that is set must be
    ASCII, at most 64 characters, and at least 32 bytes once whitespace around it is stripped
    (a one-character or blank key would make pseudonyms easy to reverse)."""
    given = os.environ.get(KEY_VARIABLE)
    if given is None or given == "":
        return DEVELOPMENT_KEY
    if len(given) > MAX_KEY_LENGTH or not given.isascii():
        raise ValueError(f"{KEY_VARIABLE} must be at most {MAX_KEY_LENGTH} ASCII characters")
    if len(given.strip().encode("ascii")) < MIN_KEY_BYTES:
        raise ValueError(
            f"{KEY_VARIABLE} is too short: {len(given.strip())} bytes after stripping whitespace; "
            f"a pseudonym key must be at least {MIN_KEY_BYTES} bytes (for example the output of "
            "`openssl rand -hex 32`). Unset it only for synthetic data (development mode).")
    return given
