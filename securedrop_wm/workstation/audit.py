"""The audit log: who did what, when. Append-only, each event chained to the one before.

The chain makes an edit or a deletion visible (:func:`verify_chain`); the database's
triggers refuse UPDATE and DELETE outright, and :func:`check_triggers` says when they are
gone. Details name cases and accounts, never the content of a message.

The anchor: every reply bundle carries the chain's head (the newest event's hash), the
drop server keeps the heads it received and shows the latest back in its export
bundles; an import records them (:func:`record_server_heads`) and :func:`check_anchors`
says when the log no longer contains one: it was cut off or rewritten after that head
left. What this does not detect: a truncation or a rewrite of events that no head which
left in a reply bundle covers (made before any reply bundle left, or of the events since
the last one), nor a server lied to by someone holding the workstation's signing key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from ..bundles.manifest import AuditHead
from .errors import AuditChainError
from .models import AuditEvent, ServerAuditHead
from .services import Workstation

GENESIS = "0" * 64
# Recorded at most once per account, case and UTC day: a responder opens a case page many
# times a day; the first opening says who read it that day, the rest would drown the log.
ONCE_A_DAY = frozenset({"case.read"})
# The triggers that keep the log append-only, as the first migration (0001) creates them.
APPEND_ONLY_TRIGGERS = {
    "audit_events_no_update": "UPDATE",
    "audit_events_no_delete": "DELETE",
}


def _trigger_sql(name: str, operation: str) -> str:
    return (
        f"CREATE TRIGGER {name} BEFORE {operation} ON audit_events "
        "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"
    )


def record(
    db: Session,
    at: dt.datetime,
    actor: str,
    action: str,
    *,
    case_id: int | None = None,
    detail: str = "",
) -> AuditEvent:
    """Append one event in the caller's transaction (which must hold the write lock).

    An action of :data:`ONCE_A_DAY` that the same actor recorded on the same case earlier
    the same UTC day is not recorded again: the earlier event is returned.
    """
    if action in ONCE_A_DAY and case_id is not None:
        day = at.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        earlier = db.scalar(
            select(AuditEvent)
            .where(
                AuditEvent.actor == actor,
                AuditEvent.action == action,
                AuditEvent.case_id == case_id,
                AuditEvent.at >= day,
                AuditEvent.at < day + dt.timedelta(days=1),
            )
            .limit(1)
        )
        if earlier is not None:
            return earlier
    last = db.scalar(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1))
    prev = last.hash if last is not None else GENESIS
    event = AuditEvent(at=at, actor=actor, action=action, case_id=case_id, detail=detail)
    event.prev_hash = prev
    event.hash = _digest(prev, event)
    db.add(event)
    db.flush()
    return event


def _digest(prev: str, event: AuditEvent) -> str:
    at = event.at.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    body = json.dumps([prev, at, event.actor, event.action, event.case_id, event.detail])
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def verify_chain(db: Session) -> int:
    """Check every event's hash and link; return how many there are.

    :raises AuditChainError: naming the first event that was changed, removed or inserted.
    """
    prev = GENESIS
    count = 0
    for event in db.scalars(select(AuditEvent).order_by(AuditEvent.id)):
        if event.prev_hash != prev or event.hash != _digest(prev, event):
            raise AuditChainError(f"the audit log was altered at or before event {event.id}")
        prev = event.hash
        count += 1
    return count


def check_triggers(db: Session) -> None:
    """Check that the triggers refusing UPDATE and DELETE of events are there, unchanged.

    :raises AuditChainError: naming a trigger that was dropped or changed.
    """
    rows = db.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"),
        {"t": AuditEvent.__tablename__},
    )
    found = {str(name): " ".join(str(sql).split()) for name, sql in rows}
    for name, operation in APPEND_ONLY_TRIGGERS.items():
        if found.get(name) != _trigger_sql(name, operation):
            raise AuditChainError(
                f"the audit log's trigger {name} was dropped or changed: "
                "the log may have been altered"
            )


def head(db: Session) -> str | None:
    """The chain's head: the hash of the newest event (None while the log is empty)."""
    return db.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))


def _contains(db: Session, value: str) -> bool:
    return db.scalar(select(AuditEvent.id).where(AuditEvent.hash == value)) is not None


def record_server_heads(
    db: Session, server_id: str, export_sequence: int, heads: Sequence[AuditHead]
) -> int:
    """Keep the heads an export bundle showed back, each with whether this log contains
    it; return how many of the new ones it does not contain (in the caller's transaction)."""
    missing = 0
    for h in heads:
        known = db.scalar(
            select(ServerAuditHead.id).where(
                ServerAuditHead.server_id == server_id,
                ServerAuditHead.sequence == h.sequence,
                ServerAuditHead.head == h.head,
            )
        )
        if known is not None:
            continue
        found = _contains(db, h.head)
        missing += not found
        db.add(
            ServerAuditHead(
                server_id=server_id,
                sequence=h.sequence,
                day=h.day,
                head=h.head,
                found=found,
                export_sequence=export_sequence,
            )
        )
    db.flush()
    return missing


