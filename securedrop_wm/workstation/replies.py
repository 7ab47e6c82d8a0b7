"""Replies: written in a case, encrypted at once to the source's key and the team key,
queued, and exported in a reply bundle signed by the workstation key together with the
ids of every imported submission not yet acknowledged."""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from ..bundles.archive import write_reply_bundle
from ..bundles.errors import BundleError
from ..bundles.manifest import ReplyFile
from ..errors import CryptoError
from . import audit
from .cases import get_case
from .errors import ReplyError
from .models import Case, OutgoingReply, ReplyBundle, Submission
from .services import Workstation

MAX_REPLY_CHARS = 20_000


@dataclass(frozen=True)
class Outbox:
    """What the next reply bundle would hold."""

    replies: int
    acknowledgements: int


@dataclass(frozen=True)
class ExportedReplies:
    """A reply bundle just written."""

    path: Path
    sequence: int
    replies: int
    acknowledgements: int


def queue_reply(ws: Workstation, actor: str, case_id: int, text: str) -> str:
    """Encrypt a reply to the source's key and the team key and queue it; return its id.

    A queued reply answers nothing yet: the first response is when a reply leaves in a
    reply bundle (:func:`export_reply_bundle`; deadlines and statistics).
    :raises ReplyError: an empty or overlong reply.
    :raises CryptoError: a key is missing or has expired (the message says which).
    """
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise ReplyError("a reply cannot be empty")
    if len(text) > MAX_REPLY_CHARS:
        raise ReplyError(f"a reply may have at most {MAX_REPLY_CHARS} characters")
    team = ws.team_fingerprint()
    with ws.sessions() as db:
        case = get_case(db, case_id)
        recipients = [case.source_fingerprint, team]
    ws.gpg.require_encryption_keys(recipients)
    temp = ws.settings.outbox_dir / f".reply-{secrets.token_hex(16)}"
    try:
        ws.gpg.encrypt_bytes(text.encode("utf-8"), recipients, temp)
        ciphertext = temp.read_bytes()
    finally:
        temp.unlink(missing_ok=True)
    with ws.write() as db:
        case = get_case(db, case_id)
        now = ws.now()
        reply = OutgoingReply(case=case, author=actor, created_at=now, text=text)
        reply.ciphertext = ciphertext
        db.add(reply)
        case.updated_at = now
        db.flush()
        audit.record(db, now, actor, "reply.queue", case_id=case.id, detail=reply.uuid)
        return reply.uuid


def outbox(ws: Workstation) -> Outbox:
    """How many replies and acknowledgements wait for the next reply bundle."""
    with ws.sessions() as db:
        replies = db.scalar(
            select(func.count(OutgoingReply.id)).where(OutgoingReply.bundle_id.is_(None))
        )
        acks = db.scalar(
            select(func.count(Submission.id)).where(Submission.acknowledged_at.is_(None))
        )
    return Outbox(int(replies or 0), int(acks or 0))


def export_reply_bundle(
    ws: Workstation, actor: str, passphrase: str | None = None
) -> ExportedReplies:
    """Write the next reply bundle into the outbox folder and mark its contents sent;
    a case's first reply to leave is its first response.

    :param passphrase: of the workstation signing key, if it has one.
    :raises ReplyError: there is nothing to send.
    :raises CryptoError: signing failed (missing or locked signing key).
    """
    signing, server = ws.signing_fingerprint(), ws.server_fingerprint()
    settings = ws.settings
    work = settings.outbox_dir / f".export-{secrets.token_hex(8)}"
    work.mkdir(mode=0o700)
    output: Path | None = None
    try:
        with ws.write() as db:
            pending = db.execute(
                select(OutgoingReply, Case.source_uuid)
                .join(Case)
                .where(OutgoingReply.bundle_id.is_(None))
                .order_by(OutgoingReply.id)
            ).all()
            unacknowledged = list(
                db.scalars(select(Submission).where(Submission.acknowledged_at.is_(None)))
            )
            if not pending and not unacknowledged:
                raise ReplyError("there is nothing to send: no reply and no new submission")
            files = []
            for reply, source_uuid in pending:
                path = work / f"{reply.uuid}.gpg"
                path.write_bytes(reply.ciphertext)
                files.append(ReplyFile(reply.uuid, source_uuid, path))
            last = db.scalar(select(func.max(ReplyBundle.sequence)))
            sequence = int(last or 0) + 1
            output = settings.outbox_dir / f"replies-{sequence:06d}.tar"
            now = ws.now()
            # Recorded first: the bundle carries the chain's head, this very event, for
            # the drop server to keep and show back (docs/bundles.md, "audit heads").
            event = audit.record(
                db,
                now,
                actor,
                "replies.export",
                detail=f"bundle {sequence}: {len(files)} reply(ies), "
                f"{len(unacknowledged)} acknowledgement(s)",
            )
            try:
                write_reply_bundle(
                    ws.gpg,
                    signing,
                    server,
                    sequence,
                    files,
                    [s.uuid for s in unacknowledged],
                    output,
                    passphrase=passphrase,
                    today=now.date(),
                    audit_head=event.hash,
                )
            except (BundleError, CryptoError) as e:
                raise ReplyError(f"the reply bundle could not be written: {e}") from e
            record = ReplyBundle(
                sequence=sequence,
                created_at=now,
                created_by=actor,
                filename=output.name,
                replies=len(files),
                acknowledgements=len(unacknowledged),
            )
            db.add(record)
            db.flush()
            for reply, _ in pending:
                reply.bundle_id = record.id
                if reply.case.first_response_at is None:
                    reply.case.first_response_at = now
            for submission in unacknowledged:
                submission.acknowledged_at = now
    except BaseException:
        if output is not None:
            output.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportedReplies(output, sequence, len(files), len(unacknowledged))


def reply_bundles(ws: Workstation) -> list[ReplyBundle]:
    """Reply bundles written so far, newest first."""
    with ws.sessions() as db:
        return list(db.scalars(select(ReplyBundle).order_by(ReplyBundle.sequence.desc())))


def bundle_path(ws: Workstation, sequence: int) -> Path:
    """The file of reply bundle ``sequence`` in the outbox.

    :raises ReplyError: no such bundle, or its file was moved away.
    """
    with ws.sessions() as db:
        record = db.scalar(select(ReplyBundle).where(ReplyBundle.sequence == sequence))
    if record is None:
        raise ReplyError(f"there is no reply bundle {sequence}")
    path = ws.settings.outbox_dir / record.filename
    if not path.is_file():
        raise ReplyError(f"reply bundle {sequence} is no longer in the outbox folder")
    return path
