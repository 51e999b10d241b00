"""Helpers of the site tests: the approval the gate would write, the cells of a page's KPI rows
(kpi_rows), and reading the report site's charts back, as the browser does (templates/base.html):
each chart's JSON names its spec (assets/specs.js) and gives its own rows and/or names a shared
dataset (data/<key>.js); datasets are packed as {"columns", "rows"}."""

from __future__ import annotations

import html as html_lib
import json
import re
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

CHART_RE = re.compile(r'<figcaption>(.*?)</figcaption>\s*<div class="vl-chart"[^>]*></div>\s*'
                      r'<script type="application/json" class="vl-spec"[^>]*>(.*?)</script>', re.S)
ASSIGN_RE = re.compile(r'^FLSDB\.(specs|data)\[("(?:[^"\\]|\\.)*")\] = (.*);$', re.M)


def write_approval(out_dir: Path, status: str = "approved", extract_date: str | None = None) -> None:
    """The approval `flsdb publish` would write, written by hand into a test's output folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "approval.json").write_text(json.dumps({
        "status": status, "verdict": "pass" if status == "approved" else "fail",
        "extract_date": extract_date, "warehouse": "test", "approved_at": "2025-07-01T00:00:00+00:00",
        "validation_sha256": "0" * 64}), encoding="utf-8")


def site_root(page: Path) -> Path:
    """The site folder a page belongs to (the folder holding assets/)."""
    for folder in Path(page).resolve().parents:
        if (folder / "assets").is_dir() or (folder / ".build.json").is_file():
            return folder
    raise AssertionError(f"no site folder above {page}")


@cache
def _scripts(root: Path, mtime: float) -> dict:
    found = {"specs": {}, "data": {}}
    for path in [root / "assets" / "specs.js", *sorted((root / "data").glob("*.js"))]:
        if path.exists():
            for kind, key, value in ASSIGN_RE.findall(path.read_text(encoding="utf-8")):
                found[kind][json.loads(key)] = json.loads(value)
    return found


def shared_scripts(root: Path) -> dict:
    """{"specs": {key: spec}, "data": {key: packed datasets}} of a site."""
    stamp = max((p.stat().st_mtime for p in [root / "assets" / "specs.js", *(root / "data").glob("*.js")]
                 if p.exists()), default=0.0)
    return _scripts(Path(root).resolve(), stamp)


def unpack(datasets: dict) -> dict[str, list[dict]]:
    return {name: [dict(zip(d["columns"], row)) for row in d["rows"]] for name, d in (datasets or {}).items()}


def resolve(payload: dict, root: Path) -> dict:
    """The full Vega-Lite spec a chart's JSON stands for, datasets and parameters filled in."""
    scripts = shared_scripts(root)
    spec = json.loads(json.dumps(scripts["specs"][payload["spec"]]))
    datasets = unpack(scripts["data"][payload["shared"]]) if payload.get("shared") else {}
    datasets.update(unpack(payload.get("datasets")))
    spec["datasets"] = datasets
    for param in spec.get("params", []):
        if param["name"] in payload.get("params", {}):
            param["value"] = payload["params"][param["name"]]
    return spec


def payloads(page: Path) -> list[tuple[str, dict]]:
    """(caption, chart JSON) of every chart of a page, in order."""
    return [(html_lib.unescape(caption), json.loads(text.replace("<\\/", "</")))
            for caption, text in CHART_RE.findall(Path(page).read_text(encoding="utf-8"))]


def page_charts(page: Path) -> list[tuple[str, dict]]:
    """(caption, full spec) of every chart of a page, in order."""
    root = site_root(page)
    return [(caption, resolve(payload, root)) for caption, payload in payloads(page)]


def every_dataset_row(root: Path):
    """(where, row) of every row any chart of the site can draw: inline and shared datasets."""
    for name, rows in ((k, unpack(v)) for k, v in shared_scripts(root)["data"].items()):
        for dataset in rows.values():
            for row in dataset:
                yield f"data/{name}.js", row
    for page in Path(root).rglob("*.html"):
        for _, payload in payloads(page):
            for dataset in unpack(payload.get("datasets")).values():
                for row in dataset:
                    yield page.name, row


class RowCells(HTMLParser):
    """Cells of the <tr data-kpi=...> rows of a page, by KPI number."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, dict] = {}
        self._row = None
        self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-kpi" in attrs:
            self._row = {"attrs": attrs, "cells": []}
            self.rows.setdefault(attrs["data-kpi"], self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def kpi_rows(path: Path) -> dict[str, dict]:
    parser = RowCells()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser.rows
