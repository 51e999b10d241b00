"""What happens to each SYNTHETIC patient after the fracture: presentation, survival, the FLS
assessment, DXA, falls, bone therapy (KPI 7 calibrated to the published figures) and the 16- and
52-week follow-ups. Every draw comes from the one generator `rng`, in a fixed order."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from flsdb.synthetic.common import KPI7_SHAPE, draw_category, sigmoid
from flsdb.synthetic import audit_years

# Spread (SD on the logit or log scale) of each per-service performance random effect.
SERVICE_EFFECT_SD = (("assessed", 0.5), ("delay", 0.35), ("dxa", 0.6), ("falls", 0.6),
                     ("drug", 0.45), ("fu16", 0.7), ("fu52", 0.7), ("sb", 0.5),
                     ("complete", 0.6))


@dataclass
class Cohort:
    """Person-level facts every pathway step reads (one entry per record)."""

    n_records: int
    fls: np.ndarray
    year: np.ndarray
    fracture_day: np.ndarray
    age: np.ndarray
    female: np.ndarray
    site: np.ndarray
    site_name: np.ndarray
    hip: np.ndarray
    spine: np.ndarray
    welsh: np.ndarray            # 1.0 for a Welsh service, else 0.0
    quintile_observed: np.ndarray
    service_effects: dict        # name -> one value per service
    drift: dict = field(default_factory=dict)  # name -> per-record offset (drift.shift_offsets)

    def effect(self, name: str) -> np.ndarray:
        """The record's service random effect `name` (logit or log scale), with any injected
        month-by-month shift of that behaviour."""
        value = self.service_effects[name][self.fls]
        return value + self.drift[name] if name in self.drift else value


def draw_service_effects(rng, n_fls: int) -> dict[str, np.ndarray]:
    """Per-service performance profiles (random effects on the logit scale)."""
    return {name: rng.normal(0, sd, n_fls) for name, sd in SERVICE_EFFECT_SD}


def draw_presentation(rng, people: Cohort, latent: dict) -> None:
    """Care home, hospital admission, fracture type, second and third sites."""
    n = people.n_records
    care_p = sigmoid(-3.6 + 0.11 * (people.age - 75) + 0.6 * people.hip)
    care = np.where(rng.random(n) < care_p, 0, 1).astype(np.int8)
    care = np.where(rng.random(n) < 0.03, 2, care)
    care = np.where(rng.random(n) < sigmoid(-3.2 + people.effect("complete")), -1, care).astype(np.int8)
    admit_p = np.select([people.hip, people.site_name == "Pelvis", people.spine, people.site_name == "Humerus"],
                        [0.97, 0.6, 0.35, 0.2], 0.15)
    admit = np.where(rng.random(n) < admit_p, 0, 1).astype(np.int8)
    admit = np.where(rng.random(n) < 0.02, 2, admit)
    admit = np.where(rng.random(n) < 0.03, -1, admit).astype(np.int8)
    ftype = np.where(people.spine & (rng.random(n) < 0.3), 1, 0).astype(np.int8)
    ftype = np.where(rng.random(n) < 0.04, -1, ftype).astype(np.int8)
    site2 = np.where(rng.random(n) < 0.05, rng.integers(0, 6, n), -1).astype(np.int8)
    site2 = np.where(site2 == people.site, (site2 + 2) % 6, site2).astype(np.int8)
    site3 = np.where((site2 >= 0) & (rng.random(n) < 0.1), rng.integers(0, 6, n), -1)
    site3 = np.where((site3 == people.site) | (site3 == site2), -1, site3).astype(np.int8)
    latent.update(care=care, admit=admit, ftype=ftype, site2=site2, site3=site3)


def draw_survival(rng, people: Cohort, latent: dict) -> None:
    """Death, in days after the fracture (a big number when beyond the horizon)."""
    n = people.n_records
    site_mult = np.select([people.hip, people.site_name == "Pelvis", people.spine, people.site_name == "Wrist"],
                          [2.6, 1.6, 1.4, 0.35], 1.0)
    hazard = (0.022 * np.exp(0.085 * (people.age - 75)) * site_mult
              * np.where(latent["care"] == 0, 2.0, 1.0))
    death_d = np.floor(-np.log(rng.random(n)) / hazard * 365.25).astype(np.int64)
    early = people.hip & (rng.random(n) < 0.5)
    death_d = np.where(early, np.floor(death_d * 0.6), death_d).astype(np.int64)
    latent["death_d"] = np.minimum(death_d, 20000)


def schedule_assessments(rng, people: Cohort, latent: dict) -> None:
    """Whether and when the FLS first contacts and assesses the patient."""
    n = people.n_records
    care_home = latent["care"] == 0
    death_d = latent["death_d"]
    assessed = rng.random(n) < sigmoid(2.3 + 0.4 * people.welsh + people.effect("assessed")
                                       - 0.6 * care_home)
    median_log_delay = np.log(50) - 0.3 * people.welsh + people.effect("delay")
    assess_d = np.round(np.exp(median_log_delay + 0.8 * rng.normal(size=n))).astype(np.int64) + 1
    contact_d = np.floor(assess_d * rng.uniform(0.1, 0.8, n)).astype(np.int64)
    lone_contact = np.round(np.exp(np.log(20) + 0.7 * rng.normal(size=n))).astype(np.int64)
    contact_d = np.where(assessed, contact_d, np.where(rng.random(n) < 0.7, lone_contact, -1))
    assess_d = np.where(assessed & (assess_d < death_d), assess_d, -1)
    assessed = assess_d >= 0
    contact_d = np.where(contact_d < death_d, contact_d, -1)
    contact_d = np.where(assessed & (rng.random(n) < 0.04), -1, contact_d)
    latent.update(assessed=assessed, assess_d=assess_d, contact_d=contact_d)


def record_baseline(rng, people: Cohort, latent: dict) -> None:
    """Height, weight and risk factors recorded at assessment."""
    n = people.n_records
    latent["height"] = np.where(people.female, rng.normal(160, 7, n), rng.normal(174, 7.5, n)).round(0)
    latent["weight"] = np.where(people.female, rng.normal(67, 14, n),
                                rng.normal(80, 15, n)).clip(32, 180).round(1)
    latent["has_hw"] = rng.random(n) < sigmoid(0.6 + people.effect("complete"))
    latent["prevfrac"] = draw_category(rng, n, [0.30, 0.55, 0.10, 0.05])
    latent["famhip"] = draw_category(rng, n, [0.10, 0.50, 0.35, 0.05])
    latent["smoker"] = draw_category(rng, n, [0.12, 0.76, 0.07, 0.05])
    latent["bonespare"] = draw_category(rng, n, [0.12, 0.80, 0.05, 0.03])


def order_dxa(rng, people: Cohort, latent: dict) -> None:
    """DXA done / ordered / not ordered (with a reason), its date, T-score and FRAX."""
    n = people.n_records
    care_home = latent["care"] == 0
    p_done = sigmoid(1.9 - 1.8 * people.welsh + people.effect("dxa") - 0.04 * np.maximum(people.age - 75, 0)
                     - 1.0 * care_home)
    draw = rng.random(n)
    p_ordered = 0.15
    dxa = np.where(draw < p_done * (1 - p_ordered), 0,
                   np.where(draw < p_done * (1 - p_ordered) + p_ordered * 0.8, 1, 2))
    not_required_p = sigmoid(-0.4 + 0.06 * (people.age - 75) + 1.2 * care_home)
    dxa_no = np.where(rng.random(n) < not_required_p, 0,
                      1 + draw_category(rng, n, [0.35, 0.25, 0.40]))
    latent["dxa"] = dxa
    latent["dxa_no"] = np.where(dxa == 2, dxa_no, -1)
    latent["dxa_d"] = latent["assess_d"] + np.round(
        np.exp(np.log(22) + 0.75 * rng.normal(size=n))).astype(np.int64)
    latent["tscore"] = np.clip(rng.normal(-2.2, 1.0, n), -5.5, 3.5).round(1)
    latent["frax"] = np.clip(np.exp(np.log(14) + 0.6 * rng.normal(size=n) + 0.03 * (people.age - 72)),
                             1, 80).round(1)
    latent["has_frax"] = rng.random(n) < 0.55


def assess_falls(rng, people: Cohort, latent: dict) -> None:
    """Falls risk assessment, its eight risk factors, referrals and calcium/vitamin D."""
    n = people.n_records
    latent["falls_yes"] = rng.random(n) < sigmoid(0.35 + 0.3 * people.welsh + people.effect("falls"))
    latent["referrals"] = draw_category(rng, n, [0.14, 0.18, 0.10, 0.58])
    latent["rf"] = np.stack([draw_category(rng, n, p) for p in (
        [0.35, 0.55, 0.10], [0.40, 0.50, 0.10], [0.45, 0.45, 0.10], [0.40, 0.55, 0.05],
        [0.25, 0.70, 0.05], [0.12, 0.83, 0.05], [0.10, 0.70, 0.20], [0.15, 0.80, 0.05])], axis=1)
    latent["calcium"] = draw_category(rng, n, [0.82, 0.12, 0.06])


def _kpi7_targets(year: int, cohort_by_quintile: dict[int, int]) -> dict[int, float]:
    """KPI 7 share per deprivation quintile: published Q1/Q5, the rest shifted together so the
    cohort-weighted mean meets the published national value."""
    published = audit_years.national(year)
    national = published["kpi7"] / 100
    q1 = published.get("kpi7_q1", published["kpi7"] + KPI7_SHAPE[1]) / 100
    q5 = published.get("kpi7_q5", published["kpi7"] + KPI7_SHAPE[5]) / 100

    def targets(shift):
        t = {1: q1, 5: q5}
        for q in (2, 3, 4, 0):
            t[q] = min(max(national + KPI7_SHAPE[q] / 100 + shift, 0.01), 0.99)
        return t

    lo, hi = -0.3, 0.3
    for _ in range(50):
        mid = (lo + hi) / 2
        t = targets(mid)
        total = (sum(t[q] * cohort_by_quintile[q] for q in range(6))
                 / max(sum(cohort_by_quintile.values()), 1))
        lo, hi = (mid, hi) if total < national else (lo, mid)
    return targets((lo + hi) / 2)


def _intercept_for(assessed_by_extract, linear, target) -> float:
    """Intercept a with mean(assessed * sigmoid(a + linear)) = target (bisection)."""
    lo, hi = -10.0, 10.0
    for _ in range(40):
        mid = (lo + hi) / 2
        value = (assessed_by_extract * sigmoid(mid + linear)).mean()
        lo, hi = (mid, hi) if value < target else (lo, mid)
    return (lo + hi) / 2


def recommend_bone_therapy(rng, people: Cohort, latent: dict, excluded_from_cohort: np.ndarray,
                           extract_day: int, years) -> None:
    """Bone therapy recommended (KPI 7), calibrated by year and deprivation quintile."""
    n = people.n_records
    care_home = latent["care"] == 0
    assessed = latent["assessed"]
    linear = (people.effect("drug") - 0.012 * np.abs(people.age - 74) - 0.5 * care_home + 0.25 * people.spine
              + 0.3 * people.female)
    drug_yes = np.zeros(n, bool)
    # 4.01 is recorded at the assessment, so only assessments done by the extract date count.
    assessed_by_extract = assessed & (people.fracture_day.astype(np.int64) + latent["assess_d"]
                                      <= extract_day)
    for year in years:
        in_year = people.year == year
        in_cohort = in_year & ~excluded_from_cohort
        by_quintile = {q: int((in_cohort & (people.quintile_observed == q)).sum()) for q in range(6)}
        target = _kpi7_targets(year, by_quintile)
        for q in range(6):
            for part in (in_cohort, in_year & excluded_from_cohort):
                mask = part & (people.quintile_observed == q)
                if not mask.any():
                    continue
                intercept = _intercept_for(assessed_by_extract[mask], linear[mask], target[q])
                p = np.clip(assessed_by_extract[mask] * sigmoid(intercept + linear[mask]),
                            1e-9, 1 - 1e-9)
                k = round(target[q] * mask.sum())
                idx = np.flatnonzero(mask)
                keys = np.log(rng.random(len(idx))) / p
                drug_yes[idx[np.argsort(-keys, kind="stable")[:k]]] = True
    drug_which = draw_category(rng, n, [0.55, 0.07, 0.02, 0.15, 0.12, 0.03, 0.02, 0.01, 0.01,
                                        0.02])
    no_drug = 10 + draw_category(rng, n, [0.25, 0.10, 0.14, 0.36, 0.15])
    bt = np.where(drug_yes, drug_which, no_drug).astype(np.int8)
    bt = np.where(~drug_yes & ~assessed & (rng.random(n) < 0.7), -1, bt).astype(np.int8)
    latent.update(drug_yes=drug_yes, drug_which=drug_which, bt=bt)


def follow_up_16_weeks(rng, people: Cohort, latent: dict) -> None:
    """16-week contact, bone therapy started, strength and balance exercise."""
    n = people.n_records
    drug_yes, bt = latent["drug_yes"], latent["bt"]
    p16 = sigmoid(-0.45 + 0.6 * people.welsh + people.effect("fu16")) * np.where(latent["assessed"], 1.0,
                                                                       0.5)
    draw = rng.random(n)
    fu16 = np.where(draw < p16, 0, np.where(draw < p16 + (1 - p16) * 0.62, 1,
                                            np.where(draw < p16 + (1 - p16) * 0.78, 3, -1)))
    fu16_d = np.clip(np.round(rng.normal(104, 14, n)), 80, 140).astype(np.int64)
    started16 = np.where(drug_yes, rng.random(n) < 0.78, rng.random(n) < 0.05)
    bt16 = np.where(started16,
                    np.where(drug_yes & (rng.random(n) < 0.9), bt,
                             draw_category(rng, n, [0.6, 0.1, 0.02, 0.15, 0.13, 0, 0, 0, 0, 0])),
                    np.where(drug_yes, 10 + draw_category(rng, n, [0.36, 0.18, 0.23, 0.09, 0.14]),
                             10 + draw_category(rng, n, [0.70, 0.15, 0.03, 0.02, 0.10])))
    sb = np.where(rng.random(n) < sigmoid(-1.6 + people.effect("sb")), 0,
                  1 + draw_category(rng, n, [0.54, 0.30, 0.16]))
    sb_nofu = np.where(rng.random(n) < 0.5, 3, np.where(rng.random(n) < 0.6, 1, -1))
    latent.update(fu16=fu16, fu16_d=fu16_d, started16=started16, bt16=bt16, sb=sb,
                  sb_nofu=sb_nofu)


def follow_up_52_weeks(rng, people: Cohort, latent: dict) -> None:
    """52-week contact, adherence to bone therapy and refractures."""
    n = people.n_records
    fu16, started16, bt16 = latent["fu16"], latent["started16"], latent["bt16"]
    drug_yes, bt, drug_which = latent["drug_yes"], latent["bt"], latent["drug_which"]
    p52 = np.clip(sigmoid(-0.6 + 0.4 * people.welsh + people.effect("fu52"))
                  * np.where(fu16 == 0, 1.35, 0.8), 0, 0.95)
    draw = rng.random(n)
    fu52 = np.where(draw < p52, 0, np.where(draw < p52 + (1 - p52) * 0.6, 1,
                                            np.where(draw < p52 + (1 - p52) * 0.8, 3, -1)))
    fu52_d = np.clip(np.round(rng.normal(364, 12, n)), 336, 392).astype(np.int64)
    still = np.where(started16 & (fu16 == 0), rng.random(n) < 0.82,
                     np.where(drug_yes, rng.random(n) < 0.42, rng.random(n) < 0.05))
    drug52 = np.where(started16 & (bt16 < 10), bt16,
                      np.where((bt >= 0) & (bt < 10), bt, drug_which))
    bt52 = np.where(still, drug52,
                    10 + np.where(started16, draw_category(rng, n, [0.75, 0.05, 0.20]),
                                  draw_category(rng, n, [0.10, 0.75, 0.15])))
    bt52 = np.where(bt52 < 0, 0, bt52)
    refrac = np.select([rng.random(n) < 0.88, rng.random(n) < 0.75, rng.random(n) < 0.8],
                       [0, 1, 2], 3)
    latent.update(fu52=fu52, fu52_d=fu52_d, bt52=bt52, refrac=refrac)


def draw_record_keeping(rng, people: Cohort, latent: dict) -> None:
    """Lag before a record is updated, time of day of updates, and the case/padding selector."""
    n = people.n_records
    latent["lag"] = np.minimum(rng.geometric(1 / 12, n) - 1, 90)
    latent["tod"] = rng.integers(7 * 3600, 19 * 3600, n)
    latent["cw"] = rng.random((n, 4))


# What the exports read, in the order the original single function stored them.
LATENT_KEYS = (
    "care", "admit", "ftype", "site2", "site3", "death_d", "assessed", "assess_d", "contact_d",
    "height", "weight", "has_hw", "prevfrac", "famhip", "smoker", "bonespare", "dxa", "dxa_no",
    "dxa_d", "tscore", "frax", "has_frax", "falls_yes", "referrals", "rf", "calcium", "bt",
    "fu16", "fu16_d", "bt16", "sb", "sb_nofu", "fu52", "fu52_d", "bt52", "refrac", "lag", "tod",
    "cw")


def walk_pathway(rng, people: Cohort, excluded_from_cohort, extract_day, years) -> dict:
    """Every step after the fracture, in the fixed draw order. Returns the latent columns."""
    latent: dict = {}
    draw_presentation(rng, people, latent)
    draw_survival(rng, people, latent)
    schedule_assessments(rng, people, latent)
    record_baseline(rng, people, latent)
    order_dxa(rng, people, latent)
    assess_falls(rng, people, latent)
    recommend_bone_therapy(rng, people, latent, excluded_from_cohort, extract_day, years)
    follow_up_16_weeks(rng, people, latent)
    follow_up_52_weeks(rng, people, latent)
    draw_record_keeping(rng, people, latent)
    return {k: latent[k] for k in LATENT_KEYS}
