"""What a source can do: get a codename, report, log in again, read and delete replies.

Functions here take a :class:`~securedrop_wm.drop.Drop` and plain values, and raise
errors from :mod:`securedrop_wm.errors`; they know nothing of HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from .codenames import Codename, generate_designation
from .crypto import EncryptingWriter
from .desks import central_desk, check_route, desk_by_id, only_desk, recipients
from .drop import Drop
from .errors import (
    EmptyReportError,
    FileNameError,
    KeyMissingError,
    ReportError,
    ReportTooLargeError,
    SecureDropError,
    SourceNotFoundError,
    SourceRemovedError,
    UnknownDeskError,
)
from .filenames import hidden_characters
from .kdf import SourceId, SourcePassphrase, derive
from .models import Reply, Report, Source, SourceTombstone, Submission, SubmissionDesk
from .receipts import Receipt, SentFile, newest_sealed, open_receipt, seal_receipt
from .transfer import count_arrival
from .vocabulary import Category, Place, Urgency

MESSAGE_SCHEMA = 1
MAX_TEXT_CHARS = 100_000
MAX_SHORT_CHARS = 500
MAX_LINKS_CHARS = 20_000
MAX_FILENAME_CHARS = 255


class SourceCollisionError(SecureDropError):
    """Raised when a new codename derives to an existing source (astronomically rare)."""


@dataclass(frozen=True)
class SourceLogin:
    """What a logged-in source's session holds: derived values, never the codename."""

    source_id: SourceId
    passphrase: SourcePassphrase


@dataclass(frozen=True)
class ReportFields:
    """The form fields of a report, before encryption."""

    category: str
    what_happened: str
    urgency: str = Urgency.ROUTINE
    wiki: str = ""
    links: str = ""
    reply_language: str = "en"
    # Where it happened (a ``vocabulary.Place`` value, or "" when not said), which
    # Wikimedia project and language (free text, e.g. "fa.wikipedia"), and the country or
    # region (free text; "" when the source prefers not to say).
    place: str = ""
    project: str = ""
    region: str = ""


@dataclass
class PendingFile:
    """An attached file being encrypted as it arrives."""

    filename: str
    writer: EncryptingWriter
    submission_uuid: str = field(default="")
    # The desks it is encrypted to (desks.py): the report's must be the same.
    desks: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportReceipt:
    """What the source is told after a report is stored."""

    report_uuid: str
    files: int
    urgent: bool
    danger: bool


@dataclass(frozen=True)
class ReplyText:
    """A reply, decrypted for the source on the fly."""

    uuid: str
    text: str
    day: str


def create_source(drop: Drop, codename: Codename) -> SourceLogin:
    """Register a new source for ``codename``: derive its secrets, create its key.

    :raises SourceCollisionError: if the codename's lookup id is taken.
    """
    derived = derive(codename, drop.peppers, drop.settings.kdf)
    # A keybox of its own (crypto.py): adding a source costs the same at 10 or 10,000.
    fingerprint = drop.gpg.create_key(
        "securedrop-wm source",
        derived.passphrase,
        drop.settings.source_key_expiry_days,
        own_keybox=True,
    )
    try:
        with drop.sessions.begin() as db:
            db.add(
                Source(
                    lookup_id=derived.source_id,
                    designation=_unique_designation(drop),
                    key_fingerprint=fingerprint,
                    created_day=drop.today(),
                )
            )
    except IntegrityError:
        drop.gpg.delete_key(fingerprint, derived.passphrase)
        raise SourceCollisionError("this codename is already in use") from None
    return SourceLogin(derived.source_id, derived.passphrase)


def login_source(drop: Drop, codename: Codename) -> SourceLogin:
    """Find the source of ``codename``.

    :raises SourceRemovedError: the source of this codename was removed by the retention
        rules (retention.py); a subclass of :class:`SourceNotFoundError`.
    :raises SourceNotFoundError: no source has this codename.
    """
    derived = derive(codename, drop.peppers, drop.settings.kdf)
    with drop.sessions() as db:
        found = db.scalar(select(Source.id).where(Source.lookup_id == derived.source_id))
        removed = found is None and (
            db.scalar(
                select(SourceTombstone.id).where(SourceTombstone.lookup_id == derived.source_id)
            )
            is not None
        )
    if removed:
        raise SourceRemovedError("the data of this codename's source was removed")
    if found is None:
        raise SourceNotFoundError("no source has this codename")
    return SourceLogin(derived.source_id, derived.passphrase)


