"""A case as one conversation: its reports (the first and the source's follow-ups),
the replies with their state, the internal notes (handover notes marked as such), and
the status changes, (re)assignments and legal holds the audit log recorded, in time
order.

A report stands at its clock start (when it reached the team: see clocks.py); the rest
at the time they were written or done here. At the same moment, a report comes first,
then what was done, then notes, then replies.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from .clocks import ReplyState, reply_state
from .models import AuditEvent, Case, HandoverNote, Note, OutgoingReply, Report
from .services import Workstation

#: The audit actions a thread shows, and the kind of entry each becomes.
EVENT_KINDS = {
    "case.status": "status",
    "case.assign": "assign",
    "case.hold": "hold",
    "case.release": "release",
}


@dataclass(frozen=True)
class ReportEntry:
    """A report the source sent; ``first``: the case's first, else a follow-up."""

    kind: ClassVar[str] = "report"
    rank: ClassVar[int] = 0
    at: dt.datetime
    report: Report
    first: bool


@dataclass(frozen=True)
class EventEntry:
    """A change recorded in the audit log: ``kind`` "status" (``old`` -> ``new``),
    "assign" (``new``: the assignee's name, or "nobody"), "hold" or "release"
    (``new``: the reason as given)."""

    rank: ClassVar[int] = 1
    kind: str
    at: dt.datetime
    actor: str
    old: str
    new: str


@dataclass(frozen=True)
class NoteEntry:
    """An internal note; ``handover_to``: the account a reassignment handed it to."""

    kind: ClassVar[str] = "note"
    rank: ClassVar[int] = 2
    at: dt.datetime
    note: Note
    handover_to: str | None


@dataclass(frozen=True)
class ReplyEntry:
    """A reply to the source, and where it is (queued, sent, delivered)."""

    kind: ClassVar[str] = "reply"
    rank: ClassVar[int] = 3
    at: dt.datetime
    reply: OutgoingReply
    state: ReplyState


Entry = ReportEntry | EventEntry | NoteEntry | ReplyEntry


def _event(event: AuditEvent) -> EventEntry | None:
    kind = EVENT_KINDS.get(event.action)
    if kind is None:
        return None
    old, new = "", event.detail
    if kind == "status":
        old, _arrow, new = event.detail.partition(" -> ")
    elif kind in ("hold", "release"):
        new = event.detail.removeprefix("reason: ")
    return EventEntry(kind, event.at, event.actor, old, new)


def build_thread(db: Session, case: Case) -> list[Entry]:
    """The entries of ``case`` (loaded with its reports, notes and replies, as
    cases.get_case does) in time order, reading its audit events and handover notes
    in the caller's session."""
    entries: list[Entry] = []
    reports: list[Report] = sorted(case.reports, key=lambda r: (r.clock_start, r.id))
    for i, report in enumerate(reports):
        entries.append(ReportEntry(report.clock_start, report, first=i == 0))
    note_ids = [n.id for n in case.notes]
    query = select(HandoverNote).where(HandoverNote.note_id.in_(note_ids))
    handovers = {h.note_id: h.assignee for h in db.scalars(query)}
    for note in case.notes:
        entries.append(NoteEntry(note.created_at, note, handovers.get(note.id)))
    for reply in case.replies:
        entries.append(ReplyEntry(reply.created_at, reply, reply_state(reply)))
    events = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.case_id == case.id, AuditEvent.action.in_(EVENT_KINDS))
        .order_by(AuditEvent.id)
    )
    for event in events:
        entry = _event(event)
        if entry is not None:
            entries.append(entry)
    # Stable: entries of one kind at the same time keep the order they were added in.
    entries.sort(key=lambda e: (e.at, e.rank))
    return entries


def case_thread(ws: Workstation, case: Case) -> list[Entry]:
    """:func:`build_thread` in a session of its own."""
    with ws.sessions() as db:
        return build_thread(db, case)
