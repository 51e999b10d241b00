"""The sign-off and the publication gate (issue 20 part 1; issue 19, "The publication gate can be
walked round"): src/flsdb/quality/signoff.py, gate.py and flsdb.publish.release.

On a validated copy of the tiny build (deployment.py): `flsdb publish` refuses without a sign-off,
after a rebuild, after a new validation, with a sign-off, validation or report edited by hand,
with FLSDB_WAREHOUSE or --warehouse pointing at another warehouse, from a copied deployment, after
`flsdb validate --no-gx`, and after a rejection; the publication schedule is checked after the
gate and holds a signed-off extract of a month already published back; a real-data extract cannot
be signed off automatically; a named sign-off reaches the history, `flsdb history` and the site's changes page.
Every refusal leaves nothing published and no history.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import deployment as dep
import tiny_build
from flsdb import paths
from flsdb.publish import history as hist
from flsdb.quality import signoff

NOT_SIGNED_OFF, REFUSED, USAGE = 9, 3, 2


@pytest.fixture
def deploy(tmp_path_factory) -> dep.Deployment:
    return dep.fresh(tmp_path_factory)


refused, nothing_published = dep.refused, dep.nothing_published


# ------------------------------------------------------------------------------------ no sign-off

def test_publish_refuses_without_a_signoff(deploy):
    refused(deploy.cli("publish"), NOT_SIGNED_OFF, "has not been signed off", "flsdb approve --reviewer NAME")
    nothing_published(deploy)


def test_approve_shows_the_verdict_and_the_warnings_and_asks(deploy):
    warnings = [c for c in json.loads((deploy.quality / "validation.json").read_text())["checks"]
                if c["severity"] == "warn" and c["status"] == "fail"]
    assert warnings, "the tiny build has warnings to acknowledge"
    declined = deploy.cli("approve", "--reviewer", "Dr Grace Hopper", input="n\n")
    assert declined.returncode == 1 and "Aborted" in declined.stderr
    assert f"{len(warnings)} warning(s)" in declined.stdout and "Warnings to acknowledge:" in declined.stdout
    assert warnings[0]["description"] in declined.stdout
    assert not (deploy.quality / "signoff.json").exists()
    accepted = deploy.cli("approve", "--reviewer", "Dr Grace Hopper", input="y\n")
    assert accepted.returncode == 0, accepted.stderr
    record = json.loads((deploy.quality / "signoff.json").read_text())
    assert record["decision"] == "approved" and record["reviewer"] == "Dr Grace Hopper"
    assert record["warnings_acknowledged"] == [c["name"] for c in warnings]
    assert record["warehouse"] == {"path": str(deploy.warehouse.resolve()),
                                   "sha256": dep.sha256(deploy.warehouse)}
    assert record["report"]["sha256"] == dep.sha256(deploy.quality / "report.html")
    assert record["validation"]["sha256"] == dep.sha256(deploy.quality / "validation.json")


@pytest.mark.parametrize("reviewer", ["", "   ", "automatic (synthetic data)", "Automatic"])
def test_a_person_signs_off_under_a_name_of_their_own(deploy, reviewer):
    refused(deploy.cli("approve", "--reviewer", reviewer, "--yes"), USAGE, "--reviewer")
    assert not (deploy.quality / "signoff.json").exists()


# ------------------------------------------------------------ the reviewer reaches history and site

def test_the_reviewer_reaches_the_history_the_history_command_and_the_site(deploy):
    pytest.importorskip("vl_convert")
    deploy.approve("Dr Grace Hopper", "--note", "Checked the 6.06 gap with SYN003")
    published = deploy.cli("publish")
    assert published.returncode == 0, published.stderr[-3000:]
    assert "Signed off by Dr Grace Hopper" in published.stdout
    assert "Information loss (cells withheld):" in published.stdout      # main's summary, kept

    (extract,) = hist.list_extracts(deploy.history)
    validation = json.loads((deploy.quality / "validation.json").read_text())
    assert extract["signed_off_by"] == "Dr Grace Hopper" and extract["sign_off_kind"] == "person"
    assert extract["sign_off_note"] == "Checked the 6.06 gap with SYN003"
    assert extract["verdict"] == validation["verdict"] and extract["checks_skipped"] == []
    assert extract["warnings_acknowledged"] == [c["name"] for c in validation["checks"]
                                                if c["severity"] == "warn" and c["status"] == "fail"]
    assert extract["warehouse_sha256"] == dep.sha256(deploy.warehouse)
    assert extract["report_sha256"] == dep.sha256(deploy.quality / "report.html")
    assert extract["signed_off_at"] is not None

    listed = deploy.cli("history")
    assert listed.returncode == 0 and "Dr Grace Hopper" in listed.stdout
    assert "Checked the 6.06 gap with SYN003" in listed.stdout

    approval = json.loads((deploy.output / "approval.json").read_text())
    assert approval["reviewer"] == "Dr Grace Hopper" and approval["publication_id"] == 1

    reported = deploy.cli("report")
    assert reported.returncode == 0, reported.stderr[-3000:]
    page = (deploy.output / "site" / "changes.html").read_text(encoding="utf-8")
    assert 'id="signoffs"' in page
    (row,) = re.findall(r'<tr data-publication="1" data-reviewer="([^"]*)">', page)
    assert row == "Dr Grace Hopper"
    assert "Checked the 6.06 gap" not in page          # the note stays in the internal history
    site = json.loads((deploy.output / "site" / "site.json").read_text())
    assert site["approval"]["reviewer"] == "Dr Grace Hopper"


# ----------------------------------------------------------------- what cancels a sign-off

def test_a_rebuild_after_signoff_cancels_it(deploy):
    deploy.approve()
    rebuilt = subprocess.run(tiny_build.dbt_command(["run", "--select", "dim_fls"], deploy.root / "target",
                                                    deploy.root / "logs"),
                             env=deploy.env, cwd=paths.PROJECT_DIR, capture_output=True, text=True, timeout=600)
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    refused(deploy.cli("publish"), NOT_SIGNED_OFF, "changed after the sign-off by Dr Grace Hopper",
            "flsdb validate")
    nothing_published(deploy)
    # approving again does not help: the validation is of the warehouse before the rebuild
    refused(deploy.cli("approve", "--reviewer", "Dr Grace Hopper", "--yes"), REFUSED,
            "changed after it was validated", "flsdb validate")


def test_a_new_validation_after_signoff_cancels_it(deploy):
    deploy.approve()
    assert deploy.validate().returncode == 0
    refused(deploy.cli("publish"), NOT_SIGNED_OFF, "is not the validation signed off by Dr Grace Hopper",
            "flsdb approve --reviewer NAME")
    nothing_published(deploy)
    deploy.approve("Dr Ada Lovelace")      # the new report, reviewed and approved: published
    assert deploy.cli("publish").returncode == 0
    assert hist.list_extracts(deploy.history)[0]["signed_off_by"] == "Dr Ada Lovelace"


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n")


@pytest.mark.parametrize("edit", ["reviewer", "warehouse_sha256", "decision", "seal_removed", "written_by_hand"])
def test_a_hand_edited_signoff_cannot_pass(deploy, edit):
    signoff_path = deploy.quality / "signoff.json"
    if edit == "decision":
        done = deploy.cli("reject", "--reviewer", "Dr Grace Hopper", "--note", "6.06 is missing for SYN003")
        assert done.returncode == 0, done.stderr
    else:
        deploy.approve()
    record = json.loads(signoff_path.read_text())
    if edit == "reviewer":
        _edit_json(signoff_path, lambda r: r.update(reviewer="Someone Else"))
    elif edit == "warehouse_sha256":
        _edit_json(signoff_path, lambda r: r["warehouse"].update(sha256="0" * 64))
    elif edit == "decision":
        _edit_json(signoff_path, lambda r: r.update(decision="approved"))
    elif edit == "seal_removed":
        _edit_json(signoff_path, lambda r: r.pop("seal"))
    else:   # a complete record with every hash right, written without flsdb approve (no key)
        body = {k: v for k, v in record.items() if k != "seal"}
        body.update(decision="approved", reviewer="Nobody")
        import hashlib
        import hmac
        forged = hmac.new(b"a guessed key", json.dumps(body, sort_keys=True).encode(), hashlib.sha256).hexdigest()
        signoff_path.write_text(json.dumps({**body, "seal": forged}))
    refused(deploy.cli("publish"), NOT_SIGNED_OFF, "is not as `flsdb approve` wrote it")
    nothing_published(deploy)


@pytest.mark.parametrize("edited", ["validation.json", "report.html"])
def test_a_validation_or_report_edited_by_hand_cannot_pass(deploy, edited):
    path = deploy.quality / edited
    # before the sign-off: it cannot be approved
    original = path.read_bytes()
    if edited == "validation.json":    # a reviewer's eye would miss this one: a failure made a pass
        _edit_json(path, lambda v: next(c for c in v["checks"] if c["status"] == "fail").update(status="pass"))
    else:
        path.write_bytes(original.replace(b"</body>", b"<p>All good.</p></body>"))
    refused(deploy.cli("approve", "--reviewer", "Dr Grace Hopper", "--yes"), REFUSED,
            "is not as `flsdb validate` wrote it", "flsdb validate")
    assert not (deploy.quality / "signoff.json").exists()
    # after the sign-off: it cannot be published
    path.write_bytes(original)
    deploy.approve()
    path.write_bytes(path.read_bytes() + b"\n")
    refused(deploy.cli("publish"), NOT_SIGNED_OFF, "signed off by Dr Grace Hopper")
    nothing_published(deploy)


# ------------------------------------------------------------------- the warehouse signed off

def test_publish_refuses_another_warehouse_than_the_one_signed_off(deploy, tmp_path):
    deploy.approve()
    same_bytes = tmp_path / "copy.duckdb"            # the same content at another path
    shutil.copyfile(deploy.warehouse, same_bytes)
    other = tmp_path / "other.duckdb"                # another, never-validated warehouse
    shutil.copyfile(deploy.warehouse, other)
    with duckdb.connect(str(other)) as con:
        con.execute("update publication.published_records_submitted set records_submitted = records_submitted + 1")
    for warehouse in (same_bytes, other):
        refused(deploy.cli("publish", env={"FLSDB_WAREHOUSE": str(warehouse)}), NOT_SIGNED_OFF,
                f"is for the warehouse {deploy.warehouse.resolve()}, not {warehouse}")
        refused(deploy.cli("publish", "--warehouse", str(warehouse)), NOT_SIGNED_OFF, f"not {warehouse}")
    nothing_published(deploy)
    # the history never records a warehouse that was not signed off
    assert deploy.cli("publish").returncode == 0
    (extract,) = hist.list_extracts(deploy.history)
    assert extract["warehouse_path"] == str(deploy.warehouse.resolve())


def test_a_copied_deployment_publishes_nothing_of_the_original(deploy, tmp_path):
    deploy.approve()
    copy_root = tmp_path / "copied deployment"
    shutil.copytree(deploy.root, copy_root, symlinks=True)      # cp -a of the whole deployment
    copy = dep.Deployment(copy_root, dep.env_for(copy_root, deploy.tiny), deploy.tiny)
    refused(copy.cli("publish"), NOT_SIGNED_OFF, f"is for the warehouse {deploy.warehouse.resolve()}",
            f"not {copy.warehouse}")
    nothing_published(copy)
    nothing_published(deploy)
    # the copy is a deployment of its own: validated and approved there, it publishes its own
    assert copy.validate().returncode == 0
    copy.approve("Dr Ada Lovelace")
    assert copy.cli("publish").returncode == 0
    manifest = json.loads((copy.output / "published" / "manifest.json").read_text())
    assert manifest["source_warehouse"] == str(copy.warehouse.resolve())
    nothing_published(deploy)


# -------------------------------------------------------------- checks skipped, rejections

def test_a_validation_that_skipped_checks_cannot_approve_a_publication(deploy):
    assert deploy.validate("--no-gx").returncode == 0
    validation = json.loads((deploy.quality / "validation.json").read_text())
    assert validation["checks_skipped"] == ["the Great Expectations suites (flsdb validate --no-gx)"]
    refused(deploy.cli("approve", "--reviewer", "Dr Grace Hopper", "--yes"), REFUSED,
            "the validation skipped checks", "--no-gx")
    refused(deploy.cli("publish"), REFUSED, "skipped checks")
    nothing_published(deploy)


def test_dbt_tests_not_run_by_the_last_build_are_skipped_checks(deploy, tmp_path):
    """A build of a selection (`flsdb build --select ...`) leaves tests unrun: such a validation
    cannot approve a publication. `flsdb refresh` runs every data and unit test for that reason."""
    target = deploy.tiny["target"]
    assert signoff.skipped_checks(target / "run_results.json", gx_ran=True) == []
    partial = tmp_path / "target"
    partial.mkdir()
    shutil.copy(target / "manifest.json", partial / "manifest.json")
    results = json.loads((target / "run_results.json").read_text())
    dropped = [r for r in results["results"] if r["unique_id"].startswith("test.")][:3]
    results["results"] = [r for r in results["results"] if r not in dropped]
    (partial / "run_results.json").write_text(json.dumps(results))
    (skipped,) = signoff.skipped_checks(partial / "run_results.json", gx_ran=True)
    assert skipped.startswith("3 of the project's ") and "did not run" in skipped
    from flsdb.cli import DATA_ONLY_BUILD
    assert "resource_type:test" in DATA_ONLY_BUILD and "resource_type:unit_test" not in DATA_ONLY_BUILD


def test_a_change_refused_by_a_full_build_is_refused_by_refresh_too(deploy):
    """Issue 19: `flsdb run` refused a bad seed row (its test failed), then `flsdb refresh`, which
    rebuilds only what the submissions feed, published it. The bad row is in the warehouse;
    refresh runs every test, so the seed's test fails again and nothing is published."""
    with duckdb.connect(str(deploy.warehouse)) as con:
        con.execute("update reference.fls_registry set region_code = null "
                    "where fls_code = (select max(fls_code) from reference.fls_registry)")
    done = deploy.cli("refresh")
    refused(done, REFUSED, "Publication refused: verdict FAIL", "not_null_columns_fls_registry_")
    assert "Signed off automatically" not in done.stdout
    nothing_published(deploy)