def source_exists(drop: Drop, source_id: SourceId) -> bool:
    """Whether the source behind a session still exists."""
    with drop.sessions() as db:
        return db.scalar(select(Source.id).where(Source.lookup_id == source_id)) is not None


def start_file(drop: Drop, filename: str, desks: Sequence[str] | None = None) -> PendingFile:
    """Begin encrypting an attached file as its bytes arrive, to the keys of ``desks``
    (the ids the report goes to, as ``desks.route`` gives them; None: the only desk).

    :raises FileNameError: when the name is unacceptable (length, control characters,
        path parts).
    :raises UnknownDeskError: a desk is not configured, or None on a drop with several.
    """
    name = check_filename(filename)
    ids = check_route(drop.settings, desks)
    temp = drop.store.new_temp_path()
    writer = drop.gpg.start_encryption(list(recipients(drop.settings, ids)), temp)
    return PendingFile(name, writer, desks=ids)


def check_filename(filename: str) -> str:
    """Return ``filename`` if it is a plain name; refuse path parts, control characters
    and characters that hide or reorder others (bidi overrides, zero-width spaces).

    :raises FileNameError: whose ``reason`` (``"length"``, ``"control"`` or ``"path"``)
        a UI can tell the source in their language.
    """
    if not filename or len(filename) > MAX_FILENAME_CHARS:
        raise FileNameError(
            "length", f"a file name must have between 1 and {MAX_FILENAME_CHARS} characters"
        )
    # Controls, bidi overrides, zero-width and other invisible characters: a name that
    # reads as another (``report\u202efdp.exe`` shows as ``reportexe.pdf``).
    if hidden_characters(filename):
        raise FileNameError("control", "a file name must not contain control characters")
    if "/" in filename or "\\" in filename or filename in (".", ".."):
        raise FileNameError("path", "a file name must not contain a folder path")
    return filename


def abort_files(files: Sequence[PendingFile]) -> None:
    """Discard files whose report will not be stored."""
    for f in files:
        f.writer.abort()


def validate_fields(fields: ReportFields) -> None:
    """Check a report's fields.

    :raises ReportError: naming the field that is wrong.
    """
    if not Category.has(fields.category):
        raise ReportError("choose a category")
    if not Urgency.has(fields.urgency):
        raise ReportError("choose how urgent this is")
    if len(fields.what_happened) > MAX_TEXT_CHARS:
        raise ReportError(f"the description is longer than {MAX_TEXT_CHARS} characters")
    if fields.place and not Place.has(fields.place):
        raise ReportError("choose where it happened")
    short = (fields.wiki, fields.project, fields.region)
    if any(len(x) > MAX_SHORT_CHARS for x in short) or len(fields.reply_language) > 35:
        raise ReportError("a short field is too long")
    if len(fields.links) > MAX_LINKS_CHARS:
        raise ReportError(f"the links are longer than {MAX_LINKS_CHARS} characters")


