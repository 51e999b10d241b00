"""The national pages of the report site:

- index.html                 the report at a glance for the report's audit year;
- national-trends.html       KPI trends across the audit years;
- national-geography.html    country and region comparisons;
- national-deprivation.html  deprivation gradients (quintiles 1-5) for the proportion KPIs;
- national-funnels.html      funnel plots (95% and 99.8% limits) of every KPI with a curve, each
                             with the table of every FLS in it.
"""

from __future__ import annotations

from markupsafe import Markup

from flsdb.publish import charts as ch
from flsdb.publish import site_figures as fig
from flsdb.publish.cells import DASH, _missing, direction, fmt_count, fmt_pct, outlier_text, table, value_with_ci
from flsdb.publish.site_data import SiteData
from flsdb.publish.site_render import Renderer

#: The KPI of the glance page's sentence on deprivation (a presentation choice).
GLANCE_DEPRIVATION_KPI = 7


def pages(data: SiteData, out: Renderer) -> None:
    glance(data, out)
    trends(data, out)
    geography(data, out)
    deprivation(data, out)
    funnels(data, out)


def _green_share(green, kpi: int) -> str:
    g = green.loc[kpi] if kpi in green.index else None
    return ("not rated" if g is None or not g["fls_rated"] else
            f"{g['green_share_pct']:.0f}% ({int(g['fls_rated_green'])} of {int(g['fls_rated'])})")


def glance(data: SiteData, out: Renderer) -> None:
    y, p = data.year, data.previous_year
    charts = out.charts("glance")
    records = [{"year": year, "count": fmt_count(data.records.get(year))} for year in (y, p) if year]
    green = data.green_shares.loc[data.green_shares["audit_year"] == y].set_index("kpi_number")
    rows, attrs = [], []
    for kpi in data.kpi_numbers:
        cur = data.one(y, "national", kpi)
        prev = data.one(p, "national", kpi) if p else None
        symbol, words = direction(cur and cur["value_pct"], prev and prev["value_pct"])
        css = {"up": "up", "down": "down"}.get(words, "same")
        target = cur.get("target_pct") if cur else None
        rows.append([f"KPI {kpi}", data.kpi_name[kpi], data.pct(cur),
                     Markup('<span class="{}" aria-hidden="true">{}</span> {}').format(css, symbol, words),
                     data.pct(prev), DASH if _missing(target) else f"{float(target):.0f}%", _green_share(green, kpi)])
        attrs.append({"data-kpi": kpi, "data-direction": words})
    completeness = data.words["completeness"]
    kpi_table = table(f"National KPI values, {y} against {p}" if p else f"National KPI values, {y}",
                      ["KPI", "name", f"{y}", "change", f"{p}" if p else "previous year", "target",
                       "FLSs rated green" + (f" ({completeness}: met)" if data.completeness_kpis else "")],
                      rows, {2, 4, 5}, attrs)
    national = data.rows(audit_year=[y, p] if p else [y], geography_level="national", breakdown="all")
    green_rows = green.reset_index().dropna(subset=["green_share_pct"])
    green_rows["kpi_label"] = [data.label(int(k)) for k in green_rows["kpi_number"]]
    kpi_charts = [
        charts.render(ch.glance_spec(), ch.glance_data(ch.plotted(national)), f"National KPI values, {y} and {p}",
                      f"Dot plot of each KPI's national value in {y} (diamonds) and {p} (circles).", table="above"),
        charts.render(ch.green_share_spec(), {"values": ch._records(green_rows.rename(columns={
            "fls_rated_green": "green", "fls_rated": "rated"}), ["kpi_label", "kpi_number", "green_share_pct",
                                                                "green", "rated"])},
                      f"Share of FLSs rated green, {y}",
                      "Bar chart of the percentage of FLSs rated green"
                      + (f" (or meeting {completeness})" if data.completeness_kpis else "") + f" on each KPI in {y}.",
                      table="above")]
    rows, attrs = [], []
    for kpi in data.proportion_kpis:
        most = data.one(y, "national", kpi, "deprivation_quintile", breakdown_value="1")
        least = data.one(y, "national", kpi, "deprivation_quintile", breakdown_value="5")
        gap = None
        if most and least and not _missing(most["value_pct"]) and not _missing(least["value_pct"]):
            gap = float(least["value_pct"]) - float(most["value_pct"])
        rows.append([f"KPI {kpi}", data.kpi_name[kpi], data.pct(most), data.pct(least),
                     DASH if gap is None else f"{gap:+.1f} points"])
        attrs.append({"data-kpi": kpi})
    first, last = data.proportion_kpis[0], data.proportion_kpis[-1]
    deprivation_table = table(f"KPIs {first}-{last} by deprivation quintile, {y}: most (1) and least (5) deprived",
                              ["KPI", "name", "most deprived (1)", "least deprived (5)", "least minus most"],
                              rows, {2, 3, 4}, attrs)
    kpi7 = None
    most = data.one(y, "national", GLANCE_DEPRIVATION_KPI, "deprivation_quintile", breakdown_value="1")
    least = data.one(y, "national", GLANCE_DEPRIVATION_KPI, "deprivation_quintile", breakdown_value="5")
    if most and least:
        kpi7 = {"number": GLANCE_DEPRIVATION_KPI, "name": data.kpi_name[GLANCE_DEPRIVATION_KPI],
                "most": data.pct(most), "least": data.pct(least)}
    dep = data.rows(audit_year=y, geography_level="national", breakdown="deprivation_quintile",
                    kpi_number=data.proportion_kpis, breakdown_value=["1", "5"])
    deprivation_chart = charts.render(
        ch.deprivation_pair_spec(), ch.deprivation_pair_data(ch.plotted(dep)), f"Most against least deprived, {y}",
        f"Dot plot of KPIs {first} to {last} in {y}: most deprived quintile (squares) and least deprived (circles).",
        table="above")
    out.page("index.html", "glance.html", f"Report at a glance, {y}", "glance", charts, year=y, records=records,
             kpi_table=kpi_table, kpi_charts=kpi_charts, kpi7=kpi7, deprivation_table=deprivation_table,
             deprivation_chart=deprivation_chart)