def test_a_rejected_extract_is_not_published(deploy):
    refused(deploy.cli("reject", "--reviewer", "Dr Grace Hopper"), USAGE, "--note")
    done = deploy.cli("reject", "--reviewer", "Dr Grace Hopper", "--note", "SYN003 sent last year's file")
    assert done.returncode == 0 and "Rejected by Dr Grace Hopper" in done.stdout
    refused(deploy.cli("publish"), NOT_SIGNED_OFF, "rejected by Dr Grace Hopper", "SYN003 sent last year's file")
    nothing_published(deploy)


# ------------------------------------------------------------------- the publication schedule

def _same_month_publication(deploy: dep.Deployment, tmp_path: Path) -> dict:
    """A publication of another extract of the deployment's month (its copy with one published
    number changed) in the deployment's output; returns the tier's state."""
    from flsdb.publish.marts import publish_marts

    other = tmp_path / "same_month.duckdb"
    shutil.copyfile(deploy.warehouse, other)
    with duckdb.connect(str(other)) as con:
        con.execute("update publication.published_kpi_results set numerator = numerator + 1 "
                    "where geography_level = 'national' and breakdown = 'all' and kpi_number = 2")
    publish_marts(other, deploy.output)
    return deploy.tier_state()


def test_the_schedule_is_checked_after_the_gate_and_holds_a_signed_off_extract_back(deploy, tmp_path):
    """One publication per publication period (flsdb.publish.schedule) on the one path to
    publication (flsdb.publish.release): an extract not signed off is refused by the gate (exit
    9) whatever its month; a signed-off extract of a month already published is `Not published`
    (exit 0), writes nothing and keeps its sign-off."""
    before = _same_month_publication(deploy, tmp_path)
    refused(deploy.cli("publish"), NOT_SIGNED_OFF, "has not been signed off")
    deploy.approve("Dr Grace Hopper")
    held = deploy.cli("publish")
    assert held.returncode == 0, held.stderr[-3000:]
    assert held.stdout.startswith("Not published: extract "), held.stdout
    assert "already has its publication" in held.stdout and "Dr Grace Hopper stands" in held.stdout
    assert "Approval:" not in held.stdout
    assert deploy.tier_state() == before
    assert not deploy.history.exists()
    assert json.loads((deploy.quality / "signoff.json").read_text())["decision"] == "approved"


