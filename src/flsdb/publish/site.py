"""`flsdb report`: a static, self-contained, offline HTML site rendered from the PUBLISHED tier.

The site is built only for an approved extract (output/approval.json, written by `flsdb publish`)
and reads only the published, read-only DuckDB file (output/published/, flsdb.publish.marts),
never the warehouse. It reads one publication whole: holding the publication lock shared
(flsdb.publish.lock: a publication in progress is waited for), it copies the published DuckDB
file, reads approval.json and the manifest, and reads the history's rows; every page and every
download is then made from that snapshot. It renders; it decides nothing: suppression (primary and complementary),
the shares of FLSs rated green and the funnel curves are publication models
(models/publication/), read here as they are. Pages are Jinja2 templates (templates/, with
autoescape: every value is escaped), styled by static/site.css:

- index.html                 the report at a glance for one audit year (default: the latest);
- national-trends.html       KPI trends across the audit years;
- national-geography.html    country and region comparisons;
- national-deprivation.html  deprivation gradients (quintiles 1-5) for the proportion KPIs;
- national-funnels.html      funnel plots (95% and 99.8% limits) of every KPI with a curve;
- national-caterpillars.html, outlier-register.html, changes.html: see flsdb.publish.site_outliers;
- fls/index.html, fls/<code>.html  one page per FLS (with its monthly SPC charts, site_spc.py);
- monthly/index.html, monthly/<code>.html  monthly SPC charts of England and Wales and each country;
- downloads/                 the publication tables, CSV and Parquet, with a data dictionary.

Charts are Vega-Lite specs made with Altair (flsdb.publish.charts), inlined in the page, drawn by
the vega/vega-lite/vega-embed JavaScript bundle that vl-convert-python ships, copied once into
assets/ (or inlined into every page with `standalone=True`). No CDN, no network.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import uuid
from importlib import resources
from pathlib import Path

import jinja2
import pandas as pd
from markupsafe import Markup

from flsdb import paths
from flsdb.atomic import sha256_of, swap_in_folder
from flsdb.publish import charts as ch
from flsdb.publish import site_outliers
from flsdb.publish.history import history_path
from flsdb.publish.kpi_words import kpi_words
from flsdb.publish.cells import (DASH, SUPPRESSED, _missing, direction, fmt_ci, fmt_count, fmt_pct,
                                 outlier_text, rating_cell, table, value_with_ci)
from flsdb.publish import lock
from flsdb.publish.marts import PUBLISHED_DB_NAME, published_db_path, read_manifest
from flsdb.publish.site_data import DOWNLOADS, SiteData, load_site_data, write_downloads
from flsdb.publish.site_spc import spc_pages, spc_section

#: The KPI whose funnel plot each FLS page shows, with the FLS ringed (a presentation choice).
FLS_PAGE_FUNNEL_KPI = 7
#: The KPI of the glance page's sentence on deprivation (a presentation choice).
GLANCE_DEPRIVATION_KPI = 7


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


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("flsdb.publish", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=False, lstrip_blocks=False)
    env.policies["json.dumps_kwargs"] = {"sort_keys": False, "default": str, "allow_nan": False}
    return env


def site_css() -> str:
    return resources.files("flsdb.publish").joinpath("static/site.css").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The site
# ---------------------------------------------------------------------------------------------

class SiteBuilder:
    def __init__(self, data: SiteData, db_path: Path, site_dir: Path, year: int, standalone: bool = False,
                 history: Path | site_outliers.HistoryRows | None = None):
        self.data, self.db_path, self.site_dir, self.year = data, db_path, site_dir, year
        # the history's path, or its rows already read (build_site's snapshot)
        self.history = history if history is not None else history_path()
        self.previous_year = max((y for y in data.years if y < year), default=None)
        self.standalone = standalone
        self.js = vega_javascript()
        self.css = site_css()
        self.env = environment()
        kpis = data.kpis.set_index("kpi_number")
        self.kpis = [int(k) for k in kpis.index]
        self.kpi_short = {int(k): str(v) for k, v in kpis["kpi_short_name"].items()}
        self.kpi_name = {int(k): str(v) for k, v in kpis["kpi_name"].items()}
        self.value_type = {int(k): str(v) for k, v in kpis["value_type"].items()}
        self.proportion_kpis = [k for k in self.kpis if self.value_type[k] == "proportion"]
        # Sentences about groups of KPIs (KPI 1, KPI 2 and 3, the rating thresholds), from the seed.
        self.kpi_words = kpi_words(data.kpis)
        self.completeness_kpis = [k for k in self.kpis if self.value_type[k] == "completeness"]
        results = data.results.copy()
        results["kpi_label"] = [f"KPI {int(k)}: {self.kpi_short[int(k)]}" for k in results["kpi_number"]]
        self.results = results
        records = results.to_dict("records")
        self.index = {(r["audit_year"], r["geography_level"], r["geography_code"], r["kpi_number"],
                       r["breakdown"], r["breakdown_value"]): r for r in records}
        national_codes = results.loc[results["geography_level"] == "national", "geography_code"].unique()
        self.national_code = national_codes[0] if len(national_codes) else None
        self.code_by_name = {(r["geography_level"], r["geography_name"]): r["geography_code"] for r in records}
        self.by_fls = dict(tuple(results.loc[results["geography_level"] == "fls"].groupby("geography_code")))
        self.pages: list[Path] = []

    # -- plumbing ----------------------------------------------------------------------------
    def write_page(self, relative: str, template: str, title: str, page_id: str, **context) -> Path:
        root = "../" * relative.count("/")
        text = self.env.get_template(template).render(
            title=title, synthetic=self.data.is_synthetic, page_id=page_id, root=root,
            inline_css=Markup(self.css) if self.standalone else None,
            inline_js=Markup(self.js.replace("</script", "<\\/script")) if self.standalone else None,
            extract_date=self.data.extract_date or "", built_at=self.data.built_at or "",
            min_den=f"{self.data.limits[0]:g}", max_small=f"{self.data.limits[1]:g}", kpi_words=self.kpi_words,
            **context)
        path = self.site_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        self.pages.append(path)
        return path

    def rows(self, **filters) -> pd.DataFrame:
        frame = self.results
        if filters.get("geography_level") == "fls" and "geography_code" in filters:
            frame = self.by_fls.get(filters["geography_code"], frame.iloc[0:0])
        mask = pd.Series(True, index=frame.index)
        for column, value in filters.items():
            mask &= frame[column].isin(list(value)) if isinstance(value, (list, tuple, set)) else frame[column] == value
        return frame.loc[mask]

    def one(self, audit_year, geography_level, kpi_number, breakdown="all", geography_code=None,
            breakdown_value="all", geography_name=None) -> dict | None:
        """One result, by its key (geography_code may be left out for national)."""
        if geography_name is not None:
            geography_code = self.code_by_name.get((geography_level, geography_name))
        if geography_level == "national" and geography_code is None:
            geography_code = self.national_code
        return self.index.get((audit_year, geography_level, geography_code, kpi_number, breakdown,
                               breakdown_value))

    def pct(self, row: dict | None) -> str:
        return DASH if row is None else fmt_pct(row["value_pct"], bool(row["is_suppressed"]))

    # -- report at a glance -----------------------------------------------------------------
    def glance(self) -> None:
        y, p = self.year, self.previous_year
        charts = ch.Charts("glance")
        records = [{"year": year, "count": fmt_count(self.data.records.get(year))} for year in (y, p) if year]
        green = self.data.green_shares.loc[self.data.green_shares["audit_year"] == y].set_index("kpi_number")
        rows, attrs = [], []
        for kpi in self.kpis:
            cur = self.one(y, "national", kpi)
            prev = self.one(p, "national", kpi) if p else None
            symbol, words = direction(cur and cur["value_pct"], prev and prev["value_pct"])
            css = {"up": "up", "down": "down"}.get(words, "same")
            g = green.loc[kpi] if kpi in green.index else None
            share = ("not rated" if g is None or not g["fls_rated"] else
                     f"{g['green_share_pct']:.0f}% ({int(g['fls_rated_green'])} of {int(g['fls_rated'])})")
            target = cur.get("target_pct") if cur else None
            rows.append([f"KPI {kpi}", self.kpi_name[kpi], self.pct(cur),
                         Markup('<span class="{}" aria-hidden="true">{}</span> {}').format(css, symbol, words),
                         self.pct(prev), DASH if _missing(target) else f"{float(target):.0f}%", share])
            attrs.append({"data-kpi": kpi, "data-direction": words})
        kpi_table = table(f"National KPI values, {y} against {p}" if p else f"National KPI values, {y}",
                          ["KPI", "name", f"{y}", "change", f"{p}" if p else "previous year", "target",
                           "FLSs rated green" + (f" ({self.kpi_words['completeness']}: met)"
                                                 if self.completeness_kpis else "")], rows, {2, 4, 5}, attrs)
        national = self.rows(audit_year=[y, p] if p else [y], geography_level="national", breakdown="all")
        green_rows = green.reset_index().dropna(subset=["green_share_pct"])
        green_rows["kpi_label"] = [f"KPI {int(k)}: {self.kpi_short[int(k)]}" for k in green_rows["kpi_number"]]
        kpi_charts = [
            charts.render(ch.glance_spec(), ch.glance_data(ch.plotted(national)), f"National KPI values, {y} and {p}",
                          f"Dot plot of each KPI's national value in {y} (diamonds) and {p} (circles)."),
            charts.render(ch.green_share_spec(), {"values": ch._records(green_rows.rename(columns={
                "fls_rated_green": "green", "fls_rated": "rated"}), ["kpi_label", "kpi_number", "green_share_pct",
                                                                    "green", "rated"])},
                          f"Share of FLSs rated green, {y}",
                          f"Bar chart of the percentage of FLSs rated green"
                          + (f" (or meeting {self.kpi_words['completeness']})" if self.completeness_kpis else "")
                          + f" on each KPI in {y}.")]
        rows, attrs = [], []
        for kpi in self.proportion_kpis:
            most = self.one(y, "national", kpi, "deprivation_quintile", breakdown_value="1")
            least = self.one(y, "national", kpi, "deprivation_quintile", breakdown_value="5")
            gap = None
            if most and least and not _missing(most["value_pct"]) and not _missing(least["value_pct"]):
                gap = float(least["value_pct"]) - float(most["value_pct"])
            rows.append([f"KPI {kpi}", self.kpi_name[kpi], self.pct(most), self.pct(least),
                         DASH if gap is None else f"{gap:+.1f} points"])
            attrs.append({"data-kpi": kpi})
        first, last = self.proportion_kpis[0], self.proportion_kpis[-1]
        deprivation_table = table(f"KPIs {first}-{last} by deprivation quintile, {y}: most (1) and least (5) deprived",
                                  ["KPI", "name", "most deprived (1)", "least deprived (5)", "least minus most"],
                                  rows, {2, 3, 4}, attrs)
        kpi7 = None
        most = self.one(y, "national", GLANCE_DEPRIVATION_KPI, "deprivation_quintile", breakdown_value="1")
        least = self.one(y, "national", GLANCE_DEPRIVATION_KPI, "deprivation_quintile", breakdown_value="5")
        if most and least:
            kpi7 = {"number": GLANCE_DEPRIVATION_KPI, "name": self.kpi_name[GLANCE_DEPRIVATION_KPI],
                    "most": self.pct(most), "least": self.pct(least)}
        dep = self.rows(audit_year=y, geography_level="national", breakdown="deprivation_quintile",
                        kpi_number=self.proportion_kpis, breakdown_value=["1", "5"])
        deprivation_chart = charts.render(
            ch.deprivation_pair_spec(), ch.deprivation_pair_data(ch.plotted(dep)), f"Most against least deprived, {y}",
            f"Dot plot of KPIs {first} to {last} in {y}: most deprived quintile (squares) and least deprived (circles).")
        self.write_page("index.html", "glance.html", f"Report at a glance, {y}", "glance", year=y, records=records,
                        kpi_table=kpi_table, kpi_charts=kpi_charts, kpi7=kpi7, deprivation_table=deprivation_table,
                        deprivation_chart=deprivation_chart)

    # -- national pages ---------------------------------------------------------------------
    def trends(self) -> None:
        charts = ch.Charts("trends")
        national = self.rows(geography_level="national", breakdown="all").assign(series="England and Wales")
        chart = charts.render(ch.trend_spec(), ch.trend_data(ch.plotted(national)), "National KPI values by audit year",
                              "Small multiples, one per KPI: the national value in each audit year.")
        rows = [[f"KPI {kpi}", self.kpi_name[kpi], *[self.pct(self.one(year, "national", kpi))
                                                     for year in self.data.years]] for kpi in self.kpis]
        years = self.data.years
        self.write_page("national-trends.html", "trends.html", "KPI trends across audit years", "trends", chart=chart,
                        table=table("National KPI values by audit year", ["KPI", "name", *map(str, years)], rows,
                                    range(2, 2 + len(years))))

    def geography(self) -> None:
        charts = ch.Charts("geography")
        y = self.year
        levels = []
        for level, title in (("country", "Countries"), ("region", "Regions")):
            frame = self.rows(audit_year=y, geography_level=level, breakdown="all")
            chart = charts.render(
                ch.comparison_spec(), ch.comparison_data(ch.plotted(frame)),
                f"{title}: KPI values with 95% confidence intervals, {y}",
                f"One panel per KPI: each {level}'s value (dot) with its 95% confidence interval (line); "
                "the dashed line is the national value.")
            names = sorted(frame["geography_name"].dropna().unique())
            rows = []
            for kpi in self.kpis:
                cells = [f"KPI {kpi}: {self.kpi_short[kpi]}"]
                for name in names:
                    r = self.one(y, level, kpi, geography_name=name)
                    cells.append(DASH if r is None else value_with_ci(r))
                rows.append([*cells, self.pct(self.one(y, "national", kpi))])
            levels.append({"title": title, "chart": chart, "table": table(
                f"{title}: KPI values (95% confidence interval), {y}", ["KPI", *names, "England and Wales"], rows,
                range(1, len(names) + 2))})
        self.write_page("national-geography.html", "geography.html", f"Country and region comparisons, {y}",
                        "geography", year=y, levels=levels)

    def deprivation(self) -> None:
        charts = ch.Charts("deprivation")
        kpis = self.proportion_kpis
        frame = self.rows(geography_level="national", breakdown="deprivation_quintile", kpi_number=kpis)
        chart = charts.render(ch.gradient_spec(), ch.gradient_data(ch.plotted(frame.loc[frame["breakdown_value"] != "unknown"])),
                              f"KPIs {kpis[0]}-{kpis[-1]} by deprivation quintile",
                              "Small multiples, one per KPI: the national value in each deprivation quintile, "
                              "one line per audit year.")
        quintiles = list(ch.QUINTILE_LABELS)
        tables = [table(f"KPIs {kpis[0]}-{kpis[-1]} by deprivation quintile, England and Wales, {year}",
                        ["KPI", *ch.QUINTILE_LABELS.values()],
                        [[f"KPI {kpi}: {self.kpi_short[kpi]}",
                          *[self.pct(self.one(year, "national", kpi, "deprivation_quintile", breakdown_value=q))
                            for q in quintiles]] for kpi in kpis], range(1, 1 + len(quintiles)))
                  for year in self.data.years]
        self.write_page("national-deprivation.html", "deprivation.html", "Deprivation gradients", "deprivation",
                        chart=chart, tables=tables)

    def funnel(self, kpi: int, year: int) -> tuple[pd.DataFrame, pd.DataFrame, float | None]:
        """(FLS points, published curve, national value) of one KPI's funnel plot."""
        points = ch.plotted(self.rows(audit_year=year, geography_level="fls", kpi_number=kpi, breakdown="all")).copy()
        points["status"] = ["alarm (outside 99.8%)" if alarm else "alert (outside 95%)" if alert else "within limits"
                            for alert, alarm in zip(points["is_outlier_alert"], points["is_outlier_alarm"])]
        limits = self.data.funnel_limits
        curve = limits.loc[(limits["audit_year"] == year) & (limits["kpi_number"] == kpi)]
        national = None if curve.empty else float(curve["national_value_pct"].iloc[0])
        return points, curve, national

    def funnel_x_title(self, kpi: int) -> str:
        return ("expected fragility fractures in the catchment (log scale)"
                if self.value_type[kpi] == "ratio_to_expected" else "patients in the denominator (log scale)")

    def funnels(self) -> None:
        charts = ch.Charts("funnels")
        y = self.year
        funnels = []
        curve_kpis = sorted(int(k) for k in self.data.funnel_limits["kpi_number"].unique())
        for kpi in curve_kpis:
            points, curve, national = self.funnel(kpi, y)
            entry = {"kpi": kpi, "name": self.kpi_name[kpi], "chart": None, "table": None}
            if national is not None and not points.empty:
                entry["chart"] = charts.render(
                    ch.funnel_spec(self.funnel_x_title(kpi)), ch.funnel_data(points, curve, national),
                    f"Funnel plot, KPI {kpi}, {y}: {ch.funnel_caption(curve)}",
                    f"Funnel plot of FLS results for KPI {kpi} against their denominator, around the national "
                    f"value {national:.1f}%: 95% (thin) and 99.8% (thick) control limits adjusted for "
                    f"overdispersion (solid) and unadjusted (dotted); {ch.funnel_caption(curve)}.")
                decimals = 1 if self.value_type[kpi] == "ratio_to_expected" else 0
                outliers = points.loc[points["is_outlier_alert"].astype(bool)].sort_values("value_pct")
                entry["table"] = table(f"KPI {kpi}, {y}: FLSs outside the 95% limits",
                                       ["FLS", "code", "value", "denominator", "outlier"],
                                       [[r["geography_name"], r["geography_code"], fmt_pct(r["value_pct"]),
                                         fmt_count(r["denominator"], decimals=decimals), outlier_text(r)]
                                        for r in outliers.to_dict("records")], {2, 3})
            funnels.append(entry)
        self.write_page("national-funnels.html", "funnels.html", f"Funnel plots, {y}", "funnels", year=y,
                        funnels=funnels)

    # -- FLS pages --------------------------------------------------------------------------
    def fls_codes(self) -> list[str]:
        return sorted(self.by_fls)

    def fls_index(self) -> None:
        fls = self.data.fls.set_index("fls_code")
        services = []
        for code in self.fls_codes():
            info = fls.loc[code] if code in fls.index else None
            year_rows = self.rows(audit_year=self.year, geography_level="fls", geography_code=code, breakdown="all")
            counts = year_rows["rating"].value_counts()
            services.append({
                "code": code, "name": info["fls_name"] if info is not None else code,
                "region": info["region_name"] if info is not None else "",
                "country": info["country_name"] if info is not None else "",
                "summary": ", ".join(f"{counts.get(k, 0)} {k}" for k in ("green", "amber", "red"))
                if len(year_rows) else "no results"})
        self.write_page("fls/index.html", "fls_index.html", "FLS results", "fls-index", year=self.year,
                        services=services)

    def fls_page(self, code: str) -> None:
        charts = ch.Charts(f"fls-{code}")
        y = self.year
        fls = self.data.fls.set_index("fls_code")
        info = fls.loc[code].to_dict() if code in fls.index else None
        name = str(info["fls_name"]) if info is not None else code
        mine = self.rows(audit_year=y, geography_level="fls", geography_code=code, breakdown="all")
        rows, attrs = [], []
        for kpi in self.kpis:
            r = self.one(y, "fls", kpi, geography_code=code)
            if r is None:
                rows.append([f"KPI {kpi}", self.kpi_name[kpi], "no result", "", "", "", "", ""])
                attrs.append({"data-kpi": kpi, "data-suppressed": "false"})
                continue
            s = bool(r["is_suppressed"])
            decimals = 1 if self.value_type[kpi] == "ratio_to_expected" else 0
            counts = SUPPRESSED if s else f"{fmt_count(r['numerator'])} / {fmt_count(r['denominator'], decimals=decimals)}"
            rows.append([f"KPI {kpi}", self.kpi_name[kpi], fmt_pct(r["value_pct"], s),
                         fmt_ci(r["ci_lower_pct"], r["ci_upper_pct"], s), counts, fmt_pct(r["national_value_pct"]),
                         rating_cell(r["rating"], s), outlier_text(r)])
            attrs.append({"data-kpi": kpi, "data-suppressed": str(s).lower()})
        kpi_table = table(f"{name}: KPIs, {y}, beside the national value",
                          ["KPI", "name", "value", "95% CI", "numerator / denominator", "national", "rating",
                           "outlier flag"], rows, {2, 3, 4, 5}, attrs)
        plotted = ch.plotted(mine)
        kpi_chart = charts.render(ch.fls_kpi_spec(), ch.fls_kpi_data(plotted), f"{name}: KPI values and national values, {y}",
                                  "Dot plot: the FLS's value (blue dot) with its 95% confidence interval "
                                  "(grey line) and the national value (orange tick) for each KPI.") if len(plotted) else None
        trend = self.rows(geography_level="fls", geography_code=code, breakdown="all").assign(series="this FLS")
        national = self.rows(geography_level="national", breakdown="all").assign(series="England and Wales")
        both = pd.concat([ch.plotted(trend), ch.plotted(national)])
        trend_chart = charts.render(ch.trend_spec(150), ch.trend_data(both), f"{name}: KPI values by audit year",
                                    "Small multiples, one per KPI: this FLS's value (blue) and the national "
                                    "value (grey) in each audit year.") if len(both) else None
        trend_rows = []
        for kpi in self.kpis:
            cells = [f"KPI {kpi}: {self.kpi_short[kpi]}"]
            for year in self.data.years:
                r = self.one(year, "fls", kpi, geography_code=code)
                cells.append(DASH if r is None else SUPPRESSED if r["is_suppressed"] else
                             Markup("{} {}").format(fmt_pct(r["value_pct"]), rating_cell(r["rating"])))
            trend_rows.append(cells)
        trend_table = table(f"{name}: KPI values by audit year", ["KPI", *map(str, self.data.years)], trend_rows,
                            range(1, 1 + len(self.data.years)))
        flagged = mine.loc[mine["is_outlier_alert"].fillna(False).astype(bool)]
        outliers = [{"kpi": int(r["kpi_number"]), "name": self.kpi_short[int(r["kpi_number"])], "text": outlier_text(r)}
                    for r in flagged.to_dict("records")]
        comp = self.data.completeness
        comp = comp.loc[(comp["fls_code"] == code) & (comp["audit_year"] == y)]
        completeness_table, verdict = None, None
        if len(comp):
            first = comp.iloc[0]
            verdict = (f"{self.kpi_words['completeness']}: {int(first['fields_at_least_80_pct_complete'])} of {int(first['key_fields'])} "
                       f"key fields at least {self.kpi_words['key_field_threshold']} complete: {'✔ met' if first['fls_meets_kpi_1'] else '✖ not met'}.")
            comp_rows = []
            for r in comp.to_dict("records"):
                s = bool(r["is_suppressed"])
                ok = r["is_at_least_80_pct_complete"]
                comp_rows.append([r["field_name"], fmt_pct(r["completeness_pct"], s),
                                  SUPPRESSED if s else f"{fmt_count(r['records_recorded'])} of {fmt_count(r['records_measured'])}",
                                  SUPPRESSED if s else ("✔ yes" if ok else "✖ no")])
            completeness_table = table(f"{name}: completeness of the {len(comp)} key fields, {y}",
                                       ["field", "complete", "records", f"at least {self.kpi_words['key_field_threshold']}"], comp_rows, {1, 2})
        points, curve, national_v = self.funnel(FLS_PAGE_FUNNEL_KPI, y)
        funnel_chart = None
        if national_v is not None and code in set(points["geography_code"]):
            funnel_chart = charts.render(
                ch.funnel_spec(self.funnel_x_title(FLS_PAGE_FUNNEL_KPI), highlight=True),
                ch.funnel_data(points, curve, national_v, highlight=code),
                f"KPI {FLS_PAGE_FUNNEL_KPI} funnel plot, {y}, this FLS ringed: {ch.funnel_caption(curve)}",
                f"Funnel plot of all FLSs' KPI {FLS_PAGE_FUNNEL_KPI} results with 95% (thin) and 99.8% (thick) "
                "limits, adjusted for overdispersion (solid) and unadjusted (dotted); this FLS is ringed in black.")
        self.write_page(f"fls/{code}.html", "fls_page.html", name, f"fls-{code}", code=code, info=info, year=y,
                        kpi_table=kpi_table, kpi_chart=kpi_chart, trend_chart=trend_chart, trend_table=trend_table,
                        outliers=outliers, completeness_table=completeness_table, kpi1_verdict=verdict,
                        funnel_chart=funnel_chart, funnel_kpi=FLS_PAGE_FUNNEL_KPI,
                        # issue 15: this FLS's caterpillars and outlier register entries (site_outliers)
                        caterpillar_chart=site_outliers.fls_caterpillar(self, charts, code, name),
                        register_table=site_outliers.fls_register_entries(self, code, name),
                        spc=spc_section(self, "fls", code, name))

    # -- downloads --------------------------------------------------------------------------
    def downloads(self) -> None:
        folder = self.site_dir / "downloads"
        files = write_downloads(self.db_path, folder)
        dictionary = pd.read_csv(folder / "data_dictionary.csv", dtype=str, keep_default_na=False)
        rows = [[r["file"], r["column"], r["type"], r["description"]] for r in dictionary.to_dict("records")]
        self.write_page("downloads/index.html", "downloads.html", "Downloads: publication tables", "downloads",
                        files=[p.name for p in files],
                        dictionary=table("Data dictionary", ["file", "column", "type", "description"], rows))

    def build(self) -> list[Path]:
        if not self.standalone:
            assets = self.site_dir / "assets"
            assets.mkdir(parents=True, exist_ok=True)
            (assets / "vega-bundle.js").write_text(self.js, encoding="utf-8")
            (assets / "site.css").write_text(self.css, encoding="utf-8")
        self.glance()
        self.trends()
        self.geography()
        self.deprivation()
        self.funnels()
        # issue 15 and issue 14 part 5 (site_outliers)
        site_outliers.caterpillars(self)
        site_outliers.register_page(self)
        site_outliers.changes_page(self, self.history)
        self.fls_index()
        for code in self.fls_codes():
            self.fls_page(code)
        spc_pages(self)  # monthly run charts: England and Wales, each country (site_spc.py)
        self.downloads()
        return self.pages


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

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
    site is never served."""
    out_dir = Path(out_dir)
    history = Path(history) if history is not None else history_path()
    with tempfile.TemporaryDirectory(prefix="flsdb-report-") as snapshot_dir:
        snapshot = Path(snapshot_dir) / PUBLISHED_DB_NAME
        with lock.shared(out_dir, on_wait=on_wait):
            approval = read_approval(out_dir) if require_approval else {}
            db_path = published_db_path(out_dir)
            if not db_path.exists():
                raise ReportError(f"no published tier at {db_path}: run `flsdb publish` first")
            manifest = read_manifest(out_dir)
            shutil.copyfile(db_path, snapshot)
            history_rows = site_outliers.read_history(history)
        expected = manifest.get("database_sha256")
        if expected and sha256_of(snapshot) != expected:
            raise ReportError(f"the published tier is not whole: {db_path} does not match the "
                              f"SHA-256 of its manifest: run `flsdb publish` again")
        return _build_site(out_dir, snapshot, manifest, approval, history_rows, year, standalone)


def _build_site(out_dir: Path, db_path: Path, manifest: dict, approval: dict,
                history_rows: site_outliers.HistoryRows, year: int | None, standalone: bool) -> Path:
    approved_date = str(approval.get("extract_date") or "")[:10]
    published_date = str(manifest.get("extract_date") or "")[:10]
    if approved_date and published_date and approved_date != published_date:
        raise ReportError(f"the published tier (extract {published_date}) is not the approved extract "
                          f"({approved_date}): run `flsdb publish` again")
    data = load_site_data(db_path)
    if not data.years:
        raise ReportError("the published tier holds no KPI results")
    chosen = year if year is not None else max(data.years)
    if chosen not in data.years:
        raise ReportError(f"no results for audit year {chosen}; audit years present: {data.years}")
    site = out_dir / "site"
    tmp = out_dir / f".site-tmp-{uuid.uuid4().hex[:8]}"
    try:
        SiteBuilder(data, db_path, tmp, chosen, standalone=standalone, history=history_rows).build()
        (tmp / "site.json").write_text(json.dumps({
            "audit_year": chosen, "extract_date": data.extract_date, "is_synthetic": data.is_synthetic,
            "built_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "published_database_sha256": manifest.get("database_sha256"),
            "downloads": list(DOWNLOADS),
            "approval": {k: approval.get(k) for k in ("status", "verdict", "extract_date", "approved_at",
                                                      "reviewer", "sign_off_kind", "publication_id")},
        }, indent=2) + "\n", encoding="utf-8")
        swap_in_folder(tmp, site)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return site / "index.html"
