"""The publication gate: the one check every path to publication goes through.

`flsdb publish`, and `flsdb run` and `flsdb refresh` after their own validation and sign-off,
publish through flsdb.publish.release, which calls `check_publication` under the publication lock.
It publishes nothing unless, read from the files as they are now:

1. validation.json exists, no blocking check failed (verdict not FAIL) and no check was skipped
   (refused, exit 3: PublicationRefused);
2. a sign-off exists beside it (signoff.json), sealed as `flsdb approve` wrote it, and it approves
   (not a rejection);
3. it was given for exactly this validation.json and report.html (their SHA-256): a new
   validation after sign-off cancels it;
4. the warehouse to publish ($FLSDB_WAREHOUSE or --warehouse, never a path read from a file) is
   the one signed off: the same resolved path and the same content (SHA-256): a rebuild, a load,
   another warehouse or a copied deployment is refused;
5. an automatic sign-off is only for a warehouse built as synthetic data.

2 to 5 refuse with NotSignedOff (exit 9). The sign-off's own rules are in flsdb.quality.signoff.
"""

from __future__ import annotations

from pathlib import Path

from flsdb.quality.signoff import (APPROVED, NotSignedOff, PublicationRefused, read_signoff,
                                   read_validation, refuse_unapprovable, warehouse_fingerprint,
                                   warehouse_is_synthetic)

__all__ = ["NotSignedOff", "PublicationRefused", "check_publication"]


def check_publication(validation_path: Path, warehouse: Path) -> dict:
    """The sign-off under which `warehouse` may be published now; raises PublicationRefused or
    NotSignedOff with what to do otherwise."""
    reviewed = read_validation(validation_path)
    refuse_unapprovable(reviewed)
    signoff = read_signoff(reviewed.folder)
    decided = f"{signoff.get('reviewer')} at {signoff.get('decided_at')}"
    again = ("Review the report, then run `flsdb approve --reviewer NAME` and `flsdb publish` "
             "again.")
    if signoff.get("decision") != APPROVED:
        raise NotSignedOff(f"Publication refused: the extract was rejected by {decided}: "
                           f"{signoff.get('note') or 'no note'}. Fix what the note says, build and "
                           "validate again, and have the new report approved.")
    if signoff["validation"]["sha256"] != reviewed.validation_sha256:
        raise NotSignedOff(
            f"Publication refused: {reviewed.path} is not the validation signed off by {decided} "
            f"(validated again at {reviewed.validation.get('generated_at')}, or changed). {again}")
    if signoff["report"]["sha256"] != reviewed.report_sha256:
        raise NotSignedOff(f"Publication refused: {reviewed.report} is not the report signed off "
                           f"by {decided} (written again, or changed). {again}")
    warehouse = Path(warehouse)
    signed = Path(signoff["warehouse"]["path"])
    if not warehouse.exists():
        raise NotSignedOff(f"Publication refused: warehouse {warehouse} not found.")
    current = warehouse_fingerprint(warehouse)
    if current["path"] != str(signed):
        raise NotSignedOff(
            f"Publication refused: the sign-off by {decided} is for the warehouse {signed}, not "
            f"{current['path']} (FLSDB_WAREHOUSE or --warehouse), which has not been validated "
            "and signed off. Validate this warehouse and have it approved, or publish the one "
            "that was signed off.")
    if current["sha256"] != signoff["warehouse"]["sha256"]:
        raise NotSignedOff(
            f"Publication refused: the warehouse {warehouse} changed after the sign-off by "
            f"{decided} (a load or a build since): the sign-off no longer applies. Run `flsdb "
            f"validate`, then {again[0].lower()}{again[1:]}")
    if signoff.get("kind") == "automatic" and not warehouse_is_synthetic(warehouse):
        raise NotSignedOff("Publication refused: an automatic sign-off is only for synthetic "
                           "data, and this warehouse holds real data: a named person must run "
                           "`flsdb approve --reviewer NAME`.")
    return {**signoff, "warehouse": current}
