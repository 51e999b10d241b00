"""The raw submission contract of ../shared/fls-db/dataset.md, as data.

One place for the column names and their kinds, so that the generator, the loader and the tests
agree with each other. The code lists themselves live once, in the vars of dbt_project.yml,
which the staging models read too.
"""

from __future__ import annotations

import re

def _dbt_vars() -> dict:
    """The project vars of dbt_project.yml, where the code lists live once for SQL and Python."""
    import yaml

    from flsdb.paths import PROJECT_DIR

    with open(PROJECT_DIR / "dbt_project.yml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)["vars"]


_VARS = _dbt_vars()
DRUGS: tuple[str, ...] = tuple(_VARS["named_drugs"])
YES_NO_NK = ("Yes", "No", "Not known")
SITES: tuple[str, ...] = tuple(_VARS["submission_code_lists"]["fracture_site"])

# Column name -> contract kind. Kinds: text, timestamp, date, nhs_number, postcode, code:<list>,
# number:<min>:<max>, integer:<min>:<max>.
COLUMNS: dict[str, str] = {
    "FLS Code": "text",
    "Record ID": "text",
    "Last Updated": "timestamp",
    "1.01 NHS Number": "nhs_number",
    "1.02 Date of Birth": "date",
    "1.03 Gender": "code:gender",
    "1.04 Post Code": "postcode",
    "1.05 CareRes": "code:yes_no_not_known",
    "1.06 DateFLSContact": "date",
    "1.07 DateFLSAssess": "date",
    "1.08 AdmitHosp": "code:yes_no_not_known",
    "1.09 Date Index Frac Diagnosed": "date",
    "1.10 TypeOfFracture": "code:fracture_type",
    "1.11 SiteFirstFrac": "code:fracture_site",
    "1.12 SiteSecFrac": "code:fracture_site",
    "1.13 SiteThirdFrac": "code:fracture_site",
    "2.01 Height": "number:100:230",
    "2.02 Weight": "number:25:250",
    "2.03 PrevFracHist": "code:yes_no_not_known",
    "2.04 FamHipFracHist": "code:yes_no_not_known",
    "2.05 Smoker": "code:yes_no_not_known",
    "2.06 BoneSpareTherapy": "code:yes_no_not_known",
    "3.01 DXA": "code:dxa",
    "3.02 DXANotOrdered": "code:dxa_not_ordered",
    "3.03 DateofDXA": "date",
    "3.04 TScore": "number:-6:4",
    "3.05 RiskOfFracture": "number:0:100",
    "4.01 BoneTherapy": "code:bone_therapy_recommended",
    "4.02 CalciumVitDRec": "code:yes_no_not_known",
    "5.01 RiskAssesByFLS": "code:yes_no",
    "5.02 TwoFalls": "code:yes_no_not_known",
    "5.03 FearOfFalling": "code:yes_no_not_known",
    "5.04 MedsIncRiskFall": "code:yes_no_not_known",
    "5.05 PreFracMob": "code:yes_no_not_known",
    "5.06 Vision": "code:yes_no_not_known",
    "5.07 Toileting": "code:yes_no_not_known",
    "5.08 AbnormalCardAssess": "code:yes_no_not_known",
    "5.09 CognitiveImpairment": "code:yes_no_not_known",
    "5.10 Referrals": "code:referrals",
    "6.01 FollowUp12_16": "code:follow_up",
    "6.02 Dateof16WeekAss": "date",
    "6.05 BoneTherapy1216": "code:bone_therapy_16_weeks",
    "6.06 StartStrenBalExe": "code:strength_and_balance",
    "7.01 FollowUp48_56": "code:follow_up",
    "7.02 Dateof52WeekAss": "date",
    "7.05 BoneTherapy4856": "code:bone_therapy_52_weeks",
    "7.06 NumReFracSinceIndex": "integer:0:20",
    "Date of Death": "date",
}

REQUIRED_COLUMNS = (
    "FLS Code", "Record ID", "Last Updated", "1.01 NHS Number", "1.02 Date of Birth",
    "1.09 Date Index Frac Diagnosed", "1.11 SiteFirstFrac",
)

CODE_LISTS: dict[str, tuple[str, ...]] = {
    name: tuple(codes) for name, codes in _VARS["submission_code_lists"].items()
}

# How a coded answer is read (dbt_project.yml, the coded-answer block): whitespace of any kind
# around it is removed and runs inside become one space (CODE_WHITESPACE_PATTERN, an RE2 pattern
# for DuckDB and Spark SQL), then it is matched case-insensitively against its codes and their
# documented wordings.
CODE_WHITESPACE_PATTERN: str = _VARS["code_whitespace_pattern"]


def code_wordings(list_name: str) -> dict[str, str]:
    """The documented wordings of the codes of list_name (dataset.md), wording -> code: the
    explicit ones of var submission_code_wordings, and for a drug list with a wording suffix
    every named drug followed by it. The same derivation is in macros/submission_fields.sql."""
    wordings = dict(_VARS.get("submission_code_wordings", {}).get(list_name, {}))
    suffix = _VARS.get("named_drug_wording_suffixes", {}).get(list_name)
    if suffix:
        wordings.update({f"{drug} {suffix}": drug for drug in DRUGS})
    return wordings


# Earliest index fracture date the audit accepts.
EARLIEST_FRACTURE_DATE = "2016-01-01"
MAX_AGE_YEARS = 110
MIN_AGE_YEARS = 50


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
