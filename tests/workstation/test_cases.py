"""Cases: filters, overdue deadlines, closing and retention, statistics, replies."""

from __future__ import annotations

from pathlib import Path

import pytest

from securedrop_wm.drop import Drop
from securedrop_wm.workstation import cases, importing, replies, retention, stats
from securedrop_wm.workstation.errors import CaseError, ReplyError
from tests.conftest import Responders
from tests.workstation.fixtures import ADMIN, Station, export, source_reports


def _two_cases(station: Station, drop: Drop, tmp_path: Path) -> tuple[int, int]:
    source_reports(drop, "routine one", category="legal")
    source_reports(drop, "in danger", category="threats", urgency="danger", reply_language="ar")
    importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path))
    rows = cases.list_cases(station.ws, cases.CaseFilter(sort="urgency"))
    return rows[0].case.id, rows[1].case.id


def test_filters_sorting_and_overdue_cases(station: Station, drop: Drop, tmp_path: Path) -> None:
    danger, routine = _two_cases(station, drop, tmp_path)
    ws = station.ws
    only = cases.list_cases(ws, cases.CaseFilter(reply_language="ar"))
    assert [r.case.id for r in only] == [danger]
    assert [r.case.id for r in cases.list_cases(ws, cases.CaseFilter(category="legal"))] == [
        routine
    ]
    # A danger report is due within 4 hours of its import; a day later it is overdue and first.
    station.clock.advance(days=1)
    rows = cases.list_cases(ws, cases.CaseFilter())
    assert rows[0].case.id == danger and rows[0].overdue
    # A queued reply has not left: still due. Once it leaves, the deadline is met.
    replies.queue_reply(ws, ADMIN, danger, "We are here.")
    rows = {r.case.id: r for r in cases.list_cases(ws, cases.CaseFilter())}
    assert rows[danger].overdue and rows[danger].reply == "queued"
    replies.export_reply_bundle(ws, ADMIN)
    rows = {r.case.id: r for r in cases.list_cases(ws, cases.CaseFilter())}
    assert rows[danger].deadline is None and not rows[danger].overdue
    with pytest.raises(CaseError, match="unknown status"):
        cases.set_status(ws, ADMIN, danger, "deleted")
    with pytest.raises(CaseError, match="empty"):
        cases.add_note(ws, ADMIN, danger, "   ")


def test_replies_decrypt_with_the_team_key(
    station: Station, drop: Drop, tmp_path: Path, responders: Responders
) -> None:
    case_id, _ = _two_cases(station, drop, tmp_path)
    with pytest.raises(ReplyError, match="empty"):
        replies.queue_reply(station.ws, ADMIN, case_id, "  ")
    replies.queue_reply(station.ws, ADMIN, case_id, "Ciphertext only, please.")
    with station.ws.sessions() as db:
        reply = cases.get_case(db, case_id).replies[0]
    path = tmp_path / "reply.gpg"
    path.write_bytes(reply.ciphertext)
    assert responders.decrypt(path) == b"Ciphertext only, please."
    made = replies.export_reply_bundle(station.ws, ADMIN)
    assert (made.replies, made.acknowledgements) == (1, 2)
    with pytest.raises(ReplyError, match="nothing to send"):
        replies.export_reply_bundle(station.ws, ADMIN)


def test_closed_cases_are_listed_then_purged_after_retention(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    source_reports(drop, "close me", files=[(b"secret file", "f.txt")])
    importing.import_bundle(station.ws, ADMIN, export(drop, tmp_path))
    ws = station.ws
    case_id = cases.list_cases(ws, cases.CaseFilter())[0].case.id
    cases.set_status(ws, ADMIN, case_id, "closed")
    assert retention.retention_schedule(ws) == []  # not due within 14 days
    station.clock.advance(days=ws.settings.retention_days - 7)
    (due,) = retention.retention_schedule(ws)
    assert not due.due and due.held  # acknowledgements not exported yet
    station.clock.advance(days=8)
    assert retention.purge_due(ws, ADMIN) == []  # held back
    replies.export_reply_bundle(ws, ADMIN)
    assert retention.purge_due(ws, ADMIN) == [due.designation]
    assert list(ws.settings.files_dir.iterdir()) == []
    assert cases.list_cases(ws, cases.CaseFilter(include_closed=True)) == []


def test_statistics_are_aggregates_only(station: Station, drop: Drop, tmp_path: Path) -> None:
    danger, _ = _two_cases(station, drop, tmp_path)
    station.clock.advance(hours=30)
    replies.queue_reply(station.ws, ADMIN, danger, "Answer.")
    replies.export_reply_bundle(station.ws, ADMIN)
    figures = stats.compute_statistics(station.ws)
    assert figures.total == 2 and figures.responded == 1
    assert figures.counts["urgency"] == {"routine": 1, "urgent": 0, "danger": 1}
    assert figures.counts["status"]["new"] == 2
    assert figures.median_first_response_hours is not None
    assert figures.median_first_response_hours >= 30
    text = stats.statistics_csv(figures)
    assert "threats,1" in text and "danger" in text
    svg = stats.bar_chart_svg("<b>t</b>", {"<script>": 1})
    assert "<script>" not in svg and "&lt;script&gt;" in svg
