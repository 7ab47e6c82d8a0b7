"""A case's thread (reports, replies with their state, notes, status changes and
assignments in time order), each responder's own read state, and handover notes."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from securedrop_wm.drop import Drop
from securedrop_wm.workstation import accounts, cases, importing, replies, thread
from securedrop_wm.workstation.errors import CaseError
from securedrop_wm.workstation.models import Account
from tests.workstation.fixtures import ADMIN, Station, export, source_reports


def _responder(station: Station, name: str = "rosa") -> int:
    with station.ws.write() as db:
        password = f"{name}'s own password"
        return accounts.create_account(station.ws, db, ADMIN, name, password, admin=False).id


def _account_id(station: Station, name: str) -> int:
    with station.ws.sessions() as db:
        return db.scalars(select(Account.id).where(Account.username == name)).one()


def _entries(station: Station, case_id: int) -> list[thread.Entry]:
    with station.ws.sessions() as db:
        return thread.build_thread(db, cases.get_case(db, case_id))


def _describe(entry: thread.Entry) -> tuple[str, str]:
    if isinstance(entry, thread.ReportEntry):
        return ("report", entry.report.text)
    if isinstance(entry, thread.ReplyEntry):
        return ("reply", f"{entry.reply.text} [{entry.state}]")
    if isinstance(entry, thread.NoteEntry):
        return ("note", f"{entry.note.text} -> {entry.handover_to}")
    return (entry.kind, f"{entry.actor}: {entry.old} -> {entry.new}")


def test_one_thread_in_time_order(station: Station, drop: Drop, tmp_path: Path) -> None:
    ws = station.ws
    rosa = _responder(station)
    source = source_reports(drop, "They posted my home address.")
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path, "one.tar"))
    (case_id,) = [r.case.id for r in cases.list_cases(ws, cases.CaseFilter())]
    station.clock.advance(minutes=5)
    cases.set_status(ws, ADMIN, case_id, "triaged")
    station.clock.advance(minutes=5)
    cases.assign(ws, ADMIN, case_id, rosa, "Rosa: she speaks Arabic; call the legal team.")
    station.clock.advance(minutes=5)
    replies.queue_reply(ws, "rosa", case_id, "We read your report.")
    replies.export_reply_bundle(ws, "rosa")
    station.clock.advance(minutes=5)
    cases.add_note(ws, "rosa", case_id, "Waiting for screenshots.")
    station.clock.advance(minutes=5)
    source_reports(drop, "Here are the screenshots.", login=source, urgency="urgent")
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path, "two.tar"))
    station.clock.advance(minutes=5)
    replies.queue_reply(ws, "rosa", case_id, "Thank you.")
    assert [_describe(e) for e in _entries(station, case_id)] == [
        ("report", "They posted my home address."),
        ("status", f"{ADMIN}: new -> triaged"),
        ("assign", f"{ADMIN}:  -> rosa"),
        ("note", "Rosa: she speaks Arabic; call the legal team. -> rosa"),
        ("reply", "We read your report. [sent]"),
        ("note", "Waiting for screenshots. -> None"),
        ("report", "Here are the screenshots."),
        ("reply", "Thank you. [queued]"),
    ]
    first, follow_up = [e for e in _entries(station, case_id) if isinstance(e, thread.ReportEntry)]
    assert first.first and not follow_up.first
    # Unassigning is in the thread too; an empty handover note adds no note.
    cases.assign(ws, "rosa", case_id, None, "   ")
    last = _entries(station, case_id)[-1]
    assert _describe(last) == ("assign", "rosa:  -> nobody")
    with pytest.raises(CaseError, match="at most"):
        cases.assign(ws, ADMIN, case_id, rosa, "x" * (cases.MAX_NOTE_CHARS + 1))


def _unread(station: Station, reader: int) -> set[int]:
    rows = cases.list_cases(station.ws, cases.CaseFilter(unread_only=True), reader=reader)
    return {r.case.id for r in rows}


def test_each_responder_has_their_own_read_state(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = station.ws
    rosa, admin = _responder(station), _account_id(station, ADMIN)
    source = source_reports(drop, "first")
    source_reports(drop, "other case")
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path, "one.tar"))
    one, two = sorted(r.case.id for r in cases.list_cases(ws, cases.CaseFilter()))
    assert _unread(station, admin) == _unread(station, rosa) == {one, two}
    cases.read_case(ws, ADMIN, one)
    assert _unread(station, admin) == {two} and _unread(station, rosa) == {one, two}
    assert not cases.is_unread(ws, ADMIN, one) and cases.is_unread(ws, "rosa", one)
    cases.read_case(ws, "rosa", one)
    cases.read_case(ws, "rosa", two)
    assert _unread(station, rosa) == set()
    # "Mark unread" is rosa's alone.
    cases.mark_unread(ws, "rosa", two)
    assert _unread(station, rosa) == {two} and _unread(station, admin) == {two}
    cases.read_case(ws, ADMIN, two)
    assert _unread(station, admin) == set() and _unread(station, rosa) == {two}
    # A follow-up makes the case unread again for everyone who had read it.
    source_reports(drop, "follow-up", login=source)
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path, "two.tar"))
    assert _unread(station, admin) == {one} and _unread(station, rosa) == {one, two}


def test_my_cases_are_those_assigned_to_me(station: Station, drop: Drop, tmp_path: Path) -> None:
    ws = station.ws
    rosa = _responder(station)
    source_reports(drop, "a")
    source_reports(drop, "b")
    importing.import_bundle(ws, ADMIN, export(drop, tmp_path))
    one, two = sorted(r.case.id for r in cases.list_cases(ws, cases.CaseFilter()))
    cases.assign(ws, ADMIN, two, rosa)
    mine = cases.list_cases(ws, cases.CaseFilter(assignee=rosa), reader=rosa)
    assert [r.case.id for r in mine] == [two]