def check_anchors(db: Session) -> int:
    """Check that the log contains every head the drop server holds (as the export
    bundles showed them), and contained each when it arrived; return how many.

    :raises AuditChainError: naming a head this log does not contain.
    """
    heads = db.scalars(select(ServerAuditHead).order_by(ServerAuditHead.sequence)).all()
    for h in heads:
        if not h.found or not _contains(db, h.head):
            raise AuditChainError(
                f"not intact: the drop server holds head {h.head} (reply bundle "
                f"{h.sequence}, {h.day.isoformat()}) that this log does not contain "
                "(truncated or rewritten)"
            )
    return len(heads)


def verify_log(db: Session) -> int:
    """Check the append-only triggers, the whole chain and the heads the drop server
    holds; return how many events.

    :raises AuditChainError: a trigger is missing or changed, the chain is broken, or
        the log lacks a head the server holds.
    """
    check_triggers(db)
    count = verify_chain(db)
    check_anchors(db)
    return count


@dataclass(frozen=True)
class AuditFilter:
    """Which events to show: by who, what, which case, from and until which day (UTC,
    both included); ``None`` for any."""

    actor: str | None = None
    action: str | None = None
    case_id: int | None = None
    since: dt.date | None = None
    until: dt.date | None = None

    def where(self, query: Select[Any]) -> Select[Any]:
        """``query`` narrowed to the events this filter keeps."""
        if self.actor is not None:
            query = query.where(AuditEvent.actor == self.actor)
        if self.action is not None:
            query = query.where(AuditEvent.action == self.action)
        if self.case_id is not None:
            query = query.where(AuditEvent.case_id == self.case_id)
        if self.since is not None:
            query = query.where(AuditEvent.at >= _midnight(self.since))
        if self.until is not None:
            query = query.where(AuditEvent.at < _midnight(self.until + dt.timedelta(days=1)))
        return query


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def list_events(
    db: Session,
    *,
    case_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
    filters: AuditFilter | None = None,
) -> Sequence[AuditEvent]:
    """The newest events first, optionally of one case, or as ``filters`` says."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit).offset(offset)
    if case_id is not None:
        query = query.where(AuditEvent.case_id == case_id)
    if filters is not None:
        query = filters.where(query)
    return db.scalars(query).all()


def count_matching(db: Session, filters: AuditFilter) -> int:
    """How many events ``filters`` keeps."""
    return int(db.scalar(filters.where(select(func.count(AuditEvent.id)))) or 0)


def filter_choices(db: Session) -> tuple[list[str], list[str]]:
    """Who and what the log names, for the filter's lists."""
    actors = db.scalars(select(AuditEvent.actor).distinct().order_by(AuditEvent.actor))
    actions = db.scalars(select(AuditEvent.action).distinct().order_by(AuditEvent.action))
    return list(actors), list(actions)


def count_events(db: Session) -> int:
    """How many events the log holds."""
    return int(db.scalar(select(func.count(AuditEvent.id))) or 0)


@dataclass(frozen=True)
class AuditPage:
    """One page of the log, newest first, and what the whole chain says."""

    events: Sequence[AuditEvent]
    count: int
    chained: bool
    guarded: bool
    anchored: bool = True
    # Why the log is not anchored: a head the drop server holds that it lacks.
    problem: str = ""
    # How many events the filter keeps, and who and what the whole log names.
    matching: int = 0
    actors: Sequence[str] = ()
    actions: Sequence[str] = ()

    @property
    def intact(self) -> bool:
        """The chain verifies, the append-only triggers are in place, and the log holds
        every head the drop server holds."""
        return self.chained and self.guarded and self.anchored


def read_log(
    ws: Workstation, *, limit: int = 100, offset: int = 0, filters: AuditFilter | None = None
) -> AuditPage:
    """A page of the log (the events ``filters`` keeps), whether the chain holds and
    whether the append-only triggers are there, read in one session of its own.

    A broken chain does not hide the log: the page is still shown, marked not intact.
    """
    with ws.sessions() as db:
        try:
            check_triggers(db)
            guarded = True
        except AuditChainError:
            guarded = False
        try:
            count, chained = verify_chain(db), True
        except AuditChainError:
            count, chained = count_events(db), False
        try:
            check_anchors(db)
            anchored, problem = True, ""
        except AuditChainError as e:
            anchored, problem = False, str(e)
        filters = filters or AuditFilter()
        events = list_events(db, limit=limit, offset=offset, filters=filters)
        matching = count_matching(db, filters)
        actors, actions = filter_choices(db)
    return AuditPage(events, count, chained, guarded, anchored, problem, matching, actors, actions)
