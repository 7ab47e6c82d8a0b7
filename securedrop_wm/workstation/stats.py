"""Aggregate figures of the cases: the team's statistics (exact), the yearly transparency
report (small counts suppressed), SVG charts drawn here, and CSVs of aggregates only.

Nothing here names a case or a source: every figure is a count or a median.

Durable: the figures are the live cases plus what purged cases left behind in
``monthly_figures`` (:func:`count_purged`, called in the transaction that deletes a
case), so a purge moves a case from one to the other and no report is undercounted.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from html import escape

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..vocabulary import CaseStatus, Category, Urgency
from .models import Case, MonthlyFigure
from .services import Workstation

DIMENSIONS = ("category", "urgency", "month", "status")
#: The status a purged case is counted under.
PURGED = "purged"
#: Minutes from a case's clock start to its first reply leaving (clocks.py).
RESPONSE = "first_response_minutes"
#: The key of a row's, a column's or the whole table's total.
TOTAL = "total"
#: The dimensions the transparency report tabulates by month.
REPORT_DIMENSIONS = ("category", "urgency")

Key = tuple[str, str, str]  # (month opened "YYYY-MM", dimension, value)


@dataclass(frozen=True)
class Figures:
    """Exact counts, before any suppression: cases per (month opened, dimension, value).
    Dimensions: category, urgency, status (``purged`` for purged cases) and
    :data:`RESPONSE` (value: minutes; one per case with a reply sent)."""

    counts: Mapping[Key, int]


def _entries(
    category: str, urgency: str, status: str, opened: dt.datetime, responded: dt.datetime | None
) -> list[Key]:
    """What one case adds to the figures."""
    month = opened.strftime("%Y-%m")
    keys = [(month, "category", category), (month, "urgency", urgency), (month, "status", status)]
    if responded is not None:
        minutes = round((responded - opened).total_seconds() / 60)
        keys.append((month, RESPONSE, str(max(0, minutes))))
    return keys


def collect_figures(ws: Workstation) -> Figures:
    """The live cases plus what purged cases left behind."""
    counts: Counter[Key] = Counter()
    with ws.sessions() as db:
        rows = db.execute(
            select(Case.category, Case.urgency, Case.status, Case.opened_at, Case.first_response_at)
        ).all()
        kept = db.scalars(select(MonthlyFigure)).all()
        for row in rows:
            counts.update(_entries(*row))
        for f in kept:
            counts[(f.month, f.dimension, f.value)] += f.cases
    return Figures(dict(counts))


def count_purged(db: Session, case: Case) -> None:
    """Add a case about to be purged to ``monthly_figures`` (in the caller's transaction,
    the one that deletes it)."""
    for month, dimension, value in _entries(
        case.category, case.urgency, PURGED, case.opened_at, case.first_response_at
    ):
        row = db.scalar(
            select(MonthlyFigure).where(
                MonthlyFigure.month == month,
                MonthlyFigure.dimension == dimension,
                MonthlyFigure.value == value,
            )
        )
        if row is None:
            db.add(MonthlyFigure(month=month, dimension=dimension, value=value, cases=1))
        else:
            row.cases += 1
    db.flush()


def merge_figures(sources: Iterable[Figures]) -> Figures:
    """Figures of several sources (desks) added up: merge first, suppress after; a cell
    suppressed in each source can be large enough to show once merged."""
    counts: Counter[Key] = Counter()
    for source in sources:
        counts.update(source.counts)
    return Figures(dict(counts))


@dataclass(frozen=True)
class Statistics:
    """Counts of cases by dimension, and the median hours to a first response: from a
    case's clock start (its first report's import, or the pull of its bundle when known;
    see clocks.py) to its first reply leaving in a reply bundle. ``responded``: cases
    with a reply sent. Purged cases count (their status: ``purged``)."""

    total: int
    responded: int
    median_first_response_hours: float | None
    counts: Mapping[str, Mapping[str, int]]


def compute_statistics(ws: Workstation) -> Statistics:
    """Exact statistics of every case, purged ones included (for the team)."""
    return statistics_of(collect_figures(ws))


def statistics_of(figures: Figures) -> Statistics:
    """The all-time statistics of ``figures``."""
    counts: dict[str, Counter[str]] = {d: Counter() for d in DIMENSIONS}
    minutes: list[int] = []
    for (month, dimension, value), n in figures.counts.items():
        if dimension == RESPONSE:
            minutes.extend([int(value)] * n)
        elif dimension in counts:
            counts[dimension][value] += n
            if dimension == "category":
                counts["month"][month] += n
    ordered = {
        "category": _in_order(counts["category"], [c.value for c in Category]),
        "urgency": {u.value: counts["urgency"][u] for u in Urgency}
        | {k: v for k, v in counts["urgency"].items() if not Urgency.has(k)},
        "month": dict(sorted(counts["month"].items())),
        "status": {s.value: counts["status"][s] for s in CaseStatus}
        | ({PURGED: counts["status"][PURGED]} if counts["status"][PURGED] else {}),
    }
    median = round(statistics.median(minutes) / 60, 1) if minutes else None
    return Statistics(sum(counts["category"].values()), len(minutes), median, ordered)


def _in_order(counts: Mapping[str, int], order: list[str]) -> dict[str, int]:
    """The values present, in the vocabulary's order, then any other (a value stored by
    an older or newer version) in alphabetical order."""
    known = {v: counts[v] for v in order if counts.get(v)}
    return known | {k: n for k, n in sorted(counts.items()) if k not in known and n}


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


# --- The transparency report: a year's tables, small counts suppressed ----------------

Cell = tuple[str, str]  # (row value or TOTAL, month or TOTAL)


@dataclass(frozen=True)
class Table:
    """One dimension by month of a year, with row, column and grand totals (exact
    ``values``), and the cells ``hidden`` from publication (see :func:`suppress`)."""

    dimension: str
    rows: tuple[str, ...]
    months: tuple[str, ...]
    values: Mapping[Cell, int]
    hidden: frozenset[Cell]
    min_count: int

    def shown(self, row: str, month: str) -> str:
        """A cell as published: the count, ``<5`` for a hidden count below 5, ``x`` for
        a larger one hidden so that a small one cannot be worked out from the totals."""
        value = self.values[(row, month)]
        if (row, month) not in self.hidden:
            return str(value)
        return f"<{self.min_count}" if value < self.min_count else "x"

    def totals_shown(self, axis: str) -> dict[str, str]:
        """The published row totals (``axis="row"``) or month totals (``"month"``)."""
        if axis == "row":
            return {r: self.shown(r, TOTAL) for r in self.rows}
        return {m: self.shown(TOTAL, m) for m in self.months}


@dataclass(frozen=True)
class TransparencyReport:
    """A year's figures for publication. ``responded`` as shown; the median only when
    at least ``min_count`` cases were answered."""

    year: int
    min_count: int
    tables: tuple[Table, ...]
    responded: str
    median_first_response_hours: float | None


def years_of(figures: Figures) -> list[int]:
    """The years that have cases, newest first."""
    return sorted({int(k[0][:4]) for k in figures.counts}, reverse=True)


def transparency_report(figures: Figures, year: int, min_count: int = 5) -> TransparencyReport:
    """The year's tables by month opened, suppressed for publication."""
    months = tuple(f"{year:04d}-{m:02d}" for m in range(1, 13))
    tables = []
    for dimension in REPORT_DIMENSIONS:
        vocabulary = [str(v) for v in (Category if dimension == "category" else Urgency)]
        found = {v for (m, d, v) in figures.counts if d == dimension and m in months}
        rows = tuple(vocabulary + sorted(found - set(vocabulary)))
        inner = {(r, m): figures.counts.get((m, dimension, r), 0) for r in rows for m in months}
        tables.append(table_of(dimension, rows, months, inner, min_count))
    minutes = [
        int(v)
        for (m, d, v), n in figures.counts.items()
        if d == RESPONSE and m in months
        for _ in range(n)
    ]
    answered = len(minutes)
    small = 0 < answered < min_count
    median = round(statistics.median(minutes) / 60, 1) if minutes and not small else None
    return TransparencyReport(
        year, min_count, tuple(tables), f"<{min_count}" if small else str(answered), median
    )


