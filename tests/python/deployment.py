"""A validated deployment of the tiny build, for the tests of the sign-off, the publication gate
and the history (test_gate.py, test_hostile_pipeline.py).

The tiny warehouse (tiny_build) is copied once into a deployment folder (warehouse/, output/,
history/), validated there with `flsdb validate` (Great Expectations included), and the folder is
kept as a pristine copy. `fresh()` puts the pristine copy back at the same path before a test: a
validation records its warehouse's absolute path, so only a copy at that path is still the
validated deployment (a copy elsewhere is a copied deployment, which the gate refuses).

Not a fixture module, for the reason given in tiny_build.py: the state is cached here.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tiny_build
from flsdb import paths

_CACHE: dict[str, object] = {}


@dataclass
class Deployment:
    root: Path
    env: dict
    tiny: dict

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "flsdb.duckdb"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def quality(self) -> Path:
        return self.output / "quality"

    @property
    def history(self) -> Path:
        return self.root / "history" / "flsdb_history.duckdb"

    @property
    def published_db(self) -> Path:
        return self.output / "published" / "flsdb_published.duckdb"

    def cli(self, *args: str, env: dict | None = None, input: str | None = None,
            timeout: int = 900) -> subprocess.CompletedProcess:
        flsdb = Path(sys.executable).with_name("flsdb")
        return subprocess.run([str(flsdb), *args], env={**self.env, **(env or {})}, input=input,
                              cwd=paths.PROJECT_DIR, capture_output=True, text=True, timeout=timeout)

    def popen(self, *args: str, env: dict | None = None) -> subprocess.Popen:
        flsdb = Path(sys.executable).with_name("flsdb")
        return subprocess.Popen([str(flsdb), *args], env={**self.env, **(env or {})},
                                cwd=paths.PROJECT_DIR, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def approve(self, reviewer: str = "Dr Grace Hopper", *extra: str) -> subprocess.CompletedProcess:
        done = self.cli("approve", "--reviewer", reviewer, "--yes", *extra)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done

    def validate(self, *extra: str) -> subprocess.CompletedProcess:
        return self.cli("validate", "--run-results", str(self.tiny["target"] / "run_results.json"),
                        *extra)

    def tier_state(self) -> dict[str, str]:
        """SHA-256 of every file of the published tier, the restricted extract and approval.json
        (what a refused publication must leave as it was)."""
        state = {}
        for folder in (self.output / "published", self.output / "restricted_analyst_extract"):
            for path in sorted(folder.rglob("*")) if folder.exists() else []:
                if path.is_file() and not path.name.endswith(".lock"):
                    state[str(path.relative_to(self.output))] = sha256(path)
        link = self.output / "published" / "parquet"
        state["parquet ->"] = os.readlink(link) if link.is_symlink() else ""
        approval = self.output / "approval.json"
        state["approval.json"] = sha256(approval) if approval.exists() else ""
        return state


def refused(done: subprocess.CompletedProcess, code: int, *words: str) -> str:
    """The command exited `code` with one `Error:` line (a list of checks may follow it) and no
    traceback; returns the message."""
    text = done.stdout + done.stderr
    assert done.returncode == code, (done.returncode, text[-3000:])
    assert "Traceback" not in text and "Unexpected error" not in text, text[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    message = done.stderr[done.stderr.index("Error:"):]
    for word in words:
        assert word in " ".join(message.split()), (word, message)
    return message


def nothing_published(d: Deployment) -> None:
    assert not d.published_db.exists()
    assert not (d.output / "restricted_analyst_extract").exists()
    assert not (d.output / "approval.json").exists()
    assert not d.history.exists()


def whole_tier(d: Deployment) -> dict:
    """The published tier is whole: the manifest's hash is the DuckDB file's, the Parquet link
    names a folder that exists and holds every table with the manifest's row count, and no
    temporary file is left. Returns the manifest."""
    import duckdb

    published = d.output / "published"
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["database_sha256"] == sha256(published / "flsdb_published.duckdb")
    link = published / "parquet"
    assert link.is_symlink() and link.resolve().is_dir(), os.readlink(link)
    assert os.readlink(link) == manifest["parquet_version"]
    with duckdb.connect(":memory:") as con:
        for table in manifest["tables"]:
            (rows,) = con.execute(f"select count(*) from read_parquet('{published / table['parquet']}')").fetchone()
            assert rows == table["rows"], table["table"]
    leftovers = [p.name for p in published.iterdir() if ".tmp-" in p.name or p.name.startswith(".parquet-link-")]
    leftovers += [p.name for p in d.output.iterdir() if "-tmp-" in p.name or ".tmp-" in p.name]
    assert not leftovers, leftovers
    return manifest


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def env_for(root: Path, tiny: dict) -> dict:
    env = tiny_build.dbt_env(root / "warehouse" / "flsdb.duckdb", tiny["landing"])
    env.update({
        "FLSDB_WAREHOUSE": str(root / "warehouse" / "flsdb.duckdb"),
        "FLSDB_LANDING": str(tiny["landing"]),
        "FLSDB_OUTPUT": str(root / "output"),
        "FLSDB_HISTORY": str(root / "history" / "flsdb_history.duckdb"),
        "DBT_TARGET_PATH": str(root / "target"),
        "DBT_LOG_PATH": str(root / "logs"),
    })
    return env


def validated_deployment(tmp_path_factory) -> tuple[Path, Path, dict]:
    """(deployment folder, its pristine copy, tiny build): made and validated once."""
    if "pristine" in _CACHE:
        return _CACHE["pristine"]  # type: ignore[return-value]
    tiny = tiny_build.tiny_build(tmp_path_factory)
    base = tmp_path_factory.mktemp("deployment")
    root = base / "deploy"
    (root / "warehouse").mkdir(parents=True)
    shutil.copyfile(tiny["warehouse"], root / "warehouse" / "flsdb.duckdb")
    deployment = Deployment(root, env_for(root, tiny), tiny)
    done = deployment.validate()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    validation = json.loads((deployment.quality / "validation.json").read_text())
    assert validation["verdict"] != "FAIL" and validation["checks_skipped"] == [], validation["checks_skipped"]
    pristine = base / "pristine"
    shutil.copytree(root, pristine, symlinks=True)
    _CACHE["pristine"] = (root, pristine, tiny)
    return _CACHE["pristine"]  # type: ignore[return-value]


def fresh(tmp_path_factory) -> Deployment:
    """The validated deployment as it was just after `flsdb validate`: not signed off, nothing
    published, no history."""
    root, pristine, tiny = validated_deployment(tmp_path_factory)
    shutil.rmtree(root)
    shutil.copytree(pristine, root, symlinks=True)
    return Deployment(root, env_for(root, tiny), tiny)
