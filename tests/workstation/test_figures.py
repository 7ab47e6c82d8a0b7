"""Durable transparency figures: a purge leaves the counts behind; the yearly report hides
small counts so that no hidden cell can be worked out from the totals; figures of
several desks are merged before they are suppressed; the printable page and its CSV."""

from __future__ import annotations

import csv
import io
import random
from collections import deque
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import select

from securedrop_wm.drop import Drop
from securedrop_wm.workstation import cases, importing, replies, retention, stats
from securedrop_wm.workstation.models import Case, MonthlyFigure
from securedrop_wm.workstation.stats import TOTAL, Figures, Table
from tests.workstation.fixtures import ADMIN, Station, export, login, source_reports


def _import(station: Station, drop: Drop, tmp_path: Path, n: int, name: str, **fields: str) -> None:
    for i in range(n):
        source_reports(drop, f"report {i}", **fields)
    importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path, name))


def test_a_purge_leaves_the_figures_unchanged(station: Station, drop: Drop, tmp_path: Path) -> None:
    ws = station.ws
    _import(station, drop, tmp_path, 6, "1.tar", category="threats", urgency="danger")
    _import(station, drop, tmp_path, 2, "2.tar", category="legal")
    rows = cases.list_cases(ws, cases.CaseFilter())
    station.clock.advance(minutes=42)
    for row in rows[:3]:
        replies.queue_reply(ws, ADMIN, row.case.id, "We read you.")
    replies.export_reply_bundle(ws, ADMIN)
    for row in rows[:5]:
        cases.set_status(ws, ADMIN, row.case.id, "closed")
    year = rows[0].case.opened_at.year
    before = stats.collect_figures(ws)
    report_before = stats.transparency_report(before, year)
    statistics_before = stats.statistics_of(before)
    assert statistics_before.total == 8 and statistics_before.responded == 3
    station.clock.advance(days=ws.settings.retention_days + 1)
    assert len(retention.purge_due(ws, ADMIN)) == 5
    with ws.sessions() as db:
        assert len(db.scalars(select(Case)).all()) == 3
        kept = db.scalars(select(MonthlyFigure)).all()
        designations = [c.designation for c in db.scalars(select(Case))]
    assert sum(f.cases for f in kept if f.dimension == "category") == 5
    after = stats.collect_figures(ws)
    # The same report, cell for cell, hidden or not; the same statistics, except that
    # five cases are now counted as purged instead of closed.
    assert stats.transparency_report(after, year) == report_before
    statistics_after = stats.statistics_of(after)
    assert statistics_after.total == 8 and statistics_after.responded == 3
    assert statistics_after.median_first_response_hours == 0.7
    assert statistics_after.counts["category"] == statistics_before.counts["category"]
    assert statistics_after.counts["urgency"] == statistics_before.counts["urgency"]
    assert statistics_after.counts["status"]["purged"] == 5
    assert statistics_after.counts["status"]["closed"] == 0
    assert {k: v for k, v in after.counts.items() if k[1] != "status"} == {
        k: v for k, v in before.counts.items() if k[1] != "status"
    }
    # What a purge leaves names no case.
    for f in kept:
        assert f.value not in designations and len(f.month) == 7


def _bridges(table: Table) -> list[tuple[str, str]]:
    """Hidden cells whose value the published ones give back, found independently of
    stats.determined: with each total's sign turned, every row and column of the table
    (totals included) sums to zero, so a hidden cell can be changed without changing a
    published one exactly when it lies on a cycle of hidden cells (rows and columns as
    the two sides of a graph, hidden cells as its edges); one on no cycle (a bridge) is
    given back by the totals."""
    edges = set(table.hidden)
    found = []
    for row, month in edges:
        others = edges - {(row, month)}
        seen, todo = {("row", row)}, deque([("row", row)])
        while todo:
            side, name = todo.popleft()
            for r, m in others:
                if side == "row" and r == name and ("month", m) not in seen:
                    seen.add(("month", m))
                    todo.append(("month", m))
                elif side == "month" and m == name and ("row", r) not in seen:
                    seen.add(("row", r))
                    todo.append(("row", r))
        if ("month", month) not in seen:
            found.append((row, month))
    return found


def _random_table(rng: random.Random, min_count: int = 5) -> Table:
    rows = tuple(f"r{i}" for i in range(rng.randint(1, 7)))
    months = tuple(f"2026-{m:02d}" for m in range(1, rng.randint(2, 13)))
    inner = {
        (r, m): rng.choice([0, 0, 1, 2, 3, 4, 5, 6, 8, 9, 12, 20, 40]) for r in rows for m in months
    }
    return stats.table_of("category", rows, months, inner, min_count)


