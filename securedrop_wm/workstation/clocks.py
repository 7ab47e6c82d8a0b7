"""Honest clocks on the workstation: when a report's clock starts, when its first
response is due, and whether a reply is queued, sent or delivered.

The drop server keeps days only. A report's clock therefore starts at its import here,
or earlier, at the time the transfer machine pulled its bundle (``export-N.tar.pulled``
beside the bundle), when that time lies within the report's signed day and before the
import. Never at 00:00 UTC of the report's day: a danger report (4 h) sent at 05:00
would be overdue on arrival.

A report is answered once a reply written after its import has left in a reply bundle;
a queued reply answers nothing yet.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..bundles.manifest import ReceivedReplies
from ..vocabulary import CaseStatus, Urgency, Vocabulary, urgency_rank
from .models import Case, OutgoingReply, ReplyBundle, Report
from .settings import WorkstationSettings

PULLED_SUFFIX = ".pulled"
MAX_PULLED_BYTES = 64
_PULLED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


class ReplyState(Vocabulary):
    """Where a reply is: written here, gone in a reply bundle, or received by the server."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"


@dataclass(frozen=True)
class Due:
    """What a case still needs: the first response's deadline of its unanswered reports
    (``None``: nothing due), their highest urgency, and whether one of them is a danger
    report that came after the case was answered or closed (a follow-up)."""

    deadline: dt.datetime | None
    urgency: str | None
    follow_up: bool

    def overdue(self, now: dt.datetime) -> bool:
        """Whether the deadline has passed at ``now``."""
        return self.deadline is not None and self.deadline <= now


def pulled_path(bundle: Path) -> Path:
    """Where the transfer client writes the pull time of ``bundle``."""
    return bundle.with_name(bundle.name + PULLED_SUFFIX)


def read_pull_time(bundle: Path) -> dt.datetime | None:
    """The pull time written beside ``bundle`` (ISO 8601 UTC, seconds, ``Z``); ``None``
    when the file is missing, larger than such a line, or malformed."""
    try:
        with pulled_path(bundle).open("rb") as f:
            data = f.read(MAX_PULLED_BYTES + 1)
    except OSError:
        return None
    try:
        text = data.decode("ascii").strip()
    except UnicodeDecodeError:
        return None
    if len(data) > MAX_PULLED_BYTES or not _PULLED.fullmatch(text):
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def clock_start(
    day: dt.date, imported_at: dt.datetime, pulled_at: dt.datetime | None
) -> dt.datetime:
    """The pull time when it lies within the report's day and before the import, else
    the import time."""
    if pulled_at is not None and pulled_at.date() == day and pulled_at <= imported_at:
        return pulled_at
    return imported_at


def reply_state(reply: OutgoingReply) -> ReplyState:
    """Queued until it leaves in a reply bundle, sent then, delivered once acknowledged."""
    if reply.delivered_at is not None:
        return ReplyState.DELIVERED
    return ReplyState.QUEUED if reply.bundle_id is None else ReplyState.SENT


def answered(report: Report, replies: Iterable[OutgoingReply]) -> bool:
    """Whether a reply written after the report's import has left."""
    return any(r.bundle_id is not None and r.created_at >= report.imported_at for r in replies)


def due(settings: WorkstationSettings, case: Case) -> Due:
    """What ``case`` needs (its reports and replies loaded); nothing once it is closed."""
    if case.status == CaseStatus.CLOSED:
        return Due(None, None, False)
    open_reports = [r for r in case.reports if not answered(r, case.replies)]
    if not open_reports:
        return Due(None, None, False)
    hours = settings.deadline_hours
    routine = hours[Urgency.ROUTINE.value]
    deadline = min(
        r.clock_start + dt.timedelta(hours=hours.get(r.urgency, routine)) for r in open_reports
    )
    urgency = max((r.urgency for r in open_reports), key=urgency_rank)
    follow_up = any(r.follow_up for r in open_reports)
    return Due(deadline, urgency, follow_up)


def answered_or_closed(case: Case) -> bool:
    """Whether a danger report arriving now on ``case`` is a follow-up: the case has a
    reply (queued or sent) or is closed (read before the import reopens it)."""
    return case.status == CaseStatus.CLOSED or bool(case.replies)


def record_deliveries(db: Session, received: Iterable[ReceivedReplies], now: dt.datetime) -> int:
    """Mark delivered each sent reply the server says it received in reply bundle
    ``sequence``; ids of another bundle or unknown here are ignored. :returns: how many."""
    count = 0
    for entry in received:
        ids = list(entry.reply_ids)
        for start in range(0, len(ids), 500):
            query = (
                select(OutgoingReply)
                .join(ReplyBundle, OutgoingReply.bundle_id == ReplyBundle.id)
                .where(
                    OutgoingReply.uuid.in_(ids[start : start + 500]),
                    ReplyBundle.sequence == entry.sequence,
                    OutgoingReply.delivered_at.is_(None),
                )
            )
            for reply in db.scalars(query):
                reply.delivered_at = now
                count += 1
    return count
