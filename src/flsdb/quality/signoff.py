"""The sign-off: a person's decision on one validated extract, bound to exactly what they reviewed.

1. `flsdb validate` writes validation.json and report.html. validation.json records the warehouse
   it read (its resolved path and a fingerprint of its content, taken before reading it) and the
   checks it skipped; `seal_validation` then seals the two files (validation.seal).
2. `flsdb approve --reviewer NAME [--note TEXT]` or `flsdb reject --reviewer NAME --note TEXT`:
   `review` checks the seal and that the warehouse is still the one validated, the command shows
   the verdict and the warnings to acknowledge, and `record_decision` writes signoff.json beside
   validation.json: who decided, when, the decision and note, the warnings acknowledged, and the
   SHA-256 of validation.json, of report.html and of the warehouse (with its path), sealed.
3. `flsdb publish` (flsdb.quality.gate.check_publication) publishes only under an approval whose
   seal is intact and whose hashes match the files as they are now: a rebuild, a new validation
   or an edit to any of the files after sign-off cancels it.

The rule on checks: an approval covers every check. A validation that skipped some (Great
Expectations with `--no-gx`, some suites only, or dbt tests that the last dbt build did not run)
cannot be approved; `skipped_checks` lists them.

Real data (var `data_is_synthetic` false, as the warehouse's marts record it) always needs a
named person. On synthetic data, `flsdb run` and `flsdb refresh` sign off automatically, as
AUTOMATIC_REVIEWER, and say so.

The seal is an HMAC-SHA256 under a key kept beside validation.json (.flsdb_signing.key, made on
first use, readable by its owner only): a file written or edited by hand does not pass as one
written by flsdb. It is not a personal signature: whoever can run `flsdb approve` as this user
can sign off, and does so under the name they give.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import click
import duckdb

from flsdb.atomic import sha256_of, write_text_atomically
from flsdb.failures import EXIT_CODES

AUTOMATIC_REVIEWER = "automatic (synthetic data)"
SIGNOFF_NAME = "signoff.json"
SEAL_NAME = "validation.seal"
KEY_NAME = ".flsdb_signing.key"
REPORT_NAME = "report.html"
APPROVED, REJECTED = "approved", "rejected"


class PublicationRefused(click.ClickException):
    """The quality gate refuses: a blocking check failed, checks were skipped, or there is no
    trustworthy validation of this warehouse."""

    exit_code = EXIT_CODES["publication_refused"]


class NotSignedOff(click.ClickException):
    """No sign-off matches the warehouse and the report as they are now."""

    exit_code = EXIT_CODES["not_signed_off"]


# --------------------------------------------------------------------------------------------
# Fingerprints and seals
# --------------------------------------------------------------------------------------------

def warehouse_fingerprint(warehouse: Path) -> dict:
    """The warehouse's resolved path and the SHA-256 of its content (the DuckDB file, then its
    write-ahead log when one is left beside it). Never the modification time."""
    warehouse = Path(warehouse).resolve()
    wal = Path(f"{warehouse}.wal")
    return {"path": str(warehouse), "sha256": sha256_of(warehouse, wal),
            "bytes": warehouse.stat().st_size + (wal.stat().st_size if wal.exists() else 0)}


def _key(folder: Path) -> bytes:
    """This folder's sealing key, made on first use (readable by its owner only). A key file left
    empty or short by a kill is replaced (what was sealed with it no longer verifies)."""
    path = Path(folder) / KEY_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) >= 64:
            return key
        tmp = path.with_name(f"{KEY_NAME}.tmp-{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_hex(32).encode())
        os.replace(tmp, path)
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_hex(32).encode())
    return path.read_bytes()


def _mac(folder: Path, payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hmac.new(_key(folder), text.encode(), "sha256").hexdigest()


def _sealed(folder: Path, record: dict) -> bool:
    claimed = record.get("seal")
    body = {k: v for k, v in record.items() if k != "seal"}
    return isinstance(claimed, str) and hmac.compare_digest(claimed, _mac(folder, body))


def unseal_validation(folder: Path) -> None:
    """Called when a new validation starts: the seal of the previous one is removed first."""
    (Path(folder) / SEAL_NAME).unlink(missing_ok=True)


def seal_validation(folder: Path) -> None:
    """Seal validation.json and report.html as `flsdb validate` wrote them."""
    folder = Path(folder)
    body = {"validation_sha256": sha256_of(folder / "validation.json"),
            "report_sha256": sha256_of(folder / REPORT_NAME),
            "sealed_at": _now()}
    write_text_atomically(folder / SEAL_NAME,
                          json.dumps({**body, "seal": _mac(folder, body)}, indent=2) + "\n")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# What a validation skipped
# --------------------------------------------------------------------------------------------

def skipped_checks(run_results: Path, gx_ran: bool, gx_suites: set[str] | None = None) -> list[str]:
    """The checks a validation did not run, in words; [] when it ran every one. dbt: every data
    test of the project (manifest.json beside run_results.json) must be in the last dbt build's
    run_results.json. Unit tests check the code on hand-made rows, not the extract, so production
    builds leave them out (issue 21; `make test` and CI run them) and a sign-off does not need them."""
    skipped = []
    if not gx_ran:
        skipped.append("the Great Expectations suites (flsdb validate --no-gx)")
    elif gx_suites is not None:
        skipped.append("the Great Expectations suites other than " + ", ".join(sorted(gx_suites)))
    manifest = Path(run_results).with_name("manifest.json")
    if Path(run_results).exists() and manifest.exists():
        nodes = json.loads(manifest.read_text(encoding="utf-8"))
        tests = {uid for uid, node in nodes.get("nodes", {}).items()
                 if node.get("resource_type") == "test"}
        ran = {r["unique_id"] for r in json.loads(run_results.read_text(encoding="utf-8")).get("results", [])}
        missing = tests - ran
        if missing:
            skipped.append(f"{len(missing)} of the project's {len(tests)} dbt tests, which the last "
                           "dbt build did not run (a build of a selection only)")
    return skipped


# --------------------------------------------------------------------------------------------
# Review and decision
# --------------------------------------------------------------------------------------------

@dataclass
class Reviewed:
    """A validation, checked to be as `flsdb validate` wrote it, with the files' hashes now."""

    path: Path
    validation: dict
    validation_sha256: str
    report_sha256: str

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def report(self) -> Path:
        return self.folder / REPORT_NAME

    @property
    def warehouse(self) -> dict:
        return self.validation.get("warehouse_fingerprint") or {}

    @property
    def blocking(self) -> list[dict]:
        return [c for c in self.validation.get("checks", [])
                if c.get("severity") == "error" and c.get("status") == "fail"]

    @property
    def warnings(self) -> list[dict]:
        return [c for c in self.validation.get("checks", [])
                if c.get("severity") == "warn" and c.get("status") == "fail"]

    @property
    def skipped(self) -> list[str]:
        return list(self.validation.get("checks_skipped", []))


