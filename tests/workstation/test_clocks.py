"""Honest clocks (issue 14): deadlines count from the import or the recorded pull time,
never from 00:00 UTC; replies are queued, sent, delivered; the case list puts what needs
action first, danger follow-ups at the top; statistics use the same clock."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select

from securedrop_wm import bundles
from securedrop_wm.drop import Drop
from securedrop_wm.transfer_client.client import _record_pull_time
from securedrop_wm.workstation import cases, clocks, importing, replies, stats
from securedrop_wm.workstation.clocks import ReplyState
from securedrop_wm.workstation.db import alembic_config
from securedrop_wm.workstation.models import Report
from tests.workstation.fixtures import ADMIN, Station, export, source_reports


def _at(station: Station, hour: int, minute: int = 0) -> dt.datetime:
    """Move the workstation's clock to today (UTC, the drop's day) at ``hour:minute``."""
    real = dt.datetime.now(dt.UTC)
    target = dt.datetime.combine(real.date(), dt.time(hour, minute), tzinfo=dt.UTC)
    station.clock.offset = target - real
    return target


def _report(station: Station) -> Report:
    with station.ws.sessions() as db:
        return db.scalars(select(Report).order_by(Report.id.desc())).first()  # type: ignore[return-value]


def _rows(station: Station) -> dict[int, cases.CaseRow]:
    return {r.case.id: r for r in cases.list_cases(station.ws, cases.CaseFilter())}


def test_a_danger_report_sent_after_4_utc_is_not_overdue_on_arrival(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "in danger", urgency="danger")
    imported = _at(station, 10)
    importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path))
    (row,) = cases.list_cases(station.ws, cases.CaseFilter())
    report = _report(station)
    # From the import, not from 00:00 UTC (which made it overdue since 04:00).
    assert report.clock_start == report.imported_at
    assert abs(row.deadline - (imported + dt.timedelta(hours=4))) < dt.timedelta(seconds=5)  # type: ignore[operator]
    assert not row.overdue and row.due.urgency == "danger"
    station.clock.advance(hours=3, minutes=58)
    assert not cases.list_cases(station.ws, cases.CaseFilter())[0].overdue
    station.clock.advance(minutes=3)
    assert cases.list_cases(station.ws, cases.CaseFilter())[0].overdue


def test_a_pull_time_within_the_day_and_before_the_import_starts_the_clock(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "in danger", urgency="danger")
    bundle = export(drop, tmp_path, "export-1.tar")
    pulled = _at(station, 9, 15)
    clocks.pulled_path(bundle).write_text(pulled.strftime("%Y-%m-%dT%H:%M:%SZ\n"))
    _at(station, 10)
    assert importing.preview_bundle(station.ws, bundle).pulled_at == pulled
    importing.import_bundle(station.ws, ADMIN, bundle)
    assert _report(station).clock_start == pulled
    (row,) = cases.list_cases(station.ws, cases.CaseFilter())
    assert row.deadline == pulled + dt.timedelta(hours=4)
    assert row.case.opened_at == pulled


def test_a_pull_time_after_the_import_falls_back_to_the_import_quietly(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "hello")
    bundle = export(drop, tmp_path, "export-1.tar")
    later = _at(station, 11)
    clocks.pulled_path(bundle).write_text(later.strftime("%Y-%m-%dT%H:%M:%SZ"))
    _at(station, 10)
    importing.import_bundle(station.ws, ADMIN, bundle)
    report = _report(station)
    assert report.clock_start == report.imported_at


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"yesterday",
        b"2026-13-45T99:00:00Z",
        b"2026-12-06T09:00:00+00:00",
        b"2026-12-06 09:00:00Z",
        b"\xff\xfe2026-12-06T09:00:00Z",
        b"2026-12-06T09:00:00Z" + b" " * 100,
    ],
)
def test_a_malformed_pull_time_is_ignored(tmp_path: Path, content: bytes) -> None:
    bundle = tmp_path / "export-3.tar"
    clocks.pulled_path(bundle).write_bytes(content)
    assert clocks.read_pull_time(bundle) is None


def test_an_implausible_pull_time_is_not_the_clock_start(tmp_path: Path) -> None:
    day = dt.date(2026, 12, 6)
    imported = dt.datetime(2026, 12, 6, 10, tzinfo=dt.UTC)
    assert clocks.read_pull_time(tmp_path / "missing.tar") is None
    (tmp_path / "dir.tar.pulled").mkdir()
    assert clocks.read_pull_time(tmp_path / "dir.tar") is None
    for pulled in (
        imported - dt.timedelta(days=1),  # the day before the report's day
        imported + dt.timedelta(minutes=1),  # after the import
        None,
    ):
        assert clocks.clock_start(day, imported, pulled) == imported
    pulled = imported - dt.timedelta(hours=2)
    assert clocks.clock_start(day, imported, pulled) == pulled


def test_the_transfer_client_writes_the_pull_time_the_workstation_reads(tmp_path: Path) -> None:
    bundle = tmp_path / "export-7.tar"
    bundle.write_bytes(b"bundle")
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    _record_pull_time(bundle)
    after = dt.datetime.now(dt.UTC)
    text = (tmp_path / "export-7.tar.pulled").read_text()
    assert text.endswith("Z\n") and len(text) == len("2026-12-06T09:15:00Z\n")
    pulled = clocks.read_pull_time(bundle)
    assert pulled is not None and before <= pulled <= after


def test_replies_are_queued_then_sent_then_delivered(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = station.ws
    source_reports(drop, "help", urgency="urgent")
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path, "1.tar"))
    (row,) = cases.list_cases(ws, cases.CaseFilter())
    station.clock.advance(minutes=5)
    replies.queue_reply(ws, ADMIN, row.case.id, "We read you.")
    (row,) = cases.list_cases(ws, cases.CaseFilter())
    # Queued is not answered: the deadline still runs and no first response is counted.
    assert row.reply == ReplyState.QUEUED and row.deadline is not None
    assert row.case.first_response_at is None
    assert stats.compute_statistics(ws).responded == 0
    station.clock.advance(minutes=5)
    made = replies.export_reply_bundle(ws, ADMIN)
    (row,) = cases.list_cases(ws, cases.CaseFilter())
    assert row.reply == ReplyState.SENT and row.deadline is None
    # Statistics: from the import to the reply's leaving, ten minutes, not hours from midnight.
    figures = stats.compute_statistics(ws)
    assert figures.responded == 1 and figures.median_first_response_hours == 0.2
    # The server imports the reply bundle; its next export says so.
    bundles.import_reply_bundle(drop, made.path)
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path, "2.tar"))
    (row,) = cases.list_cases(ws, cases.CaseFilter())
    assert row.reply == ReplyState.DELIVERED


def test_the_list_puts_danger_follow_ups_first_then_danger_urgent_routine(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = station.ws
    answered = source_reports(drop, "first, answered")
    closed = source_reports(drop, "first, closed")
    source_reports(drop, "routine, waiting")
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path, "1.tar"))
    ids = {r.case.reports[0].text: r.case.id for r in cases.list_cases(ws, cases.CaseFilter())}
    replies.queue_reply(ws, ADMIN, ids["first, answered"], "We are on it.")
    replies.export_reply_bundle(ws, ADMIN)
    cases.set_status(ws, ADMIN, ids["first, closed"], "closed")
    station.clock.advance(days=10)  # the routine case is long overdue
    source_reports(drop, "now in danger", login=answered, urgency="danger")
    source_reports(drop, "in danger again", login=closed, urgency="danger")
    source_reports(drop, "new, in danger", urgency="danger")
    source_reports(drop, "new, urgent", urgency="urgent")
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path, "2.tar"))
    rows = cases.list_cases(ws, cases.CaseFilter())
    order = [r.case.reports[-1].text for r in rows]
    assert set(order[:2]) == {"now in danger", "in danger again"}
    assert order[2:] == ["new, in danger", "new, urgent", "routine, waiting"]
    flagged = [r.due.follow_up for r in rows]
    assert flagged == [True, True, False, False, False]
    # The follow-up on the answered case has its own deadline, and a red row when late.
    follow_up = _rows(station)[ids["first, answered"]]
    assert follow_up.deadline is not None and follow_up.due.urgency == "danger"
    station.clock.advance(hours=5)
    assert _rows(station)[ids["first, answered"]].overdue


def test_the_migration_starts_existing_clocks_at_the_import(tmp_path: Path) -> None:
    path = tmp_path / "cases.sqlite"
    config = alembic_config(f"sqlite:///{path}")
    command.upgrade(config, "0002")
    with sqlite3.connect(path) as conn:
        conn.executescript(
            """
            INSERT INTO cases (id, source_uuid, designation, source_fingerprint, status,
              category, urgency, reply_language, opened_at, updated_at, first_response_at,
              unread)
            VALUES (1, 's1', 'd1', 'f', 'new', 'other', 'danger', 'en',
                    '2026-12-01 00:00:00.000000', '2026-12-01 09:00:00.000000',
                    '2026-12-01 09:05:00.000000', 1),
                   (2, 's2', 'd2', 'f', 'new', 'other', 'routine', 'en',
                    '2026-12-01 00:00:00.000000', '2026-12-01 09:00:00.000000', NULL, 1);
            INSERT INTO reports (id, uuid, case_id, received_day, imported_at, category,
              urgency, reply_language, wiki, links, text)
            VALUES (1, 'r1', 1, '2026-12-01', '2026-12-01 09:00:00.000000', 'other',
                    'danger', 'en', '', '', ''),
                   (2, 'r2', 2, '2026-12-01', '2026-12-01 09:30:00.000000', 'other',
                    'routine', 'en', '', '', '');
            INSERT INTO reply_bundles (id, uuid, sequence, created_at, created_by, filename,
              replies, acknowledgements)
            VALUES (1, 'b1', 1, '2026-12-01 11:00:00.000000', 'admin', 'replies-1.tar', 1, 1);
            INSERT INTO outgoing_replies (id, uuid, case_id, author, created_at, text,
              ciphertext, bundle_id)
            VALUES (1, 'o1', 1, 'admin', '2026-12-01 09:05:00.000000', 't', x'00', 1),
                   (2, 'o2', 2, 'admin', '2026-12-01 09:40:00.000000', 't', x'00', NULL);
            """
        )
    command.upgrade(config, "head")
    with sqlite3.connect(path) as conn:
        reports = conn.execute("SELECT clock_start, follow_up FROM reports ORDER BY id").fetchall()
        rows = conn.execute("SELECT opened_at, first_response_at FROM cases ORDER BY id").fetchall()
        delivered = conn.execute("SELECT delivered_at FROM outgoing_replies").fetchall()
    assert reports == [("2026-12-01 09:00:00.000000", 0), ("2026-12-01 09:30:00.000000", 0)]
    # Opened at the import (not midnight); answered when the reply left, not when queued.
    assert rows == [
        ("2026-12-01 09:00:00.000000", "2026-12-01 11:00:00.000000"),
        ("2026-12-01 09:30:00.000000", None),
    ]
    assert delivered == [(None,), (None,)]
