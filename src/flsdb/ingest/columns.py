"""The contract columns as the loader names them, and the quoting of names and literals in the
SQL text the loader builds (from the contract and the registry path only, never from a file's
content: values travel through the CSV reader, parameters and registered Arrow tables).

Importing it also lifts the csv module's field limit, for every module of the package."""

from __future__ import annotations

import csv
import sys

from flsdb import contract

# A 50 MB free-text value must not make Python's csv module give up (its default limit is 128 KB).
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

CONTRACT_COLUMNS: list[str] = list(contract.COLUMNS)
FRACTURE = "1.09 Date Index Frac Diagnosed"
BIRTH = "1.02 Date of Birth"
LAST_UPDATED = "Last Updated"
NHS = "1.01 NHS Number"
FLS = "FLS Code"
SITE = "1.11 SiteFirstFrac"
REQUIRED_DATES = (LAST_UPDATED, BIRTH, FRACTURE)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