def read_validation(validation_path: Path) -> Reviewed:
    """validation.json and the hashes of it and of report.html beside it, as they are now."""
    validation_path = Path(validation_path)
    if not validation_path.exists():
        raise PublicationRefused(f"Publication refused: {validation_path} not found. Run "
                                 "`flsdb validate` first.")
    raw = validation_path.read_bytes()
    try:
        validation = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PublicationRefused(f"Publication refused: {validation_path} is not valid JSON "
                                 f"({exc}). Run `flsdb validate` again.") from None
    return Reviewed(validation_path, validation, sha256_of(validation_path),
                    sha256_of(validation_path.with_name(REPORT_NAME)))


def refuse_unapprovable(reviewed: Reviewed) -> None:
    """The quality gate's rule: no blocking failure, no FAIL verdict and no skipped check."""
    validation = reviewed.validation
    if reviewed.blocking or validation.get("verdict") == "FAIL":
        names = "\n".join(f"  - {c['name']} ({c.get('source', '')}): {c.get('detail', '')}"[:400]
                          for c in reviewed.blocking)
        raise PublicationRefused(
            f"Publication refused: verdict {validation.get('verdict')}, "
            f"{len(reviewed.blocking)} blocking check(s) failed:\n{names}\n"
            f"See {reviewed.report}.")
    if reviewed.skipped:
        raise PublicationRefused(
            "Publication refused: the validation skipped checks, so it cannot approve a "
            f"publication: {'; '.join(reviewed.skipped)}. Run a full `flsdb build` if the last "
            "build was a selection, then `flsdb validate` (with the Great Expectations suites).")


