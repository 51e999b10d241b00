"""dbt-duckdb plugin: hands the pseudonymisation key to SQL without writing it anywhere.

The staging model computes HMAC-SHA256 pseudonyms in SQL. If the key were a literal in the SQL it
would be written to target/compiled, to dbt's logs and into the warehouse catalog. Instead this
plugin registers a SQL function `flsdb_pseudonym_key()` on every connection dbt opens, which reads
the key from the environment variable FLSDB_PSEUDONYM_KEY at query time.

Without the variable it returns DEVELOPMENT_KEY, a fixed and clearly labelled key fit for synthetic
data only; the staging model refuses to run with it when var('data_is_synthetic') is false.
"""

from __future__ import annotations

from dbt.adapters.duckdb.plugins import BasePlugin

from flsdb.pseudonym_key import (  # noqa: F401  (re-exported: the plugin's public names)
    DEVELOPMENT_KEY, KEY_VARIABLE, MAX_KEY_LENGTH, MIN_KEY_BYTES, check_pseudonym_key)


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