def trends(data: SiteData, out: Renderer) -> None:
    charts = out.charts("trends")
    national = data.rows(geography_level="national", breakdown="all").assign(series="England and Wales")
    chart = charts.render(ch.trend_spec(), ch.trend_data(ch.plotted(national)), "National KPI values by audit year",
                          f"Small multiples, one per KPI: the national value in each audit year. {ch.OWN_SCALE_WORDS}")
    rows = [[f"KPI {kpi}", data.kpi_name[kpi], *[data.pct(data.one(year, "national", kpi)) for year in data.years]]
            for kpi in data.kpi_numbers]
    out.page("national-trends.html", "trends.html", "KPI trends across audit years", "trends", charts, chart=chart,
             table=table("National KPI values by audit year", ["KPI", "name", *map(str, data.years)], rows,
                         range(2, 2 + len(data.years))))


def geography(data: SiteData, out: Renderer) -> None:
    charts = out.charts("geography")
    y = data.year
    levels = []
    for level, title in (("country", "Countries"), ("region", "Regions")):
        frame = data.rows(audit_year=y, geography_level=level, breakdown="all")
        chart = charts.render(
            ch.comparison_spec(), ch.comparison_data(ch.plotted(frame)),
            f"{title}: KPI values with 95% confidence intervals, {y}",
            f"One panel per KPI: each {level}'s value (dot) with its 95% confidence interval (line); the dashed "
            f"line is the national value. Each panel has its own horizontal scale.")
        names = sorted(frame["geography_name"].dropna().unique())
        rows = []
        for kpi in data.kpi_numbers:
            cells = [data.label(kpi)]
            for name in names:
                r = data.one(y, level, kpi, geography_name=name)
                cells.append(DASH if r is None else value_with_ci(r))
            rows.append([*cells, data.pct(data.one(y, "national", kpi))])
        levels.append({"title": title, "chart": chart, "table": table(
            f"{title}: KPI values (95% confidence interval), {y}", ["KPI", *names, "England and Wales"], rows,
            range(1, len(names) + 2))})
    out.page("national-geography.html", "geography.html", f"Country and region comparisons, {y}", "geography",
             charts, year=y, levels=levels)


def deprivation(data: SiteData, out: Renderer) -> None:
    charts = out.charts("deprivation")
    kpis = data.proportion_kpis
    frame = data.rows(geography_level="national", breakdown="deprivation_quintile", kpi_number=kpis)
    chart = charts.render(ch.gradient_spec(), ch.gradient_data(ch.plotted(frame.loc[frame["breakdown_value"] != "unknown"])),
                          f"KPIs {kpis[0]}-{kpis[-1]} by deprivation quintile",
                          "Small multiples, one per KPI: the national value in each deprivation quintile, one line "
                          f"per audit year. {ch.OWN_SCALE_WORDS}", table="below")
    quintiles = list(ch.QUINTILE_LABELS)
    tables = [table(f"KPIs {kpis[0]}-{kpis[-1]} by deprivation quintile, England and Wales, {year}",
                    ["KPI", *ch.QUINTILE_LABELS.values()],
                    [[data.label(kpi), *[data.pct(data.one(year, "national", kpi, "deprivation_quintile",
                                                           breakdown_value=q)) for q in quintiles]]
                     for kpi in kpis], range(1, 1 + len(quintiles)))
              for year in data.years]
    out.page("national-deprivation.html", "deprivation.html", "Deprivation gradients", "deprivation", charts,
             chart=chart, tables=tables)


def funnels(data: SiteData, out: Renderer) -> None:
    charts = out.charts("funnels")
    y = data.year
    entries = []
    for kpi in fig.funnel_kpis(data):
        entry = {"kpi": kpi, "name": data.kpi_name[kpi], "chart": fig.funnel_chart(data, out, charts, kpi),
                 "table": None, "outliers": 0}
        if entry["chart"] is not None:
            points, _, _ = fig.funnel_points(data, kpi, y)
            ordered = points.sort_values(["value_pct", "geography_code"])
            entry["outliers"] = int(points["is_outlier_alert"].fillna(False).astype(bool).sum())
            entry["table"] = table(
                f"KPI {kpi}, {y}: every FLS in the plot, lowest value first",
                ["FLS", "code", "value", "denominator", "against the limits"],
                [[r["geography_name"], r["geography_code"], fmt_pct(r["value_pct"]),
                  fmt_count(r["denominator"], decimals=data.decimals(kpi)), outlier_text(r)]
                 for r in ordered.to_dict("records")], {2, 3},
                [{"data-fls": r["geography_code"], "data-funnel-status": r["status"]} for r in ordered.to_dict("records")])
        entries.append(entry)
    out.page("national-funnels.html", "funnels.html", f"Funnel plots, {y}", "funnels", charts, year=y,
             funnels=entries)
