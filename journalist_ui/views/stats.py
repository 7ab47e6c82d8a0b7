"""Statistics: exact aggregate counts for the team, and the yearly transparency report
for publication (small counts suppressed); charts drawn on the server as SVG; CSVs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from flask import Blueprint, Response, abort, render_template, request
from flask_babel import gettext as _

from securedrop_wm.workstation import stats as core

from .. import services
from ..labels import label

bp = Blueprint("stats", __name__)
V = TypeVar("V", int, str)


def _labelled(dimension: str, counts: Mapping[str, V]) -> dict[str, V]:
    """A chart's bars named in the responder's language, not by their stored values."""
    purged = dimension == "status"
    return {
        _("purged") if purged and v == core.PURGED else label(dimension, v): n
        for v, n in counts.items()
    }


def _titles() -> dict[str, str]:
    return {
        "category": _("Cases by category"),
        "urgency": _("Cases by urgency"),
        "month": _("Cases by month opened"),
        "status": _("Cases by status"),
    }


@bp.get("/stats")
def index() -> Any:
    ws = services()
    figures = core.collect_figures(ws)
    years = sorted({*core.years_of(figures), ws.now().year}, reverse=True)
    return render_template(
        "stats.html", stats=core.statistics_of(figures), titles=_titles(), years=years
    )


@bp.get("/stats/<dimension>.svg")
def chart(dimension: str) -> Any:
    if dimension not in core.DIMENSIONS:
        abort(404)
    figures = core.compute_statistics(services())
    counts = _labelled(dimension, figures.counts[dimension])
    svg = core.bar_chart_svg(_titles()[dimension], counts)
    return Response(svg, mimetype="image/svg+xml")


@bp.get("/stats.csv")
def csv() -> Any:
    body = core.statistics_csv(core.compute_statistics(services()))
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=securedrop-wm-statistics.csv"},
    )


def _report() -> core.TransparencyReport:
    """The report of the year asked for (``?year=``, this year by default)."""
    ws = services()
    year = request.args.get("year", ws.now().year, type=int)
    if year is None or not 2000 <= year <= 9999:
        abort(404)
    figures = core.collect_figures(ws)
    return core.transparency_report(figures, year, ws.settings.figures_min_count)


@bp.get("/stats/report")
def report() -> Any:
    """The printable transparency report, its charts inline (SVG drawn here)."""
    found = _report()
    titles = {
        "category": _("Cases by category, %(y)s", y=found.year),
        "urgency": _("Cases by urgency, %(y)s", y=found.year),
    }
    charts = [
        core.bar_chart_svg(titles[t.dimension], _labelled(t.dimension, t.totals_shown("row")))
        for t in found.tables
    ]
    months = found.tables[0].totals_shown("month")
    charts.append(core.bar_chart_svg(_("Cases by month opened, %(y)s", y=found.year), months))
    return render_template(
        "transparency.html", report=found, charts=charts, titles=titles, total=core.TOTAL
    )


@bp.get("/stats/report.csv")
def report_csv() -> Any:
    found = _report()
    return Response(
        core.report_csv(found),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f"attachment; filename=transparency-report-{found.year}.csv"
        },
    )
