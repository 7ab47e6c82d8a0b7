"""Aggregate statistics of the cases, SVG charts drawn here, and a CSV of aggregates only.

Nothing here names a case or a source: every figure is a count or a median.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from sqlalchemy import select

from ..vocabulary import CaseStatus, Urgency
from .models import Case
from .services import Workstation

DIMENSIONS = ("category", "urgency", "month", "status")


@dataclass(frozen=True)
class Statistics:
    """Counts of cases by dimension, and the median hours to a first response: from a
    case's clock start (its first report's import, or the pull of its bundle when known;
    see clocks.py) to its first reply leaving in a reply bundle. ``responded``: cases
    with a reply sent."""

    total: int
    responded: int
    median_first_response_hours: float | None
    counts: Mapping[str, Mapping[str, int]]


def compute_statistics(ws: Workstation) -> Statistics:
    """Count every case in the database (closed ones too, until they are purged)."""
    with ws.sessions() as db:
        rows = db.execute(
            select(Case.category, Case.urgency, Case.status, Case.opened_at, Case.first_response_at)
        ).all()
    counts: dict[str, Counter[str]] = {d: Counter() for d in DIMENSIONS}
    hours = []
    for row in rows:
        counts["category"][row.category] += 1
        counts["urgency"][row.urgency] += 1
        counts["status"][row.status] += 1
        counts["month"][row.opened_at.strftime("%Y-%m")] += 1
        if row.first_response_at is not None:
            hours.append((row.first_response_at - row.opened_at).total_seconds() / 3600)
    ordered = {
        "category": dict(sorted(counts["category"].items())),
        "urgency": {u.value: counts["urgency"][u] for u in Urgency}
        | {k: v for k, v in counts["urgency"].items() if not Urgency.has(k)},
        "month": dict(sorted(counts["month"].items())),
        "status": {s.value: counts["status"][s] for s in CaseStatus},
    }
    median = round(statistics.median(hours), 1) if hours else None
    return Statistics(len(rows), len(hours), median, ordered)


def statistics_csv(stats: Statistics) -> str:
    """The aggregates as CSV: ``dimension,value,cases`` and the median."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["dimension", "value", "cases"])
    for dimension, values in stats.counts.items():
        for value, count in values.items():
            writer.writerow([dimension, _csv_safe(value), count])
    writer.writerow(["total", "all", stats.total])
    median = "" if stats.median_first_response_hours is None else stats.median_first_response_hours
    writer.writerow(["median_first_response_hours", "all", median])
    return out.getvalue()


def _csv_safe(value: str) -> str:
    """Keep a spreadsheet from reading a value as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def bar_chart_svg(title: str, counts: Mapping[str, int]) -> str:
    """A horizontal bar chart as a standalone SVG document (no script, no external font)."""
    bar, gap, label_w, chart_w = 22, 8, 170, 300
    height = 40 + max(1, len(counts)) * (bar + gap)
    peak = max(counts.values(), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + chart_w + 60}" '
        f'height="{height}" role="img" aria-label="{escape(title)}" '
        'font-family="sans-serif" font-size="13">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="18" font-weight="bold">{escape(title)}</text>',
    ]
    if not counts:
        parts.append('<text x="0" y="50">no cases</text>')
    for i, (label, count) in enumerate(counts.items()):
        y = 32 + i * (bar + gap)
        width = round(chart_w * count / peak)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(label[:24])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{width}" height="{bar}" fill="#3b6ea5"/>'
            f'<text x="{label_w + width + 6}" y="{y + 16}">{count}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
