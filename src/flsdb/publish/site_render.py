"""Writing the report site: Jinja2 pages, the scripts they share, and only what changed.

- Pages are Jinja2 templates (templates/, autoescape: every value is escaped), styled by
  static/site.css.
- A chart on a page is a small JSON block naming its Vega-Lite spec and giving its own rows
  (templates/base.html draws it). The specs are written once per site, in assets/specs.js; a
  dataset many pages draw (a KPI's funnel plot, the caterpillar plots of a year) is written once,
  in data/<key>.js, and each page loads it with <script src>, which works from file:// offline.
  With `standalone`, each page inlines what it uses instead (one file works alone).
- Only what changed is written: a file whose content is the same as in the site being replaced
  is hard-linked from it (same inode, same modification time), and flsdb.publish.site skips
  rendering a whole family of pages when none of its inputs changed (`keep`). What each build
  wrote, by family, with the fingerprint of its inputs, is kept in BUILD_RECORD.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from importlib import resources
from pathlib import Path

import jinja2
from markupsafe import Markup

#: What the last build wrote: {"families": {name: {"key": fingerprint, "files": {path: sha256}}}}.
BUILD_RECORD = ".build.json"
SPECS_SCRIPT = "assets/specs.js"
BUNDLE_SCRIPT = "assets/vega-bundle.js"
CSS_FILE = "assets/site.css"
#: The one global the shared scripts fill: FLSDB.specs[key] and FLSDB.data[key].
GLOBAL = "window.FLSDB = window.FLSDB || {specs: {}, data: {}};"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("flsdb.publish", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=False, lstrip_blocks=False)
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "default": str, "allow_nan": False,
                                         "separators": (",", ":")}
    return env


def site_css() -> str:
    return resources.files("flsdb.publish").joinpath("static/site.css").read_text(encoding="utf-8")


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)


def columnar(datasets: dict) -> dict:
    """Each dataset (a list of row dicts) as {"columns": [...], "rows": [[...], ...]}: the names
    once, not once a row (templates/base.html turns them back into rows)."""
    packed = {}
    for name, rows in datasets.items():
        columns = list(dict.fromkeys(c for row in rows for c in row))
        packed[name] = {"columns": columns, "rows": [[row.get(c) for c in columns] for row in rows]}
    return packed


def read_build_record(site_dir: Path) -> dict:
    """The record of the site at site_dir ({} when there is none or it cannot be read)."""
    try:
        record = json.loads((Path(site_dir) / BUILD_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record.get("families"), dict) else {}


def record_is_intact(site_dir: Path, family: dict) -> bool:
    """Every file of a recorded family is present with the recorded content."""
    for relative, digest in family.get("files", {}).items():
        path = Path(site_dir) / relative
        try:
            if sha256(path.read_bytes()) != digest:
                return False
        except OSError:
            return False
    return True


class Charts:
    """The charts of one page; each is a dict that templates/macros.html `chart` renders."""

    def __init__(self, renderer: Renderer, prefix: str):
        self.renderer, self.prefix = renderer, prefix
        self.count = 0
        self.spec_keys: list[str] = []
        self.shared_keys: list[str] = []

    def render(self, spec: dict, datasets: dict | None, title: str, description: str, *,
               table: str | None = "below", shared: str | None = None, params: dict | None = None) -> dict:
        """A chart of `spec` over its own `datasets` and/or the datasets of the shared file
        `shared`; `params` set the spec's parameters; `table`: where the table with the same
        numbers is ("below", "above"), None when there is none."""
        self.count += 1
        key = self.renderer.spec_key(spec)
        if key not in self.spec_keys:
            self.spec_keys.append(key)
        payload = {"spec": key, "datasets": columnar(datasets or {})}
        if shared is not None:
            payload["shared"] = shared
            if shared not in self.shared_keys:
                self.shared_keys.append(shared)
        if params:
            payload["params"] = params
        return {"id": f"{self.prefix}-chart-{self.count}", "payload": payload, "title": title,
                "description": description, "table": table}


class Renderer:
    """Writes the files of one build into `site_dir` (a fresh folder, swapped in afterwards).

    `previous` is the folder of the site being replaced and `record` its build record: a file
    with the same content there is linked, not written again."""

    def __init__(self, site_dir: Path, common: dict, *, standalone: bool = False,
                 previous: Path | None = None, record: dict | None = None):
        self.site_dir, self.common, self.standalone = Path(site_dir), common, standalone
        self.previous, self.record = previous, record or {}
        self.env = environment()
        self.css = site_css()
        self.js = ""                       # the Vega bundle's text, for standalone pages
        self.specs: dict[str, dict] = {}   # key -> spec
        self.shared: dict[str, str] = {}   # key -> its script's text
        self.family = "pages"
        self.families: dict[str, dict] = {}
        self.written = self.linked = 0
        self.old_files: dict[str, str] = {}
        for family in self.record.get("families", {}).values():
            self.old_files.update(family.get("files", {}))

    # -- files ----------------------------------------------------------------------------------
    def write(self, relative: str, content: str | bytes) -> Path:
        """Write one file of the current family (or link the same content from the old site)."""
        data = content.encode("utf-8") if isinstance(content, str) else content
        digest = sha256(data)
        path = self.site_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        old = self.previous / relative if self.previous is not None else None
        if path.exists():   # never write through a link into the site being replaced
            path.unlink()
        if (old is not None and self.old_files.get(relative) == digest and old.is_file()
                and sha256(old.read_bytes()) == digest and self._link(old, path)):
            self.linked += 1
        else:
            path.write_bytes(data)
            self.written += 1
        self.families.setdefault(self.family, {"key": None, "files": {}})["files"][relative] = digest
        return path

    @staticmethod
    def _link(old: Path, new: Path) -> bool:
        try:
            os.link(old, new)
        except OSError:
            try:
                shutil.copy2(old, new)
            except OSError:
                return False
        return True

    def start(self, family: str, key: str) -> None:
        """The files written from now on belong to `family`, whose inputs have fingerprint `key`."""
        self.family = family
        self.families[family] = {"key": key, "files": {}}

    def keep(self, family: str) -> bool:
        """Link every file of `family` from the old site, unchanged; False (nothing linked) when
        one is missing or not as recorded."""
        old = self.record.get("families", {}).get(family)
        if self.previous is None or old is None or not record_is_intact(self.previous, old):
            return False
        linked = []
        for relative in old["files"]:
            target = self.site_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if not self._link(self.previous / relative, target):
                for path in linked:
                    path.unlink()
                return False
            linked.append(target)
        self.families[family] = {"key": old["key"], "files": dict(old["files"])}
        self.linked += len(old["files"])
        return True

    def write_record(self) -> None:
        (self.site_dir / BUILD_RECORD).write_text(
            json.dumps({"format": 1, "families": self.families}, indent=1, sort_keys=True) + "\n",
            encoding="utf-8")

    # -- shared scripts -------------------------------------------------------------------------
    def spec_key(self, spec: dict) -> str:
        text = _json(spec)
        key = sha256(text.encode("utf-8"))[:12]
        self.specs.setdefault(key, spec)
        return key

    def share(self, key: str, datasets) -> str:
        """data/<key>.js: datasets several pages draw (or a function making them, called once),
        written once; returns the key."""
        if key not in self.shared:
            made = datasets() if callable(datasets) else datasets
            self.shared[key] = f"{GLOBAL}\nFLSDB.data[{_json(key)}] = {_json(columnar(made))};\n"
            if not self.standalone:     # a standalone page inlines what it draws
                self.write(f"data/{key}.js", self.shared[key])
        return key

    def _specs_script(self, keys=None) -> str:
        chosen = {k: v for k, v in self.specs.items() if keys is None or k in keys}
        return f"{GLOBAL}\n" + "".join(f"FLSDB.specs[{_json(k)}] = {_json(v)};\n" for k, v in sorted(chosen.items()))

    def write_assets(self) -> None:
        """The stylesheet and every spec the pages of this build use (after the pages)."""
        if not self.standalone:
            self.write(CSS_FILE, self.css)
            self.write(SPECS_SCRIPT, self._specs_script())

    # -- pages ----------------------------------------------------------------------------------
    def charts(self, prefix: str) -> Charts:
        return Charts(self, prefix)

    def _scripts(self, charts: Charts | None, root: str) -> list[dict]:
        if charts is None or not charts.count:
            return []
        if self.standalone:
            inline = [self._specs_script(set(charts.spec_keys))] + [self.shared[k] for k in charts.shared_keys]
            return [{"src": None, "inline": Markup(text.replace("</", "<\\/"))} for text in inline]
        return [{"src": f"{root}{path}", "inline": None}
                for path in [SPECS_SCRIPT, *[f"data/{k}.js" for k in charts.shared_keys]]]

    def page(self, relative: str, template: str, title: str, page_id: str, charts: Charts | None = None,
             **context) -> Path:
        root = "../" * relative.count("/")
        text = self.env.get_template(template).render(
            title=title, page_id=page_id, root=root, scripts=self._scripts(charts, root),
            inline_css=Markup(self.css) if self.standalone else None,
            inline_js=Markup(self.js.replace("</script", "<\\/script")) if self.standalone else None,
            **self.common, **context)
        return self.write(relative, text)
