"""A source's side of the conversation: what they sent and the replies, in one thread,
and follow-ups sent without the report form.

The server keeps no exact times, only days: within one day, reports come before
replies (the order of the two is not known). What a source sent is read from the
receipts encrypted to their key (receipts.py); a report filed before receipts existed
shows by its day only. Decrypting costs a gpg run per receipt, so only the newest
``detail_limit`` reports are decrypted per page.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from .drop import Drop
from .errors import SourceNotFoundError
from .models import Reply, Report, Source
from .receipts import Receipt, newest_sealed, open_receipt
from .sources import (
    PendingFile,
    ReplyText,
    ReportFields,
    ReportReceipt,
    SourceLogin,
    follow_up_desks,
    list_replies,
    submit_report,
)
from .vocabulary import Category, Urgency

#: How many of a source's newest reports a page decrypts the receipt of.
DETAIL_LIMIT = 20


class ReportStatus(enum.StrEnum):
    """Where a report stands, as the source is told."""

    SENT = "sent"  # on the server, waiting for the team to pull it
    RECEIVED = "received"  # the workstation acknowledged it (a reply bundle said so)
    ANSWERED = "answered"  # a reply reached the server after the team received it


@dataclass(frozen=True)
class SentReport:
    """One of the source's reports: its day, status and, if decrypted, its receipt."""

    uuid: str
    day: dt.date
    status: ReportStatus
    receipt: Receipt | None


@dataclass(frozen=True)
class ThreadEntry:
    """A report or a reply, in the thread's order."""

    day: dt.date
    report: SentReport | None = None
    reply: ReplyText | None = None


@dataclass(frozen=True)
class Thread:
    """The source's thread, oldest first; ``undetailed``: how many older reports were
    not decrypted for this page (shown by their day and status only)."""

    entries: tuple[ThreadEntry, ...]
    undetailed: int

    @property
    def replies(self) -> int:
        """How many replies the thread holds."""
        return sum(1 for e in self.entries if e.reply is not None)

    @property
    def reports(self) -> int:
        """How many reports the thread holds."""
        return sum(1 for e in self.entries if e.report is not None)


def report_status(report: Report, reply_days: Sequence[dt.date]) -> ReportStatus:
    """A report is answered when a reply reached the server on or after the day the
    workstation acknowledged it: a reply that came earlier was written before the team
    had read it. Replies the source deleted no longer count."""
    if not report.acknowledged:
        return ReportStatus.SENT
    seen = report.acknowledged_day or report.created_day
    if any(day >= seen for day in reply_days):
        return ReportStatus.ANSWERED
    return ReportStatus.RECEIVED


def load_thread(drop: Drop, login: SourceLogin, detail_limit: int = DETAIL_LIMIT) -> Thread:
    """The source's reports and replies, oldest first, decrypted with their key in
    memory only; the receipts of at most ``detail_limit`` newest reports are read."""
    replies = list_replies(drop, login)
    with drop.sessions() as db:
        fingerprint = db.scalar(
            select(Source.key_fingerprint).where(Source.lookup_id == login.source_id)
        )
        if fingerprint is None:
            raise SourceNotFoundError("no source has this codename")
        rows = db.scalars(
            select(Report).join(Source).where(Source.lookup_id == login.source_id)
        ).all()
        reply_days = list(
            db.scalars(
                select(Reply.created_day).join(Source).where(Source.lookup_id == login.source_id)
            )
        )
        facts = [(r.uuid, r.created_day, report_status(r, reply_days), r.receipt) for r in rows]
    facts.sort(key=lambda f: f[1])
    detailed = {f[0] for f in facts[-detail_limit:]} if detail_limit > 0 else set()
    reports = []
    try:
        for uuid, day, status, sealed in facts:
            receipt = None
            if sealed is not None and uuid in detailed:
                receipt = open_receipt(drop, fingerprint, login.passphrase, sealed)
            reports.append(SentReport(uuid, day, status, receipt))
    finally:
        drop.store.settle()  # the receipts' temporary files came and went
    undetailed = sum(1 for r in reports if r.uuid not in detailed)
    entries = [ThreadEntry(r.day, report=r) for r in reports]
    entries += [ThreadEntry(dt.date.fromisoformat(r.day), reply=r) for r in replies]
    entries.sort(key=lambda e: (e.day, e.reply is not None))  # stable: ids within a kind
    return Thread(tuple(entries), undetailed)


def previous_category(drop: Drop, login: SourceLogin) -> str:
    """The category of the source's newest report whose receipt can be read, else
    "other": what a follow-up, sent without choosing one, is filed under."""
    rows = newest_sealed(drop, login.source_id, 1)
    if not rows:
        return Category.OTHER.value
    sealed, fingerprint = rows[0]
    try:
        receipt = open_receipt(drop, fingerprint, login.passphrase, sealed)
    finally:
        drop.store.settle()
    if receipt is None or not Category.has(receipt.category):
        return Category.OTHER.value
    return receipt.category


def send_follow_up(
    drop: Drop,
    login: SourceLogin,
    text: str,
    urgency: str = Urgency.ROUTINE,
    files: Sequence[PendingFile] = (),
    desks: Sequence[str] | None = None,
) -> ReportReceipt:
    """Store a message (and/or files) sent without the report form: a report filed
    under the previous report's category, marked as a follow-up, encrypted to the keys
    of the desks the previous report went to (``desks``: those, as
    :func:`follow_up_desks` gives them, which the files must be streamed to; None:
    read from the receipts here).

    :raises ReportError: (or a subclass) as :func:`~securedrop_wm.sources.submit_report`.
    """
    fields = ReportFields(
        category=previous_category(drop, login),
        what_happened=text,
        urgency=urgency or Urgency.ROUTINE,
        reply_language="",
    )
    return submit_report(drop, login, fields, files, follow_up=True, desks=desks)


__all__ = [
    "DETAIL_LIMIT",
    "ReportStatus",
    "SentReport",
    "Thread",
    "ThreadEntry",
    "follow_up_desks",
    "load_thread",
    "previous_category",
    "report_status",
    "send_follow_up",
]
