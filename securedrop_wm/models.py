"""Database models. The server keeps only what it must: no codename, no plaintext,
dates coarsened to the day, sizes, a pending report's urgency level and the desks it
is for (both forgotten when the workstations acknowledge it) and how many reports of
each level ever arrived at each desk."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .db import NAMING_CONVENTION


class Base(DeclarativeBase):
    """Declarative base with a naming convention Alembic can rely on."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_uuid() -> str:
    """A random public identifier."""
    return str(uuid.uuid4())


class Source(Base):
    """A source, known only by what Argon2id derived from their codename."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    lookup_id: Mapped[str] = mapped_column(String(64), unique=True)
    designation: Mapped[str] = mapped_column(String(80), unique=True)
    key_fingerprint: Mapped[str] = mapped_column(String(40))
    created_day: Mapped[dt.date] = mapped_column(Date)
    # The day of the source's latest report; None: never filed one (removed after
    # ``unused_source_days``, see retention.py).
    last_report_day: Mapped[dt.date | None] = mapped_column(Date, default=None)

    reports: Mapped[list[Report]] = relationship(
        back_populates="source", cascade="all, delete-orphan"
    )
    replies: Mapped[list[Reply]] = relationship(
        back_populates="source", cascade="all, delete-orphan"
    )


class Report(Base):
    """One submission of the report form: an encrypted message and any files."""

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    created_day: Mapped[dt.date] = mapped_column(Date)
    # The source's level (``vocabulary.Urgency``) while the report is pending; None once
    # the workstation has acknowledged it, so a seized server does not say it afterwards.
    urgency: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    acknowledged: Mapped[bool] = mapped_column(Boolean, default=False)
    # The day the workstation acknowledged the last of its submissions.
    acknowledged_day: Mapped[dt.date | None] = mapped_column(Date, default=None)
    # What the source sent (category, file names and sizes, the day), encrypted to the
    # source's key only (receipts.py); None for reports filed before receipts existed.
    receipt: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)

    source: Mapped[Source] = relationship(back_populates="reports")
    submissions: Mapped[list[Submission]] = relationship(
        back_populates="report", cascade="all, delete-orphan"
    )


class Submission(Base):
    """One ciphertext file in the store: a report's message or one of its files."""

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    store_name: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    # Set when a reply bundle says the workstation imported it; the ciphertext is purged
    # (file and row) ``purge_acknowledged_after_days`` later.
    acknowledged_day: Mapped[dt.date | None] = mapped_column(Date, default=None)

    report: Mapped[Report] = relationship(back_populates="submissions")
    desks: Mapped[list[SubmissionDesk]] = relationship(
        back_populates="submission", cascade="all, delete-orphan", passive_deletes=True
    )


class SubmissionDesk(Base):
    """A desk a pending ciphertext is for (desks.py). Deleted as that desk's workstation
    acknowledges it: once every desk has, the submission is acknowledged (and purged in
    time). Which desk a report went to says something about its source, so no row says
    it once nothing is pending; store names never do."""

    __tablename__ = "submission_desks"
    __table_args__ = (UniqueConstraint("submission_id", "desk"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    desk: Mapped[str] = mapped_column(String(32), index=True)

    submission: Mapped[Submission] = relationship(back_populates="desks")


class Reply(Base):
    """A reply from the responders, encrypted to the source's key and the team key."""

    __tablename__ = "replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    store_name: Mapped[str] = mapped_column(String(64), unique=True)
    size: Mapped[int] = mapped_column(Integer)
    created_day: Mapped[dt.date] = mapped_column(Date)
    # "bundle": written on the workstation; "cli": added on the server by an admin.
    origin: Mapped[str] = mapped_column(String(16), default="cli")

    source: Mapped[Source] = relationship(back_populates="replies")


class SourceTombstone(Base):
    """What stays of a removed source, for ``tombstone_days``: its lookup id (derived
    from the codename by Argon2id) and the day, so that logging in again says the
    source's data was removed rather than "not recognized"."""

    __tablename__ = "source_tombstones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lookup_id: Mapped[str] = mapped_column(String(64), unique=True)
    removed_day: Mapped[dt.date] = mapped_column(Date)


class BundleRecord(Base):
    """A bundle this server wrote (export) or imported (replies): replay protection.

    Exports take the next sequence number; an imported bundle is remembered by the
    SHA-256 of its signed manifest so that importing it again changes nothing.
    """

    __tablename__ = "bundle_log"
    __table_args__ = (UniqueConstraint("direction", "peer", "desk", "sequence"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))
    peer: Mapped[str] = mapped_column(String(40))
    # The desk whose workstation the bundle was for or from: each desk has its own
    # sequence. "default" (rows from before desks): the first desk's (desks.stored_ids).
    desk: Mapped[str] = mapped_column(String(32), default="default")
    sequence: Mapped[int] = mapped_column(Integer)
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    day: Mapped[dt.date] = mapped_column(Date)
    # Imported reply bundles: the head of the workstation's audit chain it carried (the
    # hash of its newest event), shown back in export bundles (docs/bundles.md).
    audit_head: Mapped[str | None] = mapped_column(String(64), default=None)
    # Imported reply bundles: the ids of the replies it carried, space-separated, listed
    # back in export bundles (``replies_received``) for ``RECEIVED_REPLIES_DAYS``, then
    # cleared. None: not known (imported before this was kept) or cleared.
    reply_ids: Mapped[str | None] = mapped_column(Text, default=None)


class ArrivalCount(Base):
    """How many reports of one urgency level were ever filed to one desk: only ever goes
    up, and outlives the reports (acknowledgement, purge and retention leave it alone)."""

    __tablename__ = "arrival_counts"

    desk: Mapped[str] = mapped_column(String(32), primary_key=True)
    level: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class TransferToken(Base):
    """A responder's token for the transfer API, kept only as its SHA-256."""

    __tablename__ = "transfer_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_day: Mapped[dt.date] = mapped_column(Date)
    # "full": status, export and replies; "status": GET /status only (an alerting watcher).
    scope: Mapped[str] = mapped_column(String(16), default="full")
    # The desk whose items the token reaches (and nothing of another desk's).
    desk: Mapped[str] = mapped_column(String(32), default="default")
