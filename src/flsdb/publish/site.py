"""`flsdb report`: a static, offline HTML site rendered from the PUBLISHED tier.

The site is built only for an approved extract (output/approval.json, written by `flsdb publish`)
and reads only the published, read-only DuckDB file (output/published/, flsdb.publish.marts),
never the warehouse. It reads one publication whole: holding the publication lock shared
(flsdb.publish.lock: a publication in progress is waited for), it reads approval.json and the
manifest, copies the published DuckDB file and reads the history's rows; every page and every
download is then made from that snapshot. It renders; it decides nothing: suppression (primary
and complementary), the shares of FLSs rated green and the funnel curves are publication models
(models/publication/), read here as they are. The pieces, none of which imports one that
imports it:

- site.py (this module)   the entry point: checks, what changed, which pages to render;
- site_data.py            the data layer: the published tables, read once, and their lookups;
- site_render.py          the renderer: Jinja2 pages, shared scripts, only changed files written;
- site_national.py        index.html (the report at a glance) and the national-*.html pages;
- site_outliers.py        caterpillar plots, the outlier register, changes since the last extract;
- site_fls.py             fls/index.html and one page per FLS;
- site_spc.py             the monthly SPC parts and monthly/<code>.html;
- site_figures.py         the funnel and caterpillar plots several families draw;
- site_downloads.py       downloads/: every published table, Parquet and zipped CSV, a dictionary.

Charts are Vega-Lite specs made with Altair (flsdb.publish.charts*), drawn by the vega /
vega-lite / vega-embed bundle that vl-convert-python ships, written once into assets/ (or
inlined into every page with `standalone=True`). No CDN, no network.

Re-rendering only what changed: the pages are grouped in families, each with a fingerprint of
its inputs (`input_keys`: the published file, the extract history, the approval, the site's code
and templates, the options). When no fingerprint changed and the site on disk is intact, nothing
is done. Otherwise only the families whose fingerprint changed are rendered, the others are
linked from the current site unchanged, and a rendered file whose content did not change is
linked rather than written (flsdb.publish.site_render).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import tempfile
import uuid
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from flsdb import paths
from flsdb.atomic import sha256_of, swap_in_folder
from flsdb.publish import lock
from flsdb.publish.history import history_path
from flsdb.publish.marts import PUBLISHED_DB_NAME, published_db_path, read_manifest
from flsdb.publish.site_render import BUNDLE_SCRIPT, Renderer, read_build_record, record_is_intact

if TYPE_CHECKING:
    from flsdb.publish.site_outliers import HistoryRows

#: The site's own code, templates and stylesheet (part of every page's inputs).
SITE_CODE = Path(__file__).parent


class ReportError(RuntimeError):
    """The report cannot be built (not approved, nothing published, missing dependency)."""


def output_dir() -> Path:
    """Where `flsdb publish` and `flsdb report` write: $FLSDB_OUTPUT or output/."""
    return paths.output_dir()


def read_approval(out_dir: Path) -> dict:
    """The quality gate's approval, or ReportError when there is none or it is not approved."""
    approval_path = Path(out_dir) / "approval.json"
    if not approval_path.exists():
        raise ReportError(f"no approval at {approval_path}: run `flsdb publish` (the quality gate) first")
    try:
        approval = json.loads(approval_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{approval_path} is not valid JSON: {exc}") from exc
    if approval.get("status") != "approved":
        raise ReportError(f"the extract is not approved (status {approval.get('status')!r} in {approval_path})")
    return approval


def vega_javascript() -> str:
    """The vega + vega-lite + vega-embed bundle matching Altair's Vega-Lite version."""
    try:
        import vl_convert
    except ImportError as exc:  # pragma: no cover - depends on the installed pins
        raise ReportError(
            "the report needs vl-convert-python (it ships the Vega JavaScript bundle that is "
            "inlined for offline use); install the project's pinned requirements") from exc
    from altair.utils._importers import vl_version_for_vl_convert

    return vl_convert.javascript_bundle(vl_version=vl_version_for_vl_convert())


# ---------------------------------------------------------------------------------------------
# What changed
# ---------------------------------------------------------------------------------------------

def _versions(*packages: str) -> str:
    found = []
    for package in packages:
        try:
            found.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            found.append(f"{package} missing")
    return ",".join(found)


def code_key() -> str:
    """The site's code, templates and stylesheet, the project files it reads (suppression vars,
    the publication models' documentation), and the versions of the packages that draw."""
    digest = hashlib.sha256()
    files = sorted(p for p in SITE_CODE.rglob("*") if p.is_file() and p.suffix in {".py", ".html", ".css", ".sql"})
    files += [paths.PROJECT_DIR / "dbt_project.yml", paths.PROJECT_DIR / "models" / "publication"
              / "_publication__models.yml"]
    for path in files:
        digest.update(str(path.name).encode() + b"\0" + (path.read_bytes() if path.exists() else b"absent") + b"\0")
    digest.update(_versions("altair", "vl-convert-python", "pandas", "jinja2", "pyarrow", "duckdb").encode())
    return digest.hexdigest()


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def input_keys(published: str, history: Path, history_state: str, approval: dict, year: int | None,
               standalone: bool) -> dict[str, str]:
    """{family: fingerprint of its inputs}, from the published file's SHA-256 and the history's
    (`history_state`). `pages`: every page but changes.html, the shared scripts and the
    downloads; `changes`: changes.html (it reads the extract history too); `bundle`: the Vega
    JavaScript; `meta`: site.json."""
    code = code_key()
    options = {"year": year, "standalone": standalone}
    keys = {"pages": _key("pages", code, published, options),
            "changes": _key("changes", code, published, options, str(history), history_state),
            "meta": _key("meta", published, options, approval)}
    if not standalone:
        keys["bundle"] = _key("bundle", _versions("vl-convert-python", "altair"))
    return keys


def up_to_date(site: Path, keys: dict[str, str]) -> bool:
    """The site on disk was built from exactly these inputs, and is intact."""
    families = read_build_record(site).get("families", {})
    return (set(families) == set(keys) and all(families[f].get("key") == k for f, k in keys.items())
            and all(record_is_intact(site, families[f]) for f in keys))


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

def _render(out: Renderer, keys: dict[str, str], db_path: Path, history: HistoryRows, year: int | None) -> dict:
    """Render the families whose inputs changed into out.site_dir; return the data's facts."""
    from flsdb.publish import site_downloads, site_fls, site_national, site_outliers, site_spc
    from flsdb.publish.site_data import load_site_data

    def unchanged(family: str) -> bool:
        old = out.record.get("families", {}).get(family, {})
        return old.get("key") == keys[family] and out.keep(family)

    data = load_site_data(db_path)
    if not data.years:
        raise ReportError("the published tier holds no KPI results")
    try:
        data.choose_year(year)
    except ValueError as exc:
        raise ReportError(str(exc)) from exc
    out.common.update(data.page_facts())
    if "bundle" in keys and not unchanged("bundle"):
        out.start("bundle", keys["bundle"])
        out.write(BUNDLE_SCRIPT, vega_javascript())
    if not unchanged("pages"):
        out.start("pages", keys["pages"])
        if out.standalone:
            out.js = vega_javascript()
        series = site_spc.by_series(data)
        site_national.pages(data, out)
        site_outliers.caterpillars(data, out)
        site_outliers.register_page(data, out)
        site_fls.pages(data, out, series)
        site_spc.spc_pages(data, out, series)
        site_downloads.downloads_page(db_path, out)
        out.write_assets()
    if not unchanged("changes"):
        out.start("changes", keys["changes"])
        site_outliers.changes_page(data, out, history)
    return {"audit_year": data.year, "extract_date": data.extract_date, "is_synthetic": data.is_synthetic}


def build_site(out_dir: Path, year: int | None = None, standalone: bool = False,
               require_approval: bool = True, history: Path | None = None,
               on_wait=None) -> Path:
    """Build output_dir/site/ from output_dir/published/ for an approved extract.
    `history` is the extract history the changes page reads (default: $FLSDB_HISTORY); a history
    that does not exist gives a page that says so; a damaged one stops the report (HistoryError).
    The published tier, approval.json and the history are read once, under the publication lock
    held shared (`on_wait` is told when a publication in progress is waited for); the pages and
    downloads are made from that snapshot. Returns the path of the report at a glance
    (site/index.html). The site is written to a temporary folder and swapped in, so a half-built
    site is never served; when nothing it is built from changed, the site is left as it is."""
    from flsdb.publish.site_outliers import read_history

    out_dir = Path(out_dir)
    history = Path(history) if history is not None else history_path()
    site = out_dir / "site"
    with tempfile.TemporaryDirectory(prefix="flsdb-report-") as snapshot_dir:
        snapshot = Path(snapshot_dir) / PUBLISHED_DB_NAME
        with lock.shared(out_dir, on_wait=on_wait):
            approval = read_approval(out_dir) if require_approval else {}
            db_path = published_db_path(out_dir)
            if not db_path.exists():
                raise ReportError(f"no published tier at {db_path}: run `flsdb publish` first")
            manifest = read_manifest(out_dir)
            approved_date = str(approval.get("extract_date") or "")[:10]
            published_date = str(manifest.get("extract_date") or "")[:10]
            if approved_date and published_date and approved_date != published_date:
                raise ReportError(f"the published tier (extract {published_date}) is not the approved extract "
                                  f"({approved_date}): run `flsdb publish` again")
            published = sha256_of(db_path)
            if manifest.get("database_sha256") and published != manifest["database_sha256"]:
                raise ReportError(f"the published tier is not whole: {db_path} does not match the "
                                  f"SHA-256 of its manifest: run `flsdb publish` again")
            history_state = sha256_of(history) if history.is_file() else "absent"
            shown_approval = {k: approval.get(k) for k in ("status", "verdict", "extract_date", "approved_at",
                                                           "reviewer", "sign_off_kind", "publication_id")}
            keys = input_keys(published, history, history_state, shown_approval, year, standalone)
            if up_to_date(site, keys):
                return site / "index.html"
            shutil.copyfile(db_path, snapshot)
            history_rows = read_history(history)
        if sha256_of(snapshot) != published:
            raise ReportError(f"the published tier changed while it was being read ({db_path}): "
                              "run `flsdb report` again")
        return _build(out_dir, site, snapshot, manifest, shown_approval, history_rows, keys, year, standalone)


def _build(out_dir: Path, site: Path, db_path: Path, manifest: dict, shown_approval: dict,
           history_rows: HistoryRows, keys: dict[str, str], year: int | None, standalone: bool) -> Path:
    """Render the site from the snapshot into a temporary folder and swap it in."""
    tmp = out_dir / f".site-tmp-{uuid.uuid4().hex[:8]}"
    try:
        out = Renderer(tmp, {}, standalone=standalone, previous=site if site.is_dir() else None,
                       record=read_build_record(site))
        facts = _render(out, keys, db_path, history_rows, year)
        out.start("meta", keys["meta"])
        out.write("site.json", json.dumps({
            **facts, "built_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "published_database_sha256": manifest.get("database_sha256"),
            "downloads": sorted(p.stem for p in (tmp / "downloads").glob("*.parquet")),
            "approval": shown_approval,
        }, indent=2) + "\n")
        out.write_record()
        swap_in_folder(tmp, site)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return site / "index.html"