def table_of(
    dimension: str,
    rows: tuple[str, ...],
    months: tuple[str, ...],
    inner: Mapping[Cell, int],
    min_count: int,
) -> Table:
    """A table with its totals, suppressed (:func:`suppress`)."""
    values = dict(inner)
    for r in rows:
        values[(r, TOTAL)] = sum(inner[(r, m)] for m in months)
    for m in months:
        values[(TOTAL, m)] = sum(inner[(r, m)] for r in rows)
    values[(TOTAL, TOTAL)] = sum(values[(r, TOTAL)] for r in rows)
    hidden = suppress(values, rows, months, min_count)
    return Table(dimension, rows, months, values, frozenset(hidden), min_count)


def lines(rows: Iterable[str], months: Iterable[str]) -> list[list[Cell]]:
    """The additive lines of a table with totals: each row (its cells then its total)
    and each column (its cells then its total); the totals' row and column included."""
    rows, months = list(rows), list(months)
    out = [[(r, m) for m in months] + [(r, TOTAL)] for r in [*rows, TOTAL]]
    out += [[(r, m) for r in rows] + [(TOTAL, m)] for m in [*months, TOTAL]]
    return out


def suppress(
    values: Mapping[Cell, int], rows: Iterable[str], months: Iterable[str], min_count: int
) -> set[Cell]:
    """The cells to hide: every count from 1 to ``min_count - 1`` (totals too), then
    more, until no hidden cell can be worked out from the published cells and totals
    (:func:`determined`).

    A further cell is taken from a line where a hidden cell is alone: the one that
    leaves fewest lines with a lone hidden cell; among those a zero first (truthfully
    ``<5``), then the smallest count large enough that a pair does not narrow the small
    one (at least ``2 * min_count - 1``), then the smallest.
    """
    all_lines = lines(rows, months)
    hidden = {c for c, v in values.items() if 0 < v < min_count}
    while True:
        exposed = determined(all_lines, hidden)
        if not exposed:
            return hidden
        count = [sum(c in hidden for c in line) for line in all_lines]
        candidates = {
            c for line, n in zip(all_lines, count, strict=True) if n == 1 for c in line
        } - hidden
        # Else a cell of an exposed cell's lines; else any (each round hides one more
        # cell, and with all hidden nothing is determined).
        candidates = (
            candidates or {c for line in all_lines if exposed & set(line) for c in line} - hidden
        )
        candidates = candidates or set(values) - hidden

        cost = functools.partial(_cost, values, all_lines, count, min_count)
        hidden.add(min(sorted(candidates), key=cost))


