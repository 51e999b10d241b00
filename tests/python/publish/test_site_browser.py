"""The report site's pages in a real browser (Debian's headless Chromium; skipped when it is not
installed, `make browser` installs it): every chart renders, with no console error, on the main
pages, the outlier pages and the changes page. Screenshots are kept beside the site.

Uses the session's national warehouse, published and rendered by published_site.py's module fixtures.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from published_site import published, site  # noqa: F401  (module fixtures: the national warehouse published, its site)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("chromium is not installed (make test installs it: apt-get install -y chromium)")


def render(browser: str, page: Path, work: Path, screenshot: Path) -> tuple[str, str]:
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              "--no-first-run", "--disable-extensions", f"--user-data-dir={work / 'profile'}",
              "--virtual-time-budget=20000", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0, dom.stderr[-3000:]
    shot = subprocess.run([*common, "--window-size=1280,2400", f"--screenshot={screenshot}", page.as_uri()],
                          capture_output=True, text=True, timeout=180)
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-3000:]
    return dom.stdout, dom.stderr


@pytest.mark.parametrize("page", ["index.html", "fls/SYN001.html", "monthly/K04000001.html"])
def test_pages_render_their_charts_in_a_headless_browser(site, page, tmp_path):
    browser = chromium()
    screenshots = site.parent / "screenshots"
    screenshots.mkdir(exist_ok=True)
    shot = screenshots / (page.replace("/", "_").replace(".html", ".png"))
    dom, log = render(browser, site / page, tmp_path, shot)
    total = int(re.search(r'data-charts-total="(\d+)"', dom).group(1))
    rendered = int(re.search(r'data-charts-rendered="(\d+)"', dom).group(1))
    assert total >= 2 and rendered == total, (rendered, total)
    errors = json.loads(re.search(r'<pre id="console-errors">(.*?)</pre>', dom, flags=re.S).group(1))
    assert errors == [], errors
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", log), log[-3000:]
    assert dom.count("<svg") >= total
    if page != "index.html":   # the SPC charts (one per monthly KPI) are among those drawn
        spc_charts = re.findall(r'<div class="spc-chart" data-kpi="\d+">\s*<figure class="chart">\s*'
                                r'<figcaption>[^<]*</figcaption>\s*(<div class="vl-chart[^"]*"[^>]*>)', dom)
        drawn = [c for c in spc_charts if 'data-rendered="true"' in c]
        assert len(spc_charts) >= 10 and len(drawn) == len(spc_charts), (len(drawn), len(spc_charts))
    assert "SYNTHETIC DATA" in dom
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


@pytest.mark.parametrize("page", ["national-funnels.html", "national-caterpillars.html", "outlier-register.html",
                                  "changes.html", "fls/SYN002.html"])
def test_outlier_and_change_pages_render_in_a_headless_browser(site, page, tmp_path):
    browser = chromium()
    screenshots = site.parent / "screenshots"
    screenshots.mkdir(exist_ok=True)
    shot = screenshots / (page.replace("/", "_").replace(".html", ".png"))
    dom, log = render(browser, site / page, tmp_path, shot)
    total = int(re.search(r'data-charts-total="(\d+)"', dom).group(1))
    rendered = int(re.search(r'data-charts-rendered="(\d+)"', dom).group(1))
    assert rendered == total, (rendered, total)
    errors = json.loads(re.search(r'<pre id="console-errors">(.*?)</pre>', dom, flags=re.S).group(1))
    assert errors == [], errors
    assert not re.search(r"CONSOLE.*(Uncaught|Error)", log), log[-3000:]
    assert dom.count("<svg") >= total
    if page == "national-funnels.html":
        assert total >= 5
        # the unadjusted limits are drawn dotted, the adjusted ones solid (no dash array)
        assert re.search(r'<path[^>]*stroke-dasharray="2,3"', dom), "no dotted line drawn"
    if page in ("national-caterpillars.html", "fls/SYN002.html"):
        assert total >= (9 if page == "national-caterpillars.html" else 3)
    if page == "outlier-register.html":
        assert "data-status=" in dom
    assert shot.stat().st_size > 10_000