def submit_report(
    drop: Drop,
    login: SourceLogin,
    fields: ReportFields,
    files: Sequence[PendingFile],
    *,
    follow_up: bool = False,
    desks: Sequence[str] | None = None,
) -> ReportReceipt:
    """Store a report: its fields as one encrypted message, each file as a ciphertext,
    and a receipt of what was sent encrypted to the source's own key (receipts.py).
    ``follow_up``: sent without the report form (marked so in the message).
    ``desks``: the desk ids it goes to (``desks.route``); None: the only desk for a new
    report, the desks of the source's previous report for a follow-up (or for any report
    of a source who filed one before; read from their receipts, :func:`follow_up_desks`).
    The files must have been encrypted to the same desks (``start_file``).

    All or nothing: on any error every file of the report is removed and no row remains.

    :raises ReportError: (or a subclass) for a report that is refused.
    :raises StoreFullError: when the disk is full.
    """
    committed: list[str] = []
    try:
        validate_fields(fields)
        if not fields.what_happened.strip() and not files:
            raise EmptyReportError("write what happened or attach a file")
        if desks is not None:
            ids = check_route(drop.settings, desks)
        elif only_desk(drop.settings) is not None or not (follow_up or _has_reported(drop, login)):
            ids = check_route(drop.settings, None)
        else:
            ids = follow_up_desks(drop, login)
        if any(f.desks != ids for f in files):
            raise UnknownDeskError("the files were encrypted for other desks than the report")
        for f in files:
            f.writer.close()
        total = sum(f.writer.size for f in files)
        if total > drop.settings.max_report_bytes:
            raise ReportTooLargeError("the files are larger than this drop accepts")
        with drop.sessions.begin() as db:
            source = db.scalar(select(Source).where(Source.lookup_id == login.source_id))
            if source is None:
                raise SourceNotFoundError("no source has this codename")
            level = Urgency(fields.urgency)
            report = Report(source=source, created_day=drop.today(), urgency=level)
            source.last_report_day = report.created_day
            for f in files:
                name = drop.store.commit(f.writer.output)
                committed.append(name)
                sub = Submission(report=report, kind="file", store_name=name, size=f.writer.size)
                sub.desks = [SubmissionDesk(desk=d) for d in ids]
                db.add(sub)
                db.flush()
                f.submission_uuid = sub.uuid
            message = _encode_message(fields, files, follow_up)
            report.receipt = seal_receipt(
                drop,
                source.key_fingerprint,
                Receipt(
                    day=report.created_day.isoformat(),
                    category=fields.category,
                    urgency=level.value,
                    follow_up=follow_up,
                    has_text=bool(fields.what_happened.strip()),
                    files=tuple(SentFile(f.filename, f.writer.size) for f in files),
                    desks=ids,
                ),
            )
            temp = drop.store.new_temp_path()
            drop.gpg.encrypt_bytes(message, list(recipients(drop.settings, ids)), temp)
            name = drop.store.commit(temp)
            committed.append(name)
            db.add(
                Submission(
                    report=report,
                    kind="message",
                    store_name=name,
                    size=len(message),
                    desks=[SubmissionDesk(desk=d) for d in ids],
                )
            )
            for desk_id in ids:
                count_arrival(db, level, desk_id)
            db.flush()
            receipt = ReportReceipt(
                report.uuid, len(files), level != Urgency.ROUTINE, level == Urgency.DANGER
            )
    except BaseException:
        abort_files(files)
        for name in committed:
            drop.store.delete(name)
        raise
    return receipt


def _has_reported(drop: Drop, login: SourceLogin) -> bool:
    with drop.sessions() as db:
        return (
            db.scalar(
                select(Report.id).join(Source).where(Source.lookup_id == login.source_id).limit(1)
            )
            is not None
        )


def follow_up_desks(drop: Drop, login: SourceLogin) -> tuple[str, ...]:
    """The desks a follow-up goes to: those of the source's newest report whose receipt
    names them (the receipt is encrypted to the source's key; the server's database
    forgets a report's desks once it is acknowledged). Desks no longer configured are
    left out; when none is left (or the reports predate desks): the only desk, else the
    central desk, else the first.
    """
    settings = drop.settings
    single = only_desk(settings)
    if single is not None:
        return (single.id,)
    rows = newest_sealed(drop, login.source_id, 20)
    configured = {d.id for d in settings.desks}
    try:
        for sealed, fingerprint in rows:
            receipt = open_receipt(drop, fingerprint, login.passphrase, sealed)
            if receipt is None or not receipt.desks:
                continue
            kept = tuple(sorted(d for d in receipt.desks if d in configured))
            if kept:
                return kept
            break
    finally:
        drop.store.settle()  # the receipts' temporary files came and went
    fallback = central_desk(settings) or settings.desks[0]
    return (fallback.id,)