def test_no_hidden_count_can_be_worked_out_from_the_totals() -> None:
    rng = random.Random(20261207)
    primary_only_leaks = 0
    for _ in range(300):
        table = _random_table(rng)
        cells = [(r, m) for r in [*table.rows, TOTAL] for m in [*table.months, TOTAL]]
        for cell in cells:
            value, shown = table.values[cell], table.shown(*cell)
            if 0 < value < 5:
                assert shown == "<5", (cell, value)  # every small count is hidden
            elif cell in table.hidden:
                assert shown == ("<5" if value == 0 else "x")
            else:
                assert shown == str(value)
        # For every hidden cell, no line (row or column with its total) has it as the only
        # unknown, so no total minus the visible cells gives it back...
        for line in stats.lines(table.rows, table.months):
            assert sum(c in table.hidden for c in line) != 1, (line, table.hidden)
        # ...nor any combination of lines (checked by a method of its own).
        assert _bridges(table) == [], table
        # The test can fail: hiding only the small counts would often give them back.
        primary = {c for c, v in table.values.items() if 0 < v < 5}
        alone = Table("x", table.rows, table.months, table.values, frozenset(primary), 5)
        primary_only_leaks += bool(_bridges(alone))
    assert primary_only_leaks > 100


def test_a_known_table_hides_the_small_count_and_one_more_in_each_line() -> None:
    months = ("2026-01", "2026-02", "2026-03")
    inner = {
        ("harassment", "2026-01"): 3,
        ("harassment", "2026-02"): 10,
        ("harassment", "2026-03"): 12,
        ("threats", "2026-01"): 9,
        ("threats", "2026-02"): 11,
        ("threats", "2026-03"): 20,
    }
    table = stats.table_of("category", ("harassment", "threats"), months, inner, 5)
    assert table.shown("harassment", "2026-01") == "<5"
    # Its row and column each hide one more, so 3 = 25 - 10 - 12 cannot be worked out.
    assert (table.shown("harassment", TOTAL), table.shown(TOTAL, TOTAL)) == ("25", "65")
    hidden_in_row = [m for m in months if ("harassment", m) in table.hidden]
    hidden_in_month = [r for r in table.rows if (r, "2026-01") in table.hidden]
    assert len(hidden_in_row) == 2 and len(hidden_in_month) == 2
    assert _bridges(table) == []


def _figures(**threats_by_month: int) -> Figures:
    return Figures(
        {(m.replace("_", "-"), "category", "threats"): n for m, n in threats_by_month.items()}
    )


def test_figures_are_merged_before_they_are_suppressed() -> None:
    """Two desks with 3 threats each in January: each desk's report hides them; the
    merged report shows 6. Suppressing each desk first would have hidden 6 for nothing
    (a hidden cell plus a hidden cell is unknown), and the merge must not publish a
    desk's own small count: the merged cell is 6, not 3 and 3."""
    desk_a, desk_b = _figures(**{"2026_01": 3}), _figures(**{"2026_01": 3, "2026_02": 9})
    report_a = stats.transparency_report(desk_a, 2026)
    report_b = stats.transparency_report(desk_b, 2026)
    cell = ("threats", "2026-01")
    assert report_a.tables[0].shown(*cell) == report_b.tables[0].shown(*cell) == "<5"
    merged = stats.transparency_report(stats.merge_figures([desk_a, desk_b]), 2026)
    assert merged.tables[0].shown(*cell) == "6"
    assert merged.tables[0].shown("threats", TOTAL) == "15"
    # Suppress then merge: a cell is known in the merge only where it is in every desk.
    suppressed_first = {
        c
        for c in merged.tables[0].values
        if c in report_a.tables[0].hidden or c in report_b.tables[0].hidden
    }
    assert cell in suppressed_first and cell not in merged.tables[0].hidden


def test_the_printable_report_and_its_csv(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    _import(station, drop, tmp_path, 6, "1.tar", category="doxxing")
    _import(station, drop, tmp_path, 2, "2.tar", category="threats", urgency="urgent")
    login(ws_client, station)
    year = station.clock().year
    stats_page = ws_client.get("/stats").text
    assert f'/stats/report?year={year}"' in stats_page and "Do not publish them" in stats_page
    page = ws_client.get(f"/stats/report?year={year}")
    assert page.status_code == 200
    text = page.text
    assert text.count("<svg") == 3 and "<script" not in text and "<img" not in text
    assert "&lt;5" in text and "Doxxing" in text
    rows = list(csv.reader(io.StringIO(ws_client.get(f"/stats/report.csv?year={year}").text)))
    assert rows[0] == ["dimension", "value", "month", "cases"]
    totals = {(r[0], r[1], r[2]): r[3] for r in rows[1:]}
    assert totals[("category", "doxxing", TOTAL)] == "6"
    assert totals[("category", "threats", TOTAL)] == "<5"
    assert totals[("urgency", "urgent", TOTAL)] == "<5"
    assert totals[("category", TOTAL, TOTAL)] == "8"
    assert "2" not in {v for (d, r, _m), v in totals.items() if r == "threats"}
    # Aggregates only: no case's designation or source id in the report or its CSV.
    with station.ws.sessions() as db:
        named = db.execute(select(Case.designation, Case.source_uuid)).all()
    assert len(named) == 8
    outputs = [text, ws_client.get(f"/stats/report.csv?year={year}").text]
    for designation, source_uuid in named:
        for output in outputs:
            assert designation not in output and source_uuid not in output
    assert ws_client.get("/stats/report?year=12").status_code == 404
    assert ws_client.get("/stats/report?year=abc").status_code == 200  # this year