def _cost(
    values: Mapping[Cell, int],
    all_lines: list[list[Cell]],
    count: list[int],
    min_count: int,
    cell: Cell,
) -> tuple[int, bool, bool, bool, int]:
    """How much hiding ``cell`` costs (lowest first): the change in lines left with a
    lone hidden cell, then a non-zero, a count narrowing a small one, a total, the count."""
    mine = [n for line, n in zip(all_lines, count, strict=True) if cell in line]
    v = values[cell]
    return (mine.count(0) - mine.count(1), v != 0, v < 2 * min_count - 1, TOTAL in cell, v)


def determined(all_lines: list[list[Cell]], hidden: set[Cell]) -> set[Cell]:
    """The hidden cells whose value follows from the visible ones: those whose unit
    vector lies in the span of the lines' equations restricted to hidden cells (exact
    Gaussian elimination over fractions; each line sums to zero with its total negated)."""
    order = sorted(hidden)
    index = {c: i for i, c in enumerate(order)}
    matrix: list[list[Fraction]] = []
    for line in all_lines:
        row = [Fraction(0)] * len(order)
        for position, cell in enumerate(line):
            if cell in index:
                row[index[cell]] += -1 if position == len(line) - 1 else 1
        if any(row):
            matrix.append(row)
    pivots: list[tuple[int, list[Fraction]]] = []
    for column in range(len(order)):
        pivot = next((r for r in matrix if r[column] != 0), None)
        if pivot is None:
            continue
        matrix.remove(pivot)
        pivot = [x / pivot[column] for x in pivot]
        for other in [*matrix, *(p for _, p in pivots)]:
            factor = other[column]
            if factor:
                for k in range(len(order)):
                    other[k] -= factor * pivot[k]
        pivots.append((column, pivot))
    return {order[c] for c, p in pivots if sum(1 for x in p if x) == 1}


def report_csv(report: TransparencyReport) -> str:
    """The report as CSV, as published: ``dimension,value,month,cases`` (``total`` rows
    and columns included), then the answered cases and the median."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["dimension", "value", "month", "cases"])
    for table in report.tables:
        for r in [*table.rows, TOTAL]:
            for m in [*table.months, TOTAL]:
                writer.writerow([table.dimension, _csv_safe(r), m, table.shown(r, m)])
    writer.writerow(["answered", "all", str(report.year), report.responded])
    median = report.median_first_response_hours
    writer.writerow(["median_first_response_hours", "all", str(report.year), median or ""])
    return out.getvalue()


def bar_chart_svg(title: str, counts: Mapping[str, int | str]) -> str:
    """A horizontal bar chart as a standalone SVG document (no script, no external font).
    A value given as text (a suppressed ``<5``) is written without a bar."""
    bar, gap, label_w, chart_w = 22, 8, 270, 300
    height = 40 + max(1, len(counts)) * (bar + gap)
    numbers = [v for v in counts.values() if isinstance(v, int)]
    peak = max(numbers, default=0) or 1
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
        width = round(chart_w * count / peak) if isinstance(count, int) else 0
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{escape(_cut(label))}</text>'
            f'<rect x="{label_w}" y="{y}" width="{width}" height="{bar}" fill="#3b6ea5"/>'
            f'<text x="{label_w + width + 6}" y="{y + 16}">{escape(str(count))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _cut(label: str, limit: int = 38) -> str:
    """A bar's label, cut with an ellipsis to fit beside the bars."""
    return label if len(label) <= limit else label[: limit - 1] + "…"
