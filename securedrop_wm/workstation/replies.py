"""Replies: written in a case, encrypted at once to the source's key and the team key,
queued, and exported in a reply bundle signed by the workstation key together with the
ids of every imported submission not yet acknowledged.

A queued reply can be withdrawn until a reply bundle takes it (:func:`withdraw_reply`);
its text comes back as its author's draft. A draft (:class:`ReplyDraft`) is never sent
by itself: its author sees it in the reply form, edits and queues it, or discards it.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..bundles.archive import write_reply_bundle
from ..bundles.errors import BundleError
from ..bundles.manifest import ReplyFile
from ..errors import CryptoError
from . import audit
from .cases import get_case
from .errors import ReplyError
from .models import Account, Case, OutgoingReply, ReplyBundle, ReplyDraft, Submission
from .services import Workstation

MAX_REPLY_CHARS = 20_000
# Where a draft came from: typed into a session that expired (carried through the next
# login), a queued reply withdrawn, a reply template put into the form, or a reply that
# could not be queued (a key missing or expired: the text is not lost).
DRAFT_ORIGINS = ("expired", "withdrawn", "template", "unsent")
# What the reply flows raise; the web layer shows each in the user's language.
EMPTY_REPLY = "a reply cannot be empty"
LONG_REPLY = f"a reply may have at most {MAX_REPLY_CHARS} characters"
NO_QUEUED_REPLY = "there is no such queued reply in this case"
REPLY_LEFT = "this reply has left in a reply bundle: it can no longer be withdrawn"


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
    text = _clean(text)
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
        # The author's draft on this case is what was just queued.
        account_id = db.scalar(select(Account.id).where(Account.username == actor))
        if account_id is not None:
            db.execute(
                delete(ReplyDraft).where(
                    ReplyDraft.account_id == account_id, ReplyDraft.case_id == case.id
                )
            )
        return reply.uuid


def _clean(text: str) -> str:
    """A reply's text with its line ends made plain and its ends trimmed.

    :raises ReplyError: empty or overlong.
    """
    text = text.replace("\r\n", "\n").strip()
    if not text:
        raise ReplyError(EMPTY_REPLY)
    if len(text) > MAX_REPLY_CHARS:
        raise ReplyError(LONG_REPLY)
    return text


def withdraw_reply(ws: Workstation, actor: Account, case_id: int, reply_uuid: str) -> None:
    """Take a queued reply out of the queue before any reply bundle holds it; its text
    becomes the actor's draft on the case (added below a draft already there).

    :raises ReplyError: no such queued reply in this case, or it has left already.
    """
    with ws.write() as db:
        reply = db.scalar(
            select(OutgoingReply).where(
                OutgoingReply.uuid == reply_uuid, OutgoingReply.case_id == case_id
            )
        )
        if reply is None:
            raise ReplyError(NO_QUEUED_REPLY)
        if reply.bundle_id is not None:
            raise ReplyError(REPLY_LEFT)
        text = reply.text
        db.delete(reply)
        now = ws.now()
        _keep_draft(db, now, actor.id, case_id, text, "withdrawn", append=True)
        audit.record(db, now, actor.username, "reply.withdraw", case_id=case_id, detail=reply_uuid)


def save_draft(
    ws: Workstation, actor: Account, case_id: int, text: str, origin: str, *, append: bool = False
) -> None:
    """Keep ``text`` as the actor's draft reply on the case (replacing the one there, or
    below it with ``append``). Audited, without the text.

    :raises ReplyError: an empty or overlong text, or an unknown origin.
    :raises CaseNotFoundError: no such case.
    """
    if origin not in DRAFT_ORIGINS:
        raise ReplyError(f"unknown draft origin {origin!r}")
    text = _clean(text)
    with ws.write() as db:
        case = get_case(db, case_id)
        now = ws.now()
        _keep_draft(db, now, actor.id, case.id, text, origin, append=append)
        audit.record(db, now, actor.username, "reply.draft", case_id=case.id, detail=origin)


def _keep_draft(
    db: Session,
    now: dt.datetime,
    account_id: int,
    case_id: int,
    text: str,
    origin: str,
    *,
    append: bool,
) -> None:
    draft = db.scalar(
        select(ReplyDraft).where(ReplyDraft.account_id == account_id, ReplyDraft.case_id == case_id)
    )
    if draft is None:
        db.add(
            ReplyDraft(
                account_id=account_id, case_id=case_id, text=text, saved_at=now, origin=origin
            )
        )
        return
    draft.text = f"{draft.text}\n\n{text}" if append else text
    draft.text = draft.text[:MAX_REPLY_CHARS]
    draft.saved_at, draft.origin = now, origin


def draft_of(ws: Workstation, account_id: int, case_id: int) -> ReplyDraft | None:
    """The account's draft reply on the case, if it has one."""
    with ws.sessions() as db:
        return db.scalar(
            select(ReplyDraft).where(
                ReplyDraft.account_id == account_id, ReplyDraft.case_id == case_id
            )
        )


def discard_draft(ws: Workstation, actor: Account, case_id: int) -> bool:
    """Throw the actor's draft on the case away; whether there was one."""
    with ws.write() as db:
        gone = db.execute(
            delete(ReplyDraft).where(
                ReplyDraft.account_id == actor.id, ReplyDraft.case_id == case_id
            )
        )
        if not getattr(gone, "rowcount", 0):
            return False
        audit.record(
            db, ws.now(), actor.username, "reply.draft", case_id=case_id, detail="discarded"
        )
    return True


def queued_replies(ws: Workstation, case_id: int) -> list[OutgoingReply]:
    """The case's replies still waiting for a reply bundle (these can be withdrawn)."""
    with ws.sessions() as db:
        query = (
            select(OutgoingReply)
            .where(OutgoingReply.case_id == case_id, OutgoingReply.bundle_id.is_(None))
            .order_by(OutgoingReply.id)
        )
        return list(db.scalars(query))


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
