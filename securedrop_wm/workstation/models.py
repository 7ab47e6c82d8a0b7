"""The case database: its own metadata and file, never the drop server's.

Times are timezone-aware UTC datetimes stored naive (SQLite has no zones); the
:class:`UtcDateTime` type converts at the boundary so callers only see aware values.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from ..db import NAMING_CONVENTION
from ..vocabulary import CaseStatus


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A datetime stored as naive UTC and read back as aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of the case database (its own metadata and naming convention)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_uuid() -> str:
    """A random public identifier."""
    return str(uuid.uuid4())


class Account(Base):
    """A responder's local account: Argon2id password, TOTP, throttling state."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    totp_secret: Mapped[str] = mapped_column(String(64))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    last_totp_step: Mapped[int | None] = mapped_column(Integer, default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    # Set when an admin made the password (a new account, a reset): the next login leads
    # to a page that changes it, and nowhere else, until it is changed.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    # A new TOTP secret shown with its QR code, not yet confirmed by a code from it; it
    # replaces ``totp_secret`` only once confirmed (accounts.confirm_totp).
    totp_pending: Mapped[str] = mapped_column(String(64), default="")

    @property
    def active(self) -> bool:
        """Whether the account may log in (an admin has not removed it)."""
        return self.removed_at is None


class LoginSession(Base):
    """A logged-in browser: only the SHA-256 of its token is kept."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    account: Mapped[Account] = relationship()


class AuditEvent(Base):
    """One line of the append-only audit log, chained to the previous one by SHA-256.

    The database refuses UPDATE and DELETE on this table (triggers in the migration).
    """

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    case_id: Mapped[int | None] = mapped_column(Integer, default=None)
    detail: Mapped[str] = mapped_column(Text, default="")
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


case_labels = Table(
    "case_labels",
    Base.metadata,
    Column("case_id", ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True),
)


class Label(Base):
    """A free-form tag responders put on cases."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)


class Case(Base):
    """Everything about one source: their reports, notes, replies and handling state."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    designation: Mapped[str] = mapped_column(String(80), unique=True)
    source_fingerprint: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(24), default=CaseStatus.NEW.value)
    category: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(16))
    reply_language: Mapped[str] = mapped_column(String(35), default="en")
    assignee_id: Mapped[int | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="SET NULL"), default=None
    )
    # The earliest clock start of its reports (see clocks.py), never a day's midnight.
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # When its first reply left in a reply bundle (not when it was queued).
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    unread: Mapped[bool] = mapped_column(Boolean, default=True)
    # A legal hold: never purged while set (retention.py); set and released with a reason.
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_reason: Mapped[str] = mapped_column(Text, default="")
    held_by: Mapped[str | None] = mapped_column(String(64), default=None)
    held_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)

    assignee: Mapped[Account | None] = relationship()
    reports: Mapped[list[Report]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Report.id"
    )
    notes: Mapped[list[Note]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="Note.id"
    )
    replies: Mapped[list[OutgoingReply]] = relationship(
        back_populates="case", cascade="all, delete-orphan", order_by="OutgoingReply.id"
    )
    labels: Mapped[list[Label]] = relationship(secondary=case_labels, order_by="Label.name")


class Report(Base):
    """One report a source sent, decrypted: the form's fields, as plain text.

    ``clock_start``: when its first-response clock started (the import, or the pull of its
    bundle when known; see clocks.py). ``follow_up``: a danger report that came after
    its case was answered or closed.
    """

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    received_day: Mapped[dt.date] = mapped_column(Date)
    imported_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    clock_start: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    follow_up: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(16))
    reply_language: Mapped[str] = mapped_column(String(35))
    wiki: Mapped[str] = mapped_column(Text, default="")
    links: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")
    # Where it happened (a ``vocabulary.Place`` value), which Wikimedia project, which
    # country or region, as the source wrote them; "" when not said (and in reports
    # imported before migration 0009).
    place: Mapped[str] = mapped_column(String(16), default="", server_default="")
    project: Mapped[str] = mapped_column(Text, default="", server_default="")
    region: Mapped[str] = mapped_column(Text, default="", server_default="")

    case: Mapped[Case] = relationship(back_populates="reports")
    submissions: Mapped[list[Submission]] = relationship(
        back_populates="report", cascade="all, delete-orphan", order_by="Submission.id"
    )


class Submission(Base):
    """One ciphertext the server sent (a report's message or a file), now decrypted.

    Its ``uuid`` is the server's; it goes back in a reply bundle as an acknowledgement.
    """

    __tablename__ = "submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255), default="")
    safe_name: Mapped[str | None] = mapped_column(String(80), default=None)
    size: Mapped[int] = mapped_column(Integer)
    # "" until its metadata has been read (in the sandbox, on first view).
    metadata_json: Mapped[str] = mapped_column(Text, default="")
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)
    # Chain of custody: the ciphertext's SHA-256 as the signed manifest gives it, the
    # plaintext's as decrypted here, and the bundle it came in (None before 0004).
    ciphertext_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    plaintext_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    imported_bundle_id: Mapped[int | None] = mapped_column(
        ForeignKey("imported_bundles.id", ondelete="SET NULL"), default=None
    )

    report: Mapped[Report] = relationship(back_populates="submissions")
    imported_bundle: Mapped[ImportedBundle | None] = relationship()


class Note(Base):
    """An internal note on a case; never leaves the workstation."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    text: Mapped[str] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="notes")


class ReplyBundle(Base):
    """A reply bundle written for the transfer machine to push to the server."""

    __tablename__ = "reply_bundles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    sequence: Mapped[int] = mapped_column(Integer, unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    replies: Mapped[int] = mapped_column(Integer)
    acknowledgements: Mapped[int] = mapped_column(Integer)


class OutgoingReply(Base):
    """A reply written in a case: its text for the team, its ciphertext for the source.

    Queued while ``bundle_id`` is empty, sent once in a reply bundle, delivered
    (``delivered_at``) once a later export bundle says the server received it.
    """

    __tablename__ = "outgoing_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    text: Mapped[str] = mapped_column(Text)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    bundle_id: Mapped[int | None] = mapped_column(
        ForeignKey("reply_bundles.id", ondelete="SET NULL"), default=None
    )
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, default=None)

    case: Mapped[Case] = relationship(back_populates="replies")
    bundle: Mapped[ReplyBundle | None] = relationship()


