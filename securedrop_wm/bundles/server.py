"""The drop server's side of bundles: export, reply import and purge, in its database.

The workstation never imports this module: it holds the server's models and ``Drop``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from ..drop import Drop
from ..models import BundleRecord, Reply, Report, Source, Submission
from .archive import (
    Progress,
    VerifiedReplies,
    _hash_file,
    _write_bundle,
    check_replay,
    verify_reply_bundle,
)
from .errors import BundleError, ReplayError, UnknownSignerError
from .manifest import (
    REPLY_LIMITS,
    SCHEMA_VERSION,
    ExportItem,
    ExportManifest,
    Limits,
    SourceEntry,
    _export_json,
)

EXPORT = "export"
IMPORT = "import"


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


# -- server side ----------------------------------------------------------------------


def export_bundle(drop: Drop, output: Path, progress: Progress | None = None) -> ExportManifest:
    """Write the next export bundle: every submission not yet acknowledged, signed.

    :raises BundleError: the bundle could not be written; no output is left behind.
    """
    server_id = drop.settings.signing_fingerprint
    if not output.parent.is_dir():
        raise BundleError(f"cannot write the bundle: there is no folder {output.parent}")
    with _store_lock(drop, exclusive=False):
        return _export(drop, output, server_id, progress)


def _export(drop: Drop, output: Path, server_id: str, progress: Progress | None) -> ExportManifest:
    with drop.sessions() as db:
        rows = db.execute(
            select(Submission, Report, Source)
            .join(Report, Submission.report_id == Report.id)
            .join(Source, Report.source_id == Source.id)
            .where(Submission.acknowledged_day.is_(None))
            .order_by(Report.id, Submission.id)
        ).all()
    sequence = _next_export_sequence(drop, server_id)
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
                report.urgent,
                size,
                sha,
            )
            items.append(item)
            members.append((item.member, path, size))
        manifest = ExportManifest(
            schema=SCHEMA_VERSION,
            server_id=server_id,
            sequence=sequence,
            created_day=drop.today(),
            sources=tuple(sources.values()),
            items=tuple(items),
        )
        _write_bundle(drop.gpg, server_id, None, _export_json(manifest), members, output, progress)
    return manifest


def _next_export_sequence(drop: Drop, server_id: str) -> int:
    """Take the next export sequence number in a short transaction of its own.

    Gaps (an export that then failed) are allowed; repeats are not. The bundle itself is
    written outside the transaction so that sources are never kept waiting by an export.
    """
    for _ in range(10):
        try:
            with drop.sessions.begin() as db:
                last = db.scalar(
                    select(func.max(BundleRecord.sequence)).where(
                        BundleRecord.direction == EXPORT, BundleRecord.peer == server_id
                    )
                )
                sequence = (last or 0) + 1
                db.add(
                    BundleRecord(
                        direction=EXPORT, peer=server_id, sequence=sequence, day=drop.today()
                    )
                )
            return sequence
        except (IntegrityError, OperationalError):
            continue
    raise BundleError("could not take an export sequence number (database busy); try again")


def import_reply_bundle(
    drop: Drop, path: Path, limits: Limits = REPLY_LIMITS, progress: Progress | None = None
) -> ReplyImport:
    """Verify a reply bundle from the pinned workstation, then import it all or nothing.

    Stores the replies, marks acknowledged submissions (and reports whose submissions are
    all acknowledged), then purges the acknowledged ciphertext that is due.

    :raises BundleError: (a subclass saying why); nothing was imported.
    """
    pinned = drop.settings.workstation_fingerprint
    if pinned is None:
        raise UnknownSignerError(
            "no workstation key is registered: run `securedrop-wm workstation-key set FILE` "
            "with the workstation's public key"
        )
    tmp_root = drop.settings.data_dir / "tmp"
    tmp_root.mkdir(mode=0o700, exist_ok=True)
    with verify_reply_bundle(
        path, drop.gpg, pinned, drop.settings.signing_fingerprint, tmp_root, limits, progress
    ) as verified:
        try:
            result = _import_verified(drop, pinned, verified)
        except IntegrityError:
            raise ReplayError(
                "another import of this bundle ran at the same time; nothing changed here"
            ) from None
        except OperationalError:
            raise BundleError("the database is busy; nothing was imported, try again") from None
    if result.already_imported:
        return result
    purged = purge_acknowledged(drop)
    return dataclasses.replace(result, purged=purged)


def _import_verified(drop: Drop, pinned: str, verified: VerifiedReplies) -> ReplyImport:
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
                    BundleRecord.direction == IMPORT, BundleRecord.peer == pinned
                )
            )
            hashes = {verified.manifest_sha256} if seen is not None else set()
            if check_replay(verified.manifest_sha256, m.sequence, last, hashes):
                return ReplyImport(sequence=m.sequence, already_imported=True)
            db.add(
                BundleRecord(
                    direction=IMPORT,
                    peer=pinned,
                    sequence=m.sequence,
                    manifest_sha256=verified.manifest_sha256,
                    day=today,
                )
            )
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
            acked, found = _acknowledge(db, m.acknowledged, today)
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
    )


def _acknowledge(db: Any, ids: Sequence[str], today: dt.date) -> tuple[int, int]:
    """Mark submissions acknowledged; a report when all of its submissions are."""
    acked = found = 0
    reports: dict[int, Report] = {}
    for chunk in _chunks(list(ids)):
        for sub in db.scalars(select(Submission).where(Submission.uuid.in_(chunk))):
            found += 1
            if sub.acknowledged_day is None:
                sub.acknowledged_day = today
                acked += 1
                reports[sub.report_id] = sub.report
    db.flush()
    for report in reports.values():
        if all(s.acknowledged_day is not None for s in report.submissions):
            report.acknowledged = True
            report.acknowledged_day = today
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
