"""The drop server's side of bundles: export, reply import and purge, in its database.

Each desk (desks.py) has its own workstation: an export holds only what is pending for
that desk, a reply bundle is verified against that desk's pinned workstation key, and
its acknowledgements clear only that desk's routing rows (an id of another desk's item
counts as unknown, as an id of nothing does). A ciphertext is acknowledged, and purged in
time, once every desk it went to has acknowledged it.

The workstation never imports this module: it holds the server's models and ``Drop``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from ..desks import BUILTIN_ID, Desk, desk_by_id, only_desk, stored_ids
from ..drop import Drop
from ..errors import UnknownDeskError
from ..models import BundleRecord, Reply, Report, Source, Submission, SubmissionDesk
from ..vocabulary import Urgency
from .archive import (
    Progress,
    VerifiedReplies,
    _hash_file,
    _write_bundle,
    check_replay,
    verify_reply_bundle,
)
from .errors import BundleError, ReplayError, UnknownSignerError
from .kept import (
    EXPORT,
    IMPORT,
    export_audit_heads,
    export_replies_received,
    keep_reply_ids,
)
from .latest import (
    _exports_dir,
    _exports_lock,
    _last_names,
    _pending_key,
    _read_meta,
    _write_meta,
    forget_last_export,
)
from .manifest import (
    EXPORT_SCHEMA_VERSION,
    REPLY_LIMITS,
    ExportItem,
    ExportManifest,
    Limits,
    SourceEntry,
    _export_json,
)

__all__ = [
    "EXPORT",
    "IMPORT",
    "LatestExport",
    "ReplyImport",
    "export_bundle",
    "forget_last_export",
    "import_reply_bundle",
    "latest_export",
    "purge_acknowledged",
]


@dataclass(frozen=True)
class ReplyImport:
    """What importing a reply bundle did on the server."""

    sequence: int
    already_imported: bool
    replies_stored: int = 0
    replies_skipped: int = 0
    acknowledged: int = 0
    acknowledged_unknown: int = 0
    purged: int = 0
    # The head of the workstation's audit chain the bundle carried, now kept here.
    audit_head: str | None = None


# -- server side ----------------------------------------------------------------------


def export_bundle(
    drop: Drop, output: Path, progress: Progress | None = None, desk: str | None = None
) -> ExportManifest:
    """Write the next export bundle of ``desk`` (None: the only desk): every submission
    that desk has not acknowledged yet, signed.

    :raises BundleError: the bundle could not be written (or the desk is not
        configured); no output is left behind.
    """
    server_id = drop.settings.signing_fingerprint
    chosen = _desk(drop, desk)
    if not output.parent.is_dir():
        raise BundleError(f"cannot write the bundle: there is no folder {output.parent}")
    with _store_lock(drop, exclusive=False):
        return _export(drop, output, server_id, progress, chosen)


def _desk(drop: Drop, desk: str | None) -> Desk:
    """The desk ``desk``, or the only one.

    :raises BundleError: no such desk, or none named on a drop with several.
    """
    try:
        if desk is not None:
            return desk_by_id(drop.settings, desk)
    except UnknownDeskError:
        raise BundleError(f"no desk is named {desk!r}") from None
    single = only_desk(drop.settings)
    if single is None:
        known = ", ".join(d.id for d in drop.settings.desks)
        raise BundleError(f"name the desk (--desk, one of: {known})")
    return single


@dataclass(frozen=True)
class LatestExport:
    """The export bundle to hand the transfer machine, open for reading."""

    file: IO[bytes]
    sequence: int
    items: int
    reused: bool


def latest_export(drop: Drop, desk: str | None = None) -> LatestExport:
    """The export bundle of what is pending now: the last one written, when nothing
    changed since (same sequence, same file), else a new one that replaces it.

    Without this, every request for an export took a sequence number and wrote a full
    copy of the pending ciphertext: a poller filled the disk and the sequence. One bundle
    is kept, in ``exports/`` of the data dir; a purge removes it (:func:`purge_acknowledged`).

    :raises BundleError: no bundle could be written; nothing is left behind.
    """
    server_id = drop.settings.signing_fingerprint
    chosen = _desk(drop, desk)
    last_name, meta_name = _last_names(chosen)
    folder = _exports_dir(drop)
    with _exports_lock(folder), _store_lock(drop, exclusive=False):
        rows = _pending_rows(drop, chosen)
        key = _pending_key(
            server_id,
            rows,
            export_audit_heads(drop, chosen.workstation_fingerprint),
            export_replies_received(drop, chosen.workstation_fingerprint),
        )
        last = folder / last_name
        meta = _read_meta(folder / meta_name)
        # Reused only if it is still the newest export: one written since (by the CLI's
        # `export`) may have reached the workstation, which then refuses an older one.
        if (
            meta is not None
            and meta.get("key") == key
            and meta.get("sequence") == _last_export_sequence(drop, server_id, chosen)
        ):
            with contextlib.suppress(OSError):
                f = last.open("rb")
                return LatestExport(f, int(meta["sequence"]), int(meta["items"]), reused=True)
        temp = folder / f".new-{secrets.token_hex(16)}.tar"
        try:
            manifest = _export(drop, temp, server_id, None, chosen, rows)
            f = temp.open("rb")
            (folder / meta_name).unlink(missing_ok=True)
            os.replace(temp, last)
            _write_meta(folder / meta_name, key, manifest)
        except OSError as e:
            raise BundleError(f"the export bundle could not be kept: {e.strerror}") from e
        finally:
            temp.unlink(missing_ok=True)
    return LatestExport(f, manifest.sequence, len(manifest.items), reused=False)


def _pending_rows(drop: Drop, desk: Desk) -> Sequence[Any]:
    """What ``desk`` has not acknowledged: the submissions with a routing row of its."""
    routed = select(SubmissionDesk.submission_id).where(
        SubmissionDesk.desk.in_(stored_ids(drop.settings, desk.id))
    )
    with drop.sessions() as db:
        return db.execute(
            select(Submission, Report, Source)
            .join(Report, Submission.report_id == Report.id)
            .join(Source, Report.source_id == Source.id)
            .where(Submission.acknowledged_day.is_(None), Submission.id.in_(routed))
            .order_by(Report.id, Submission.id)
        ).all()


def _export(
    drop: Drop,
    output: Path,
    server_id: str,
    progress: Progress | None,
    desk: Desk,
    rows: Sequence[Any] | None = None,
) -> ExportManifest:
    if rows is None:
        rows = _pending_rows(drop, desk)
    sequence = _next_export_sequence(drop, server_id, desk)
    members: list[tuple[str, Path, int]] = []
    sources: dict[str, SourceEntry] = {}
    items = []
    with tempfile.TemporaryDirectory(prefix=".export-", dir=output.parent) as tmp:
        for sub, report, source in rows:
            if source.uuid not in sources:
                key_path = Path(tmp) / f"{source.uuid}.asc"
                key_path.write_text(drop.gpg.export_public_key(source.key_fingerprint))
                size, sha = _hash_file(key_path)
                entry = SourceEntry(
                    source.uuid,
                    source.designation,
                    source.key_fingerprint,
                    source.created_day,
                    size,
                    sha,
                )
                sources[source.uuid] = entry
                members.append((entry.member, key_path, size))
            path = drop.store.path(sub.store_name)
            size, sha = _hash_file(path)
            item = ExportItem(
                sub.uuid,
                sub.kind,
                report.uuid,
                source.uuid,
                report.created_day,
                report.urgency in (Urgency.URGENT, Urgency.DANGER),
                size,
                sha,
            )
            items.append(item)
            members.append((item.member, path, size))
        manifest = ExportManifest(
            schema=EXPORT_SCHEMA_VERSION,
            server_id=server_id,
            sequence=sequence,
            created_day=drop.today(),
            sources=tuple(sources.values()),
            items=tuple(items),
            audit_heads=export_audit_heads(drop, desk.workstation_fingerprint),
            replies_received=export_replies_received(drop, desk.workstation_fingerprint),
        )
        signer = drop.signing_gpg()
        _write_bundle(signer, server_id, None, _export_json(manifest), members, output, progress)
    return manifest


def _last_export_sequence(drop: Drop, server_id: str, desk: Desk) -> int | None:
    with drop.sessions() as db:
        return db.scalar(
            select(func.max(BundleRecord.sequence)).where(
                BundleRecord.direction == EXPORT,
                BundleRecord.peer == server_id,
                BundleRecord.desk.in_(stored_ids(drop.settings, desk.id)),
            )
        )


def _next_export_sequence(drop: Drop, server_id: str, desk: Desk) -> int:
    """Take the next export sequence number in a short transaction of its own.

    Each desk has its own sequence (its workstation sees no other desk's bundles).
    Gaps (an export that then failed) are allowed; repeats are not. The bundle itself is
    written outside the transaction so that sources are never kept waiting by an export.
    """
    for _ in range(10):
        try:
            with drop.sessions.begin() as db:
                last = db.scalar(
                    select(func.max(BundleRecord.sequence)).where(
                        BundleRecord.direction == EXPORT,
                        BundleRecord.peer == server_id,
                        BundleRecord.desk.in_(stored_ids(drop.settings, desk.id)),
                    )
                )
                sequence = (last or 0) + 1
                db.add(
                    BundleRecord(
                        direction=EXPORT,
                        peer=server_id,
                        desk=desk.id,
                        sequence=sequence,
                        day=drop.today(),
                    )
                )
            return sequence
        except (IntegrityError, OperationalError):
            continue
    raise BundleError("could not take an export sequence number (database busy); try again")


def import_reply_bundle(
    drop: Drop,
    path: Path,
    limits: Limits = REPLY_LIMITS,
    progress: Progress | None = None,
    desk: str | None = None,
) -> ReplyImport:
    """Verify a reply bundle from the pinned workstation of ``desk`` (None: the only
    desk), then import it all or nothing.

    Stores the replies, clears that desk's routing of the acknowledged submissions
    (acknowledged once every desk they went to has; a report when all of its are), then
    purges the acknowledged ciphertext that is due.

    :raises BundleError: (a subclass saying why); nothing was imported.
    """
    chosen = _desk(drop, desk)
    pinned = chosen.workstation_fingerprint
    if pinned is None:
        raise UnknownSignerError(
            "no workstation key is registered: run `securedrop-wm workstation-key set FILE` "
            "with the workstation's public key"
            + ("" if chosen.id == BUILTIN_ID else f" (desk set-key {chosen.id})")
        )
    tmp_root = drop.settings.data_dir / "tmp"
    tmp_root.mkdir(mode=0o700, exist_ok=True)
    with verify_reply_bundle(
        path, drop.gpg, pinned, drop.settings.signing_fingerprint, tmp_root, limits, progress
    ) as verified:
        try:
            result = _import_verified(drop, pinned, chosen, verified)
        except IntegrityError:
            raise ReplayError(
                "another import of this bundle ran at the same time; nothing changed here"
            ) from None
        except OperationalError:
            raise BundleError("the database is busy; nothing was imported, try again") from None
    if result.already_imported:
        return result
    if result.acknowledged:
        # Its kept export holds what the desk no longer waits for.
        forget_last_export(drop, chosen.id)
    purged = purge_acknowledged(drop)
    return dataclasses.replace(result, purged=purged)


def _import_verified(drop: Drop, pinned: str, desk: Desk, verified: VerifiedReplies) -> ReplyImport:
    m = verified.manifest
    today = drop.today()
    committed: list[str] = []
    try:
        with drop.sessions.begin() as db:
            seen = db.scalar(
                select(BundleRecord.id).where(
                    BundleRecord.manifest_sha256 == verified.manifest_sha256
                )
            )
            last = db.scalar(
                select(func.max(BundleRecord.sequence)).where(
                    BundleRecord.direction == IMPORT,
                    BundleRecord.peer == pinned,
                    BundleRecord.desk.in_(stored_ids(drop.settings, desk.id)),
                )
            )
            hashes = {verified.manifest_sha256} if seen is not None else set()
            if check_replay(verified.manifest_sha256, m.sequence, last, hashes):
                return ReplyImport(sequence=m.sequence, already_imported=True)
            record = BundleRecord(
                direction=IMPORT,
                peer=pinned,
                desk=desk.id,
                sequence=m.sequence,
                manifest_sha256=verified.manifest_sha256,
                day=today,
                audit_head=m.audit_head,
            )
            db.add(record)
            keep_reply_ids(db, record, [r.id for r in m.replies])
            source_ids = {r.source_id for r in m.replies}
            sources = {
                s.uuid: s
                for chunk in _chunks(sorted(source_ids))
                for s in db.scalars(select(Source).where(Source.uuid.in_(chunk)))
            }
            existing = {
                u
                for chunk in _chunks([r.id for r in m.replies])
                for u in db.scalars(select(Reply.uuid).where(Reply.uuid.in_(chunk)))
            }
            stored = skipped = 0
            for entry in m.replies:
                source = sources.get(entry.source_id)
                if source is None or entry.id in existing:
                    skipped += 1
                    continue
                temp = drop.store.new_temp_path()
                shutil.move(verified.reply_path(entry.id), temp)
                name = drop.store.commit(temp)
                committed.append(name)
                db.add(
                    Reply(
                        uuid=entry.id,
                        source=source,
                        store_name=name,
                        size=entry.size,
                        created_day=today,
                        origin="bundle",
                    )
                )
                stored += 1
            acked, found = _acknowledge(
                db, m.acknowledged, today, stored_ids(drop.settings, desk.id)
            )
    except BaseException:
        for name in committed:
            drop.store.delete(name)
        raise
    return ReplyImport(
        sequence=m.sequence,
        already_imported=False,
        replies_stored=stored,
        replies_skipped=skipped,
        acknowledged=acked,
        acknowledged_unknown=len(m.acknowledged) - found,
        audit_head=m.audit_head,
    )


def _acknowledge(
    db: Any, ids: Sequence[str], today: dt.date, desk_ids: Sequence[str]
) -> tuple[int, int]:
    """Clear the desk's routing of the submissions ``ids``; a submission is acknowledged
    when no desk waits for it any more, and a report when all of its submissions are,
    which forgets its urgency level (only pending reports keep one).

    Only submissions the desk waits for are found: an id of another desk's item (or one
    it acknowledged before) counts as unknown, like an id of nothing, so that a desk
    learns nothing of the others' items."""
    acked = found = 0
    reports: dict[int, Report] = {}
    for chunk in _chunks(list(ids)):
        rows = db.execute(
            select(SubmissionDesk, Submission)
            .join(Submission, SubmissionDesk.submission_id == Submission.id)
            .where(Submission.uuid.in_(chunk), SubmissionDesk.desk.in_(desk_ids))
        ).all()
        for route, sub in rows:
            found += 1
            acked += 1
            db.delete(route)
            reports[sub.report_id] = sub.report
    db.flush()
    for report in reports.values():
        for sub in report.submissions:
            db.refresh(sub)
            if sub.acknowledged_day is None and not sub.desks:
                sub.acknowledged_day = today
    db.flush()
    for report in reports.values():
        if all(s.acknowledged_day is not None for s in report.submissions):
            report.acknowledged = True
            report.acknowledged_day = today
            report.urgency = None
    return acked, found