def list_replies(drop: Drop, login: SourceLogin) -> list[ReplyText]:
    """Decrypt the source's replies with their key, oldest first, in memory only."""
    with drop.sessions() as db:
        rows = db.execute(
            select(Reply, Source.key_fingerprint)
            .join(Source)
            .where(Source.lookup_id == login.source_id)
            .order_by(Reply.id)
        ).all()
    out = []
    for reply, fingerprint in rows:
        path = drop.store.path(reply.store_name)
        data = drop.gpg.decrypt_file(path, login.passphrase, keys=[fingerprint])
        text = data.decode("utf-8", "replace")
        out.append(ReplyText(reply.uuid, text, reply.created_day.isoformat()))
    return out


def reply_day(drop: Drop, login: SourceLogin, reply_uuid: str) -> str | None:
    """The day of one of the source's replies (ISO), or None if they have no such reply."""
    with drop.sessions() as db:
        day = db.scalar(
            select(Reply.created_day)
            .join(Source)
            .where(Source.lookup_id == login.source_id, Reply.uuid == reply_uuid)
        )
    return None if day is None else day.isoformat()


def delete_reply(drop: Drop, login: SourceLogin, reply_uuid: str) -> bool:
    """Delete one of the source's replies for real: file overwritten, row gone.

    :returns: whether a reply was deleted.
    """
    with drop.sessions.begin() as db:
        reply = db.scalar(
            select(Reply)
            .join(Source)
            .where(Source.lookup_id == login.source_id, Reply.uuid == reply_uuid)
        )
        if reply is None:
            return False
        name = reply.store_name
        db.delete(reply)
    drop.store.delete(name)
    return True


def add_reply(drop: Drop, designation: str, text: str, desk: str | None = None) -> str:
    """Encrypt ``text`` to the source's key and the replying desk's team key and store
    it as a reply. ``desk``: the replying desk's id (None: the only desk).

    Used by the CLI until replies arrive in bundles from the workstation.
    :raises SourceNotFoundError: no source has this designation.
    :raises UnknownDeskError: no such desk, or none named on a drop with several.
    """
    with drop.sessions() as db:
        source = db.scalar(select(Source).where(Source.designation == designation))
    if source is None:
        raise SourceNotFoundError(f"no source is designated {designation!r}")
    replying = only_desk(drop.settings) if desk is None else desk_by_id(drop.settings, desk)
    if replying is None:
        raise UnknownDeskError("name the desk that replies (--desk)")
    team = replying.team_fingerprint
    if not team:  # only a server opened for key administration lacks it
        raise KeyMissingError("no team key is registered: run `securedrop-wm team-key set FILE`")
    recipients = [source.key_fingerprint, team]
    temp = drop.store.new_temp_path()
    drop.gpg.encrypt_bytes(text.encode("utf-8"), recipients, temp)
    name = drop.store.commit(temp)
    try:
        with drop.sessions.begin() as db:
            reply = Reply(
                source_id=source.id,
                store_name=name,
                size=drop.store.size(name),
                created_day=drop.today(),
            )
            db.add(reply)
            db.flush()
            return reply.uuid
    except BaseException:
        drop.store.delete(name)
        raise


def _encode_message(
    fields: ReportFields, files: Sequence[PendingFile], follow_up: bool = False
) -> bytes:
    body: dict[str, object] = {
        "schema": MESSAGE_SCHEMA,
        **asdict(fields),
        "files": [
            {"submission": f.submission_uuid, "name": f.filename, "size": f.writer.size}
            for f in files
        ],
    }
    if follow_up:
        # Sent with the short form, without choosing a category (conversation.py): the
        # category is the source's previous report's. Schema 1 readers ignore the key.
        body["follow_up"] = True
    return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")


def _unique_designation(drop: Drop) -> str:
    with drop.sessions() as db:
        for _ in range(20):
            candidate = generate_designation()
            if db.scalar(select(Source.id).where(Source.designation == candidate)) is None:
                return candidate
    raise SourceCollisionError("could not find a free designation")