class ImportedBundle(Base):
    """An export bundle already imported: importing it again changes nothing."""

    __tablename__ = "imported_bundles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # The SHA-256 of its signed manifest (None before 0004).
    manifest_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    server_id: Mapped[str] = mapped_column(String(80))
    sequence: Mapped[int] = mapped_column(Integer)
    created_day: Mapped[dt.date | None] = mapped_column(Date, default=None)
    imported_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    imported_by: Mapped[str] = mapped_column(String(64))
    submissions: Mapped[int] = mapped_column(Integer)


class ServerAuditHead(Base):
    """A head of this workstation's audit chain that the drop server says it received in
    a reply bundle, as an export bundle showed it back (docs/bundles.md).

    ``found``: whether the log contained it when it arrived; :func:`audit.check_anchors`
    also checks again, without the network, that the log still contains it.
    """

    __tablename__ = "server_audit_heads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    server_id: Mapped[str] = mapped_column(String(40))
    sequence: Mapped[int] = mapped_column(Integer)
    day: Mapped[dt.date] = mapped_column(Date)
    head: Mapped[str] = mapped_column(String(64))
    found: Mapped[bool] = mapped_column(Boolean)
    export_sequence: Mapped[int] = mapped_column(Integer)


class MonthlyFigure(Base):
    """What purged cases leave behind for the transparency figures: a count per month
    opened, dimension and value (stats.py), never a case. Written in the transaction that
    deletes the case, so a case is counted either live or here, never both or neither."""

    __tablename__ = "monthly_figures"
    __table_args__ = (UniqueConstraint("month", "dimension", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    month: Mapped[str] = mapped_column(String(7))
    dimension: Mapped[str] = mapped_column(String(24))
    value: Mapped[str] = mapped_column(String(40))
    cases: Mapped[int] = mapped_column(Integer)


class Backup(Base):
    """A backup archive or a team key export written (securedrop_wm.workstation.backup):
    when, by whom, and to which backup key's fingerprint or "generated passphrase"."""

    __tablename__ = "backups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    # "archive" (a whole backup) or "team_key" (the team key's export).
    kind: Mapped[str] = mapped_column(String(16))
    protection: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))


class ReplyDraft(Base):
    """A reply not yet queued, kept for one account on one case: the text a reply form
    carried through a login after its session expired, or a withdrawn reply. Never sent
    by itself: its author reads it in the reply form and queues it, or discards it."""

    __tablename__ = "reply_drafts"
    __table_args__ = (UniqueConstraint("account_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    saved_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # Why it is a draft: "expired" (carried through a login) or "withdrawn".
    origin: Mapped[str] = mapped_column(String(16))


class ReplyTemplate(Base):
    """A reply text admins keep for the team, per language, offered in the reply form."""

    __tablename__ = "reply_templates"
    __table_args__ = (UniqueConstraint("name", "language"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    language: Mapped[str] = mapped_column(String(35))
    text: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class CaseRead(Base):
    """How far one account has read one case: the newest report it has seen. A case is
    unread for an account without a row, or with a newer report than ``last_report_id``
    (cases.py); "Mark unread" deletes the account's row."""

    __tablename__ = "case_reads"
    __table_args__ = (UniqueConstraint("account_id", "case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    last_report_id: Mapped[int] = mapped_column(Integer)
    read_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class HandoverNote(Base):
    """An internal note written on reassigning a case, and who it was handed to
    ("nobody" when the case was unassigned); the note itself is a :class:`Note`."""

    __tablename__ = "handover_notes"

    note_id: Mapped[int] = mapped_column(
        ForeignKey("notes.id", ondelete="CASCADE"), primary_key=True
    )
    assignee: Mapped[str] = mapped_column(String(64))
