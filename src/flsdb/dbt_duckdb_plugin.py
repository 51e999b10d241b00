"""dbt-duckdb plugin: hands the pseudonymisation key to SQL without writing it anywhere.

The staging model computes HMAC-SHA256 pseudonyms in SQL. If the key were a literal in the SQL it
would be written to target/compiled, to dbt's logs and into the warehouse catalog. Instead this
plugin registers a SQL function `flsdb_pseudonym_key()` on every connection dbt opens, which reads
the key from the environment variable FLSDB_PSEUDONYM_KEY at query time.

Without the variable it returns DEVELOPMENT_KEY, a fixed and clearly labelled key fit for synthetic
data only; the staging model refuses to run with it when var('data_is_synthetic') is false.
"""

from __future__ import annotations

import os

from dbt.adapters.duckdb.plugins import BasePlugin

KEY_VARIABLE = "FLSDB_PSEUDONYM_KEY"
DEVELOPMENT_KEY = "DEVELOPMENT-KEY-SYNTHETIC-DATA-ONLY"
MAX_KEY_LENGTH = 64  # HMAC-SHA256 block size: longer keys would need hashing first


MIN_KEY_BYTES = 32  # outside development mode; an HMAC key should be as long as its hash


def check_pseudonym_key() -> str:
    """The pseudonym key, checked: the one check, used by the SQL function below (every build)
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


def pseudonym_key() -> str:
    return check_pseudonym_key()


class Plugin(BasePlugin):
    def configure_connection(self, conn) -> None:
        from duckdb import sqltypes

        try:
            conn.create_function("flsdb_pseudonym_key", pseudonym_key, [], sqltypes.VARCHAR,
                                 side_effects=False)
        except Exception as error:  # already registered on this connection
            if "already exists" not in str(error):
                raise
