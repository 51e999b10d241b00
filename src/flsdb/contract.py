"""The raw submission contract of ../shared/fls-db/dataset.md, as data.

One place for the column names and their kinds, so that the generator, the loader and the tests
agree with each other. The code lists themselves live once, in the vars of dbt_project.yml,
which the staging models read too.
"""

from __future__ import annotations

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

# Earliest index fracture date the audit accepts.
EARLIEST_FRACTURE_DATE = "2016-01-01"
MAX_AGE_YEARS = 110
MIN_AGE_YEARS = 50


def nhs_number_is_valid(digits: str) -> bool:
    """Modulus-11 check of a 10-digit NHS number (spaces and hyphens already removed)."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])