# --------------------------------------------------------------------- real data and the robot

def test_real_data_cannot_be_signed_off_automatically(deploy):
    """The automatic sign-off of `flsdb run` / `flsdb refresh` is for synthetic data only. The
    warehouse says what it was built as (var data_is_synthetic -> is_synthetic_data)."""
    with duckdb.connect(str(deploy.warehouse)) as con:
        con.execute("update marts.kpi_results set is_synthetic_data = false")
    assert deploy.validate().returncode == 0
    reviewed = signoff.review(deploy.quality / "validation.json")
    with pytest.raises(signoff.NotSignedOff, match="real data") as refusal:
        signoff.record_decision(reviewed, signoff.APPROVED, signoff.AUTOMATIC_REVIEWER, automatic=True)
    assert refusal.value.exit_code == NOT_SIGNED_OFF
    assert not (deploy.quality / "signoff.json").exists()
    refused(deploy.cli("approve", "--reviewer", signoff.AUTOMATIC_REVIEWER, "--yes"), USAGE, "own name")
    refused(deploy.cli("publish"), NOT_SIGNED_OFF, "has not been signed off")
    nothing_published(deploy)
    deploy.approve("Dr Grace Hopper")        # a named person can
    assert deploy.cli("publish").returncode == 0


def test_real_data_run_stops_before_publication_for_a_named_person(tmp_path_factory, tmp_path):
    """`flsdb refresh` (the path `flsdb run` shares) on a project whose var data_is_synthetic is
    false: it loads, builds and validates, then stops with exit 9, publishing nothing."""
    d = dep.fresh(tmp_path_factory)
    project = tiny_build.copy_dbt_project(tmp_path)
    settings = project / "dbt_project.yml"
    settings.write_text(settings.read_text().replace("data_is_synthetic: true", "data_is_synthetic: false"))
    env = {"FLSDB_PROJECT_DIR": str(project), "DBT_PROFILES_DIR": str(project)}
    done = subprocess.run([str(Path(sys.executable).with_name("flsdb")), "refresh"],
                          env={**d.env, **env}, cwd=project, capture_output=True, text=True, timeout=1800)
    message = refused(done, NOT_SIGNED_OFF, "real data", "flsdb approve --reviewer NAME")
    assert "Signed off automatically" not in done.stdout, message
    assert json.loads((d.quality / "validation.json").read_text())["verdict"] != "FAIL"
    assert not (d.quality / "signoff.json").exists()
    nothing_published(d)