def review(validation_path: Path) -> Reviewed:
    """The validation a reviewer decides on, checked: sealed by `flsdb validate` and still about
    the warehouse as it is now. Raises PublicationRefused (exit 3) otherwise."""
    reviewed = read_validation(validation_path)
    seal_path = reviewed.folder / SEAL_NAME
    try:
        seal = json.loads(seal_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        seal = {}
    if not (_sealed(reviewed.folder, seal)
            and seal.get("validation_sha256") == reviewed.validation_sha256
            and seal.get("report_sha256") == reviewed.report_sha256):
        raise PublicationRefused(
            f"Publication refused: {reviewed.path} or {reviewed.report} is not as `flsdb "
            "validate` wrote it (changed by hand, or the validation did not finish): it cannot be "
            "signed off. Run `flsdb validate` again.")
    recorded = reviewed.warehouse
    if not recorded.get("sha256"):
        raise PublicationRefused(f"Publication refused: {reviewed.path} does not record the "
                                 "warehouse's fingerprint. Run `flsdb validate` again.")
    warehouse = Path(recorded["path"])
    if not warehouse.exists():
        raise PublicationRefused(f"Publication refused: the validated warehouse {warehouse} no "
                                 "longer exists. Build and validate again.")
    if warehouse_fingerprint(warehouse)["sha256"] != recorded["sha256"]:
        raise PublicationRefused(
            f"Publication refused: the warehouse {warehouse} changed after it was validated "
            f"({reviewed.validation.get('generated_at')}), by a load or a build. Run `flsdb "
            "validate` again and review the new report.")
    return reviewed


def warehouse_is_synthetic(warehouse: Path) -> bool:
    """True only when every KPI result of the warehouse was built as synthetic data (var
    data_is_synthetic true). A warehouse without marts is not synthetic."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        (synthetic,) = con.execute(
            "select coalesce(bool_and(is_synthetic_data), false) from marts.kpi_results").fetchone()
    except duckdb.CatalogException:
        return False
    finally:
        con.close()
    return bool(synthetic)


def check_reviewer(reviewer: str) -> str:
    """A person's name: not blank, and not the automatic sign-off's own."""
    name = " ".join((reviewer or "").split())
    if not name:
        raise click.BadParameter("give your name: the sign-off is recorded under it.",
                                 param_hint="--reviewer")
    if name.lower().startswith("automatic"):
        raise click.BadParameter(f"{name!r}: a person signs off under their own name; the "
                                 f"automatic sign-off ({AUTOMATIC_REVIEWER}) is for synthetic "
                                 "data and is given by `flsdb run` and `flsdb refresh` only.",
                                 param_hint="--reviewer")
    return name


def record_decision(reviewed: Reviewed, decision: str, reviewer: str, note: str | None = None,
                    automatic: bool = False) -> dict:
    """Write signoff.json beside the validation: the decision, sealed. Returns the record."""
    if decision not in (APPROVED, REJECTED):
        raise ValueError(decision)
    if decision == APPROVED:
        refuse_unapprovable(reviewed)
    if automatic:
        reviewer = AUTOMATIC_REVIEWER
        if not warehouse_is_synthetic(Path(reviewed.warehouse["path"])):
            raise NotSignedOff(
                "Not signed off: this extract is real data (var data_is_synthetic is false), so a "
                f"named person must review it: read {reviewed.report}, then run `flsdb approve "
                "--reviewer NAME` (or `flsdb reject --reviewer NAME --note WHY`), then `flsdb "
                "publish` and `flsdb report`.")
    else:
        reviewer = check_reviewer(reviewer)
    validation = reviewed.validation
    body = {
        "decision": decision,
        "reviewer": reviewer,
        "kind": "automatic" if automatic else "person",
        "decided_at": _now(),
        "note": " ".join(note.split()) if note else None,
        "verdict": validation.get("verdict"),
        "extract_date": validation.get("extract_date"),
        "validated_at": validation.get("generated_at"),
        "warnings_acknowledged": [c["name"] for c in reviewed.warnings],
        "checks_skipped": reviewed.skipped,
        "validation": {"path": str(reviewed.path.resolve()), "sha256": reviewed.validation_sha256},
        "report": {"path": str(reviewed.report.resolve()), "sha256": reviewed.report_sha256},
        "warehouse": {"path": reviewed.warehouse["path"], "sha256": reviewed.warehouse["sha256"]},
    }
    record = {**body, "seal": _mac(reviewed.folder, body)}
    write_text_atomically(reviewed.folder / SIGNOFF_NAME, json.dumps(record, indent=2) + "\n")
    return record


def read_signoff(folder: Path) -> dict:
    """The sign-off beside a validation, checked to be as `flsdb approve`/`reject` wrote it.
    Raises NotSignedOff (exit 9) when there is none or it was changed."""
    path = Path(folder) / SIGNOFF_NAME
    report = Path(folder) / REPORT_NAME
    if not path.exists():
        raise NotSignedOff(
            f"Publication refused: the extract has not been signed off. Review {report}, then "
            "run `flsdb approve --reviewer NAME` (or `flsdb reject --reviewer NAME --note WHY`) "
            "and `flsdb publish` again.")
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        record = {}
    if not isinstance(record, dict) or not _sealed(Path(folder), record):
        raise NotSignedOff(
            f"Publication refused: {path} is not as `flsdb approve` wrote it (edited by hand or "
            "damaged), so it cannot be trusted. Review the report and run `flsdb approve "
            "--reviewer NAME` again.")
    return record
