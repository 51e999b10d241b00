"""`flsdb publish`: the gate between a validated extract and its publication.

Reads validation.json. Refuses (PublicationRefused, exit non-zero) when it is missing, when any
blocking (severity `error`) check failed, or when the warehouse changed after validation.
Otherwise writes output/approval.json; the command then publishes (flsdb.publish.publish_outputs)
and records the extract in the history (flsdb.publish.history).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import click


class PublicationRefused(click.ClickException):
    exit_code = 3


def publish(validation_path: Path, out_dir: Path, warehouse: Path | None = None) -> dict:
    if not validation_path.exists():
        raise PublicationRefused(f"Publication refused: {validation_path} not found. "
                                 "Run `flsdb validate` first.")
    raw = validation_path.read_bytes()
    validation = json.loads(raw)
    failing = [c for c in validation.get("checks", [])
               if c.get("severity") == "error" and c.get("status") == "fail"]
    if failing or validation.get("verdict") == "FAIL":
        names = "\n".join(f"  - {c['name']} ({c['source']}): {c.get('detail', '')}"[:400]
                          for c in failing)
        raise PublicationRefused(
            f"Publication refused: verdict {validation.get('verdict')}, "
            f"{len(failing)} blocking check(s) failed:\n{names}\n"
            f"See {validation_path.with_name('report.html')}.")
    warehouse = Path(warehouse or validation["warehouse"])
    if not warehouse.exists():
        raise PublicationRefused(f"Publication refused: warehouse {warehouse} not found.")
    validated_at = dt.datetime.fromisoformat(validation["generated_at"])
    modified_at = dt.datetime.fromtimestamp(warehouse.stat().st_mtime, dt.timezone.utc)
    if modified_at > validated_at + dt.timedelta(seconds=1):
        raise PublicationRefused(
            f"Publication refused: {warehouse} changed at {modified_at.isoformat(timespec='seconds')}, "
            f"after validation ({validation['generated_at']}). Run `flsdb validate` again.")
    approval = {
        "status": "approved",
        "verdict": validation["verdict"],
        "extract_date": validation.get("extract_date"),
        "warehouse": str(warehouse),
        "approved_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "validation_sha256": hashlib.sha256(raw).hexdigest(),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "approval.json").write_text(json.dumps(approval, indent=2) + "\n", encoding="utf-8")
    return approval
