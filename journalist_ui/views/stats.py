"""Statistics: aggregate counts and charts (SVG drawn on the server), CSV of aggregates."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, render_template
from flask_babel import gettext as _

from securedrop_wm.workstation import stats as core

from .. import services

bp = Blueprint("stats", __name__)


def _titles() -> dict[str, str]:
    return {
        "category": _("Cases by category"),
        "urgency": _("Cases by urgency"),
        "month": _("Cases by month opened"),
        "status": _("Cases by status"),
    }


@bp.get("/stats")
def index() -> Any:
    return render_template(
        "stats.html", stats=core.compute_statistics(services()), titles=_titles()
    )


@bp.get("/stats/<dimension>.svg")
def chart(dimension: str) -> Any:
    if dimension not in core.DIMENSIONS:
        abort(404)
    figures = core.compute_statistics(services())
    svg = core.bar_chart_svg(_titles()[dimension], figures.counts[dimension])
    return Response(svg, mimetype="image/svg+xml")


@bp.get("/stats.csv")
def csv() -> Any:
    body = core.statistics_csv(core.compute_statistics(services()))
    return Response(
        body,
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=securedrop-wm-statistics.csv"},
    )
