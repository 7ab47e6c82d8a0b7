"""What the drop server keeps of the reply bundles it imported, and shows back in its
export bundles: the workstation's audit heads (``audit_heads``) and the ids of the
replies each bundle carried (``replies_received``). docs/bundles.md.

Both are read from the bundle's row in ``bundle_log`` (:class:`..models.BundleRecord`):
one record per imported bundle, with its sequence and the server's day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..drop import Drop
from ..models import BundleRecord
from .manifest import AuditHead, ReceivedReplies

EXPORT = "export"
IMPORT = "import"
# How many of the workstation's latest audit heads an export bundle shows back.
EXPORT_AUDIT_HEADS = 8
# Reply ids are listed back for the reply bundles imported in the last this many days
# (at most ``EXPORT_RECEIVED_BUNDLES`` of them, the newest), then forgotten.
RECEIVED_REPLIES_DAYS = 90
EXPORT_RECEIVED_BUNDLES = 500


@dataclass(frozen=True)
class KeptAuditHead:
    """A head of a workstation's audit chain, as the server keeps it."""

    workstation_id: str
    sequence: int
    day: dt.date
    head: str


def kept_audit_heads(
    drop: Drop, workstation_id: str | None = None, limit: int | None = None
) -> list[KeptAuditHead]:
    """The audit heads received in reply bundles, newest first per workstation key
    (only ``workstation_id``'s when given; at most ``limit`` of them)."""
    query = (
        select(BundleRecord)
        .where(BundleRecord.direction == IMPORT, BundleRecord.audit_head.is_not(None))
        .order_by(BundleRecord.peer, BundleRecord.sequence.desc())
    )
    if workstation_id is not None:
        query = query.where(BundleRecord.peer == workstation_id)
    if limit is not None:
        query = query.limit(limit)
    with drop.sessions() as db:
        return [
            KeptAuditHead(r.peer, r.sequence, r.day, str(r.audit_head)) for r in db.scalars(query)
        ]


def export_audit_heads(drop: Drop, pinned: str | None) -> tuple[AuditHead, ...]:
    """The pinned workstation's latest audit heads (a desk's: ``pinned``), for an export
    manifest."""
    if pinned is None:
        return ()
    return tuple(
        AuditHead(h.sequence, h.day, h.head)
        for h in kept_audit_heads(drop, pinned, EXPORT_AUDIT_HEADS)
    )


def export_replies_received(drop: Drop, pinned: str | None) -> tuple[ReceivedReplies, ...]:
    """The pinned workstation's reply bundles imported in the last
    ``RECEIVED_REPLIES_DAYS`` days (the newest ``EXPORT_RECEIVED_BUNDLES``), oldest first,
    each with the ids of its replies. Bundles imported before the ids were kept are left
    out: the server does not know what they carried."""
    if pinned is None:
        return ()
    since = drop.today() - dt.timedelta(days=RECEIVED_REPLIES_DAYS)
    with drop.sessions() as db:
        rows = db.execute(
            select(BundleRecord.sequence, BundleRecord.day, BundleRecord.reply_ids)
            .where(
                BundleRecord.direction == IMPORT,
                BundleRecord.peer == pinned,
                BundleRecord.day >= since,
                BundleRecord.reply_ids.is_not(None),
            )
            .order_by(BundleRecord.sequence.desc())
            .limit(EXPORT_RECEIVED_BUNDLES)
        ).all()
    return tuple(
        ReceivedReplies(sequence, day, tuple(str(ids).split()))
        for sequence, day, ids in reversed(rows)
    )


def keep_reply_ids(db: Session, record: BundleRecord, reply_ids: Sequence[str]) -> None:
    """Keep the reply ids of the bundle being imported (in its transaction), and forget
    those of bundles older than ``RECEIVED_REPLIES_DAYS``."""
    record.reply_ids = " ".join(reply_ids)
    db.execute(
        update(BundleRecord)
        .where(
            BundleRecord.direction == IMPORT,
            BundleRecord.day < record.day - dt.timedelta(days=RECEIVED_REPLIES_DAYS),
            BundleRecord.reply_ids.is_not(None),
        )
        .values(reply_ids=None)
    )
