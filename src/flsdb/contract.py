"""The raw submission contract of docs/specification/submission-format.md, as data.

The contract is held once, in files the SQL reads too, so that the generator, the loader, the
staging models and the GX suites cannot disagree (DEVELOPERS.md, "The submission contract"):

- the field list (raw name, staged name, kind, check, required, identifier, KPI 1 key field, when
  it counts as recorded and what it is measured over): the seed seeds/submission_fields.csv, which
  the staging macros read at compile time (macros/submission_fields.sql);
- the code lists, the date formats, the earliest fracture date, the age limits and the KPI 1
  follow-up due days: the vars of dbt_project.yml.

This module only reads them; `tests/python/test_submission_contract.py` fails when a copy of
any of them is written out elsewhere.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass


def _dbt_vars() -> dict:
    """The project vars of dbt_project.yml, where the code lists live once for SQL and Python."""
    import yaml

    from flsdb.paths import PROJECT_DIR

    with open(PROJECT_DIR / "dbt_project.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)["vars"]


@dataclass(frozen=True)
class Field:
    """One raw column of the contract: a row of seeds/submission_fields.csv."""
    number: int
    column_name: str
    staged_name: str
    kind: str                 # text, timestamp, date, nhs_number, postcode, code, number, integer
    code_list: str | None
    min_value: str | None     # as written in the seed (numbers and integers)
    max_value: str | None
    date_rule: str | None     # not_before_fracture, or none
    max_days_after_fracture: int | None
    is_required: bool
    is_identifier: bool
    is_kpi_1_key_field: bool
    kpi_1_recorded_when: str | None   # SQL over the staged columns
    kpi_1_measured_over: str | None   # a flag of int_episodes_kpi_flagged, or none: every record

    @property
    def contract_kind(self) -> str:
        """The kind as one word: text, timestamp, date, nhs_number, postcode, code:<list>,
        number:<min>:<max> or integer:<min>:<max>."""
        if self.kind == "code":
            return f"code:{self.code_list}"
        if self.kind in ("number", "integer"):
            return f"{self.kind}:{self.min_value}:{self.max_value}"
        return self.kind


def _read_fields() -> tuple[Field, ...]:
    from flsdb.paths import PROJECT_DIR

    with open(PROJECT_DIR / "seeds" / "submission_fields.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))

    def text(value: str) -> str | None:
        return value.strip() or None

    fields = [Field(
        number=int(row["field_number"]), column_name=row["column_name"],
        staged_name=row["staged_name"], kind=row["kind"], code_list=text(row["code_list"]),
        min_value=text(row["min_value"]), max_value=text(row["max_value"]),
        date_rule=text(row["date_rule"]),
        max_days_after_fracture=int(row["max_days_after_fracture"]) if text(row["max_days_after_fracture"]) else None,
        is_required=row["is_required"] == "true", is_identifier=row["is_identifier"] == "true",
        is_kpi_1_key_field=row["is_kpi_1_key_field"] == "true",
        kpi_1_recorded_when=text(row["kpi_1_recorded_when"]),
        kpi_1_measured_over=text(row["kpi_1_measured_over"]),
    ) for row in rows]
    return tuple(sorted(fields, key=lambda field: field.number))


_VARS = _dbt_vars()
FIELDS: tuple[Field, ...] = _read_fields()
DRUGS: tuple[str, ...] = tuple(_VARS["named_drugs"])
YES_NO_NK: tuple[str, ...] = tuple(_VARS["submission_code_lists"]["yes_no_not_known"])
SITES: tuple[str, ...] = tuple(_VARS["submission_code_lists"]["fracture_site"])

# Column name -> contract kind (Field.contract_kind), in docs/specification/submission-format.md's order.
COLUMNS: dict[str, str] = {field.column_name: field.contract_kind for field in FIELDS}
REQUIRED_COLUMNS: tuple[str, ...] = tuple(f.column_name for f in FIELDS if f.is_required)
KPI_1_KEY_FIELDS: tuple[Field, ...] = tuple(f for f in FIELDS if f.is_kpi_1_key_field)
# A follow-up flag of int_episodes_kpi_flagged -> days after the fracture from which a record
# is due (var follow_up_due_days: 16 weeks, and 56 weeks, the end of the 48-56 week window).
FOLLOW_UP_DUE_DAYS: dict[str, int] = {name: int(days) for name, days in _VARS["follow_up_due_days"].items()}

# An item that is itself a list (the named drugs, written once as *named_drugs in dbt_project.yml)
# stands for its codes, in their order (as code_list() in macros/submission_fields.sql).
CODE_LISTS: dict[str, tuple[str, ...]] = {
    name: tuple(code for item in codes for code in ([item] if isinstance(item, str) else item))
    for name, codes in _VARS["submission_code_lists"].items()
}

# How a coded answer is read (dbt_project.yml, the coded-answer block): whitespace of any kind
# around it is removed and runs inside become one space (CODE_WHITESPACE_PATTERN, an RE2 pattern
# for DuckDB and Spark SQL), then it is matched case-insensitively against its codes and their
# documented wordings.
CODE_WHITESPACE_PATTERN: str = _VARS["code_whitespace_pattern"]


def code_wordings(list_name: str) -> dict[str, str]:
    """The documented wordings of the codes of list_name (docs/specification/submission-format.md), wording -> code: the
    explicit ones of var submission_code_wordings, and for a drug list with a wording suffix
    every named drug followed by it. The same derivation is in macros/submission_fields.sql."""
    wordings = dict(_VARS.get("submission_code_wordings", {}).get(list_name, {}))
    suffix = _VARS.get("named_drug_wording_suffixes", {}).get(list_name)
    if suffix:
        wordings.update({f"{drug} {suffix}": drug for drug in DRUGS})
    return wordings


# Earliest index fracture date the audit accepts, and the age limits (vars of dbt_project.yml).
EARLIEST_FRACTURE_DATE: str = str(_VARS["earliest_fracture_date"])
MAX_AGE_YEARS: int = int(_VARS["maximum_age"])
MIN_AGE_YEARS: int = int(_VARS["minimum_age"])


# The date and timestamp formats of docs/specification/submission-format.md, as strftime codes (vars
# submission_date_formats and submission_timestamp_formats). DuckDB's strptime parses them; the staging macros
# (macros/cross_engine/parse_submission_date.sql) and the GX suites use them as they are. The
# loader accepts each in its written, zero-padded form only (strict_format_regex): a four-digit
# year not starting with 0, two-digit month, day, hour, minute and second.
DATE_FORMATS: tuple[str, ...] = tuple(_VARS["submission_date_formats"])
TIMESTAMP_FORMATS: tuple[str, ...] = tuple(_VARS["submission_timestamp_formats"])

_STRICT_CODES = {"Y": r"[1-9]\d{3}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}",
                 "S": r"\d{2}"}
_CODE_WORDS = {"Y": "YYYY", "m": "MM", "d": "DD", "H": "HH", "M": "MM", "S": "SS"}
_REGEX_SPECIAL = set(r".^$*+?()[]{}|\\")


def _translate(fmt: str, codes: dict[str, str], literal) -> str:
    out, i = [], 0
    while i < len(fmt):
        if fmt[i] == "%":
            if fmt[i + 1 : i + 2] not in codes:
                raise ValueError(f"date format {fmt!r}: %{fmt[i + 1 : i + 2]} is not supported")
            out.append(codes[fmt[i + 1]])
            i += 2
        else:
            out.append(literal(fmt[i]))
            i += 1
    return "".join(out)


def strict_format_regex(fmt: str) -> str:
    """The RE2/Python regex (to match the whole text) of fmt as the loader accepts it."""
    return _translate(fmt, _STRICT_CODES, lambda c: "\\" + c if c in _REGEX_SPECIAL else c)


def format_wording(formats: tuple[str, ...]) -> str:
    """formats as a reader writes them: 'YYYY-MM-DD or DD/MM/YYYY'."""
    return " or ".join(_translate(fmt, _CODE_WORDS, lambda c: c) for fmt in formats)


# NHS number normalisation (docs/reliability.md): whitespace of any kind and hyphens are removed;
# what is left must be exactly 10 ASCII digits 0-9 (never a superscript, circled, full-width or
# other script's digit, which str.isdigit() would accept), with a correct modulus-11 check digit,
# and not one digit repeated ten times (0000000000 and 1111111111 pass modulus 11 but are
# placeholders that would merge patients).
_NHS_SEPARATORS = re.compile(r"[\s\u00a0\u2007\u202f\u200b\ufeff-]+")
_NHS_ASCII_DIGITS = re.compile(r"[0-9]{10}", re.ASCII)


def normalise_nhs_number(value: str) -> str:
    """value with whitespace (any kind) and hyphens removed: the documented normalisation."""
    return _NHS_SEPARATORS.sub("", value)


def nhs_number_problem(value: str | None) -> str | None:
    """Why value is not a valid NHS number (plain English, never repeating it), or None."""
    if value is None:
        return "it is missing"
    digits = normalise_nhs_number(value)
    if not digits.isascii() or any(not c.isascii() for c in digits):
        return ("it contains a character that is not an ASCII digit 0-9 (such as a superscript, "
                "circled, full-width or other script's digit)")
    if not _NHS_ASCII_DIGITS.fullmatch(digits):
        return "it must be 10 digits 0-9 (spaces or hyphens allowed)"
    if len(set(digits)) == 1:
        return "it is one digit repeated ten times, a placeholder, not a patient's number"
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10 or check != int(digits[9]):
        return "its modulus-11 check digit is wrong"
    return None


def nhs_number_is_valid(digits: str) -> bool:
    """True when digits is a valid NHS number (see nhs_number_problem)."""
    return nhs_number_problem(digits) is None
