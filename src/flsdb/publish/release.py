"""`flsdb publish`: an approved extract goes out, whole, or nothing changes.

Every path to publication (`flsdb publish`, and `flsdb run` and `flsdb refresh` after their own
validation and sign-off) is `release`. In order, under the publication lock (flsdb.publish.lock):

1. leftovers of a publisher killed part-way are removed (only the lock holder may);
2. the gate (flsdb.quality.gate.check_publication): a validation with no blocking failure and no
   skipped check, and a sign-off that matches it, the report and this warehouse's path and
   content; otherwise refused (exit 3 or 9) before anything is written;
3. the publication schedule (flsdb.publish.schedule): a signed-off extract whose publication
   period already has its publication is held back (`Held`, "Not published", exit 0), and
   nothing is written;
4. the history is checked (flsdb.publish.history.check_history): a folder, an empty, truncated,
   corrupt, busy or read-only history is refused before anything is written;
5. the new published tier and the restricted analyst extract are written beside the live ones,
   invisible;
6. the history is appended in one transaction, which commits only if the warehouse is still,
   byte for byte, the one signed off;
7. then the new tier is swapped in (the DuckDB file first: the moment of publication), then its
   Parquet link and manifest, the restricted extract, and approval.json.

A failure before 7 removes what was staged and leaves the tier and the history as they were; if
the DuckDB file cannot be swapped in, the publication just recorded is removed from the history
again. A kill between 6 and 7 leaves the history one publication ahead of the tier; the sign-off
still holds, and the next `flsdb publish` finds the extract already recorded and swaps the tier in.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

from flsdb.atomic import swap_in_folder, write_text_atomically
from flsdb.publish import history as hist
from flsdb.publish import lock
from flsdb.publish.marts import PUBLISHED_DB_NAME, information_loss, published_db_path, stage_tier
from flsdb.publish.restricted import TIER_NAME, restricted_dir, stage_restricted_extract
from flsdb.publish.schedule import refusal
from flsdb.quality.gate import NotSignedOff, check_publication
from flsdb.quality.signoff import warehouse_fingerprint

APPROVAL_NAME = "approval.json"


@dataclass
class Released:
    approval: dict
    recorded: hist.RecordedExtract
    leftovers_removed: list[Path]
    information_loss: str

    def __str__(self) -> str:
        a = self.approval
        lines = []
        if self.leftovers_removed:
            lines.append(f"Removed {len(self.leftovers_removed)} leftover(s) of an interrupted "
                         "publication: " + ", ".join(p.name for p in self.leftovers_removed))
        lines += [
            (f"Signed off by {a['reviewer']} at {a['decided_at']} (verdict {a['verdict']}, "
            f"{len(a.get('warnings_acknowledged') or [])} warning(s) acknowledged)"),
            f"Published: {a['published_database']}",
            self.information_loss,
            f"Restricted analyst extract (not published): {a['restricted_extract']}",
            str(self.recorded),
        ]
        return "\n".join(lines)


@dataclass
class Held:
    """A signed-off extract the publication schedule holds back: nothing was written."""

    reason: str
    signoff: dict
    leftovers_removed: list[Path]

    def __str__(self) -> str:
        return (f"Not published: {self.reason} The sign-off by {self.signoff['reviewer']} stands; the "
                "published tier, the extract history and the site are unchanged.")


def release(validation_path: Path, out_dir: Path, warehouse: Path, history: Path | None = None,
            progress: Callable[[str], None] = lambda line: None) -> Released | Held:
    """Publish `warehouse` under its sign-off: the published tier, the restricted analyst
    extract, the history and approval.json change together or not at all; or hold it back, by
    the publication schedule, and write nothing."""
    out_dir = Path(out_dir)
    history = Path(history or hist.history_path())
    with lock.exclusive(out_dir):
        removed = lock.remove_leftovers(out_dir, TIER_NAME, PUBLISHED_DB_NAME)
        signoff = check_publication(validation_path, warehouse)
        warehouse = Path(signoff["warehouse"]["path"])
        held = refusal(warehouse, out_dir)
        if held:
            return Held(held, signoff, removed)
        hist.check_history(history, writing=True)
        progress("writing the new published tier and the restricted analyst extract")
        tier = stage_tier(warehouse, out_dir)
        restricted_tmp = None

        def warehouse_unchanged() -> None:
            if warehouse_fingerprint(warehouse)["sha256"] != signoff["warehouse"]["sha256"]:
                raise NotSignedOff(f"Publication refused: the warehouse {warehouse} changed while "
                                   "it was being published (a load or a build at the same time). "
                                   "Nothing was published. Validate and approve it again.")

        try:
            loss = information_loss(tier.tmp_db)
            restricted_tmp = stage_restricted_extract(warehouse, out_dir)
            tier.prepare()
            progress(f"recording the publication in the history {history}")
            published_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
            recorded = hist.record_published_extract(warehouse, history, published_at,
                                                     signoff=signoff, before_commit=warehouse_unchanged)
        except BaseException:
            tier.discard()
            if restricted_tmp is not None:
                _remove(restricted_tmp)
            raise
        try:
            tier.swap_database()
        except BaseException:
            tier.discard()
            _remove(restricted_tmp)
            if recorded.appended:
                hist.forget_publication(history, recorded.publication_id)
            raise
        tier.swap_rest()
        swap_in_folder(restricted_tmp, restricted_dir(out_dir))
        approval = {
            "status": "approved",
            "verdict": signoff["verdict"],
            "extract_date": signoff["extract_date"],
            "reviewer": signoff["reviewer"],
            "sign_off_kind": signoff["kind"],
            "decided_at": signoff["decided_at"],
            "approved_at": signoff["decided_at"],
            "note": signoff["note"],
            "warnings_acknowledged": signoff["warnings_acknowledged"],
            "published_at": published_at.isoformat(timespec="seconds"),
            "publication_id": recorded.publication_id,
            "history": str(history),
            "warehouse": signoff["warehouse"]["path"],
            "warehouse_sha256": signoff["warehouse"]["sha256"],
            "validation_sha256": signoff["validation"]["sha256"],
            "report_sha256": signoff["report"]["sha256"],
            "published_database": str(published_db_path(out_dir)),
            "published_database_sha256": tier.manifest["database_sha256"],
            "restricted_extract": str(restricted_dir(out_dir)),
        }
        write_text_atomically(out_dir / APPROVAL_NAME, json.dumps(approval, indent=2) + "\n")
    return Released(approval, recorded, removed, loss)


def _remove(folder: Path | None) -> None:
    if folder is not None and folder.exists():
        shutil.rmtree(folder, ignore_errors=True)