def purge_acknowledged(drop: Drop) -> int:
    """Delete acknowledged submissions whose retention has run out: row, then file.

    :returns: how many ciphertexts were purged.
    """
    cutoff = drop.today() - dt.timedelta(days=drop.settings.purge_acknowledged_after_days)
    with _store_lock(drop, exclusive=True):
        with drop.sessions.begin() as db:
            due = db.scalars(
                select(Submission).where(
                    Submission.acknowledged_day.is_not(None),
                    Submission.acknowledged_day <= cutoff,
                )
            ).all()
            names = [s.store_name for s in due]
            for sub in due:
                db.delete(sub)
        # Rows go first: a crash while deleting files leaves files no row names, which
        # clean-orphans removes.
        for name in names:
            drop.store.delete(name)
    if names:
        # The kept export bundle holds copies of them.
        forget_last_export(drop)
    return len(names)


@contextlib.contextmanager
def _store_lock(drop: Drop, *, exclusive: bool) -> Iterator[None]:
    """Keep a purge from overwriting a ciphertext while an export reads it.

    Exports share the lock; a purge takes it alone. A file lock, because exports and
    imports run in gunicorn workers and in the CLI alike.
    """
    with (drop.settings.data_dir / ".bundles.lock").open("a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _chunks(values: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]
