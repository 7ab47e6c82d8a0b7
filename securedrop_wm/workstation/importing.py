"""Import an export bundle: verify it against the pinned server key, decrypt every new
item with the team key, then record it all in one transaction.

All or nothing: a refused bundle, a key that will not decrypt or a malformed message
leaves the case database, the files folder and the keyring as they were. Each source's
key must be exactly the key the manifest names (one public key, nothing else) before any
is imported, and keys are imported last, in the same step as the database write.
Importing the same bundle again changes nothing; items already imported from an earlier
bundle are skipped.

What an item may decrypt to is bounded: the drop server never compresses what it
encrypts, so a genuine item's plaintext is smaller than its ciphertext. An item that
inflates beyond its own size (compressed by a compromised server to fill the disk or the
memory) is refused as soon as gpg reaches that size; a whole import so writes at most
the bundle's size in plaintext (``max_bundle_bytes``), and a message, decrypted in
memory, is refused beyond ``MAX_MESSAGE_BYTES`` (decrypting.py).

Chain of custody: each item keeps the SHA-256 of its ciphertext as the signed manifest
states it (the bundle layer checked the ciphertext against it), the SHA-256 of its
plaintext (hashed as gpg streams it out, never read back) and the bundle it came in
(whose manifest hash, sequence, importer and time are recorded). Attachments are not
parsed here: their metadata is read later, on first view.

Items are decrypted by a few gpg processes at a time (``workers``); the database is
still written in one transaction once every item is decrypted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tarfile
import tempfile
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..bundles.archive import VerifiedExport, check_replay, verify_export_bundle
from ..bundles.errors import BundleError
from ..bundles.manifest import ExportItem
from ..errors import KeyMissingError
from ..vocabulary import CaseStatus, Category, Urgency, urgency_rank
from . import audit, clocks
from .decrypting import DECRYPT_WORKERS, Decrypted, decrypt_all
from .errors import ImportRefusedError
from .keys import require_secret_key, strengthen_protection
from .models import Case, ImportedBundle, Report, Submission
from .services import Workstation

# The start of an item that names its recipients (public-key packets come first).
_RECIPIENTS_BYTES = 64 * 1024


@dataclass(frozen=True)
class BundlePreview:
    """What a verified bundle holds, shown before importing it."""

    sequence: int
    created_day: dt.date
    sources: int
    items: int
    new_items: int
    messages: int
    files: int
    urgent: int
    already_imported: bool
    pulled_at: dt.datetime | None = None
    # Not None when the items are encrypted to keys other than this workstation's team
    # key: what to tell the admin (they would not decrypt here).
    key_mismatch: str | None = None


@dataclass(frozen=True)
class ImportResult:
    """What an import changed."""

    sequence: int
    already_imported: bool
    new_cases: int = 0
    reports: int = 0
    files: int = 0
    skipped: int = 0


def preview_bundle(ws: Workstation, path: Path) -> BundlePreview:
    """Verify a bundle completely (nothing kept) and say what it holds.

    :raises ImportRefusedError: the bundle is refused, with the reason.
    """
    with _verify(ws, path, workdir=None) as verified:
        manifest = verified.manifest
        with ws.sessions() as db:
            already = _already_imported(db, verified)
            known = _known_items(db, (i.id for i in manifest.items))
    items = manifest.items
    mismatch = None
    if items:
        with _first_item(path, items[0].id) as head:
            mismatch = _key_mismatch(ws, head)
    return BundlePreview(
        sequence=manifest.sequence,
        created_day=manifest.created_day,
        sources=len(manifest.sources),
        items=len(items),
        new_items=sum(1 for i in items if i.id not in known),
        messages=sum(1 for i in items if i.kind == "message"),
        files=sum(1 for i in items if i.kind == "file"),
        urgent=len({i.report_id for i in items if i.urgent}),
        already_imported=already,
        pulled_at=clocks.read_pull_time(path),
        key_mismatch=mismatch,
    )


@contextlib.contextmanager
def _first_item(path: Path, item_id: str) -> Iterator[Path]:
    """The start of an item's ciphertext (where its recipients are named), from a bundle
    verified already, in a throwaway file: a preview keeps no member."""
    with tempfile.TemporaryDirectory(prefix="sdwm-preview-") as folder:
        head = Path(folder) / "item.gpg"
        with tarfile.open(path) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith(f"/{item_id}.gpg"))
            source = tar.extractfile(member)
            assert source is not None
            head.write_bytes(source.read(_RECIPIENTS_BYTES))
        yield head


def _key_mismatch(ws: Workstation, item: Path) -> str | None:
    """Why the bundle's items would not decrypt with this workstation's team key, or
    None. One item (its ciphertext) tells: the drop encrypts every item to the same keys."""
    team = ws.team_fingerprint()
    try:
        expected = ws.gpg.key_ids(team)
    except KeyMissingError:
        return f"this workstation's team key {team} is not in its keyring"
    found = ws.gpg.encrypted_to(item)
    if found & expected:
        return None
    named = ", ".join(sorted(found)) or "no key"
    return (
        f"the bundle's items are encrypted to {named}, not to this workstation's team key "
        f"{team}: the drop encrypts to another team key (compare team_fingerprint in the "
        "drop's config.toml with the team key chosen at setup)"
    )


def import_bundle(
    ws: Workstation,
    actor: str,
    path: Path,
    passphrase: str | None = None,
    *,
    workers: int = DECRYPT_WORKERS,
) -> ImportResult:
    """Verify, decrypt and record a bundle. Its reports' clocks start at the pull time
    written beside it (``<bundle>.pulled``) when plausible, else now (see clocks.py).

    :param passphrase: of the team's secret key, if it has one.
    :param workers: gpg processes decrypting at a time (at least 1).
    :raises ImportRefusedError: the bundle is refused, with the reason.
    :raises SecretKeyMissingError: the team's secret key is not in the keyring.
    :raises SecretKeyLockedError: the team key needs a passphrase, or a different one.
    """
    require_secret_key(ws, ws.team_fingerprint(), "team key")
    with _verify(ws, path, workdir=ws.settings.files_dir) as verified:
        manifest = verified.manifest
        with ws.sessions() as db:
            if _already_imported(db, verified):
                return ImportResult(manifest.sequence, already_imported=True)
            known = _known_items(db, (i.id for i in manifest.items))
        new = [i for i in manifest.items if i.id not in known]
        mismatch = _key_mismatch(ws, verified.item_path(new[0].id)) if new else None
        if mismatch is not None:
            raise ImportRefusedError(f"bundle refused: {mismatch}")
        keys = _check_source_keys(ws, verified, {i.source_id for i in new}, workers)
        decrypted = Decrypted()
        added_keys: list[str] = []
        try:
            decrypt_all(ws, verified, new, decrypted, passphrase, workers)
            pulled_at = clocks.read_pull_time(path)
            with ws.write() as db:
                counts = _record(ws, db, actor, verified, new, decrypted, pulled_at)
                result = ImportResult(
                    manifest.sequence, False, *counts, skipped=len(manifest.items) - len(new)
                )
                audit.record(
                    db,
                    ws.now(),
                    actor,
                    "import",
                    detail=(
                        f"bundle {manifest.sequence}: {result.reports} report(s), "
                        f"{result.files} file(s), {result.new_cases} new case(s), "
                        f"{result.skipped} already imported"
                    ),
                )
                # The heads of this log the server holds: checked, and kept to be
                # checked again by verify-audit (the import proceeds either way).
                missing = audit.record_server_heads(
                    db, manifest.server_id, manifest.sequence, manifest.audit_heads
                )
                delivered = clocks.record_deliveries(db, manifest.replies_received, ws.now())
                if delivered:
                    audit.record(
                        db,
                        ws.now(),
                        actor,
                        "replies.delivered",
                        detail=f"bundle {manifest.sequence}: {delivered} reply(ies) delivered",
                    )
                if missing:
                    audit.record(
                        db,
                        ws.now(),
                        actor,
                        "audit.anchor_missing",
                        detail=f"bundle {manifest.sequence}: the drop server holds "
                        f"{missing} head(s) this log does not contain",
                    )
                _import_source_keys(ws, keys, added_keys, workers)
                _place_files(ws, decrypted)
        except BaseException:
            for fingerprint in added_keys:
                ws.gpg.delete_key(fingerprint)
            for temp in decrypted.files.values():
                temp.unlink(missing_ok=True)
            for item_id in decrypted.files:
                (ws.settings.files_dir / item_id).unlink(missing_ok=True)
            raise
    if passphrase is not None and new:
        # The passphrase has just unlocked the team key: a key still under a weak
        # protection is protected again now (see keys.strengthen_protection).
        strengthen_protection(ws, actor, ws.team_fingerprint(), passphrase)
    return result


class _verify:
    """Verification as a context manager that turns bundle errors into import refusals."""

    def __init__(self, ws: Workstation, path: Path, workdir: Path | None) -> None:
        self.ws, self.path, self.workdir = ws, path, workdir
        self.verified: VerifiedExport | None = None

    def __enter__(self) -> VerifiedExport:
        if not self.path.is_file():
            raise ImportRefusedError("bundle refused: no such file")
        if self.path.stat().st_size > self.ws.settings.max_bundle_bytes:
            raise ImportRefusedError("bundle refused: it is larger than this workstation accepts")
        try:
            self.verified = verify_export_bundle(
                self.path, self.ws.gpg, self.ws.server_fingerprint(), self.workdir
            )
        except BundleError as e:
            raise ImportRefusedError(f"bundle refused: {e}") from e
        return self.verified

    def __exit__(self, *exc: object) -> None:
        if self.verified is not None:
            self.verified.close()


def _already_imported(db: Session, verified: VerifiedExport) -> bool:
    manifest = verified.manifest
    rows = db.execute(
        select(ImportedBundle.sha256, ImportedBundle.sequence).where(
            ImportedBundle.server_id == manifest.server_id
        )
    ).all()
    last = max((r.sequence for r in rows), default=None)
    try:
        return check_replay(
            verified.manifest_sha256, manifest.sequence, last, {r.sha256 for r in rows}
        )
    except BundleError as e:
        raise ImportRefusedError(f"bundle refused: {e}") from e


def _known_items(db: Session, ids: Iterable[str]) -> set[str]:
    wanted = list(ids)
    known: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        known.update(db.scalars(select(Submission.uuid).where(Submission.uuid.in_(chunk))))
    return known


def _check_source_keys(
    ws: Workstation, verified: VerifiedExport, source_ids: set[str], workers: int
) -> dict[str, bytes]:
    """Read the public keys replies will be encrypted to, importing nothing: each must hold
    exactly the public key the manifest names (``workers`` gpg at a time).

    :returns: fingerprint to key data.
    """
    entries = {s.id: s for s in verified.manifest.sources}
    wanted = sorted(source_ids)
    for source_id in wanted:
        if source_id not in entries:
            raise ImportRefusedError(f"bundle refused: source {source_id} is not listed")
    datas = [verified.key_path(source_id).read_bytes() for source_id in wanted]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        scans = list(pool.map(ws.gpg.scan_keys, datas))
    keys = {}
    for source_id, data, scan in zip(wanted, datas, scans, strict=True):
        fingerprint = entries[source_id].key_fingerprint
        if scan != [("pub", fingerprint)]:
            raise ImportRefusedError(
                f"bundle refused: the key of source {source_id} is not the one the manifest names"
            )
        keys[fingerprint] = data
    return keys


def _import_source_keys(
    ws: Workstation, keys: dict[str, bytes], added: list[str], workers: int
) -> None:
    """Import checked keys (each holds one public key, :func:`_check_source_keys`) in one
    gpg call, appending to ``added`` each one the keyring lacked, so that a failure later
    in the import can remove them again."""
    if not keys:
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        present = list(pool.map(_has_key, [ws] * len(keys), keys))
    added.extend(f for f, there in zip(keys, present, strict=True) if not there)
    imported = set(ws.gpg.import_keys(b"\n".join(keys.values())))
    for fingerprint in keys:
        if fingerprint not in imported:
            raise ImportRefusedError(f"bundle refused: key {fingerprint} could not be imported")


def _has_key(ws: Workstation, fingerprint: str) -> bool:
    try:
        ws.gpg.key_info(fingerprint)
    except KeyMissingError:
        return False
    return True


def _record(
    ws: Workstation,
    db: Session,
    actor: str,
    verified: VerifiedExport,
    new: list[ExportItem],
    decrypted: Decrypted,
    pulled_at: dt.datetime | None,
) -> tuple[int, int, int]:
    """Add cases, reports and submissions, each with its custody (hashes and bundle);
    return (new cases, reports, files)."""
    manifest = verified.manifest
    now = ws.now()
    bundle = ImportedBundle(
        sha256=verified.manifest_sha256,
        manifest_sha256=verified.manifest_sha256,
        server_id=manifest.server_id,
        sequence=manifest.sequence,
        created_day=manifest.created_day,
        imported_at=now,
        imported_by=actor,
        submissions=len(new),
    )
    db.add(bundle)
    sources = {s.id: s for s in manifest.sources}
    cases: dict[str, Case] = {}
    # Per source: was the case answered or closed before this import reopened it?
    answered_before: dict[str, bool] = {}
    created: list[tuple[str, Report]] = []
    reports: dict[str, Report] = {}
    new_cases = 0
    filenames: dict[str, str] = {}
    for message in decrypted.messages.values():
        for f in message.get("files", []):
            filenames[f["submission"]] = f["name"]
    # Looked up one by one: no flush of the rows added so far before each look-up.
    with db.no_autoflush:
        # Messages first, so a report's fields are known before its files are attached.
        for item in sorted(new, key=lambda i: (i.kind != "message", i.created_day)):
            start = clocks.clock_start(item.created_day, now, pulled_at)
            case = cases.get(item.source_id)
            if case is None:
                case = db.scalar(select(Case).where(Case.source_uuid == item.source_id))
                answered_before[item.source_id] = case is not None and clocks.answered_or_closed(
                    case
                )
                if case is None:
                    entry = sources[item.source_id]
                    case = Case(
                        source_uuid=entry.id,
                        designation=entry.designation,
                        source_fingerprint=entry.key_fingerprint,
                        category=Category.OTHER.value,
                        urgency=Urgency.ROUTINE.value,
                        opened_at=start,
                        updated_at=now,
                    )
                    db.add(case)
                    new_cases += 1
                cases[item.source_id] = case
            report = reports.get(item.report_id) or db.scalar(
                select(Report).where(Report.uuid == item.report_id)
            )
            if report is None:
                report = Report(
                    uuid=item.report_id,
                    case=case,
                    received_day=item.created_day,
                    imported_at=now,
                    clock_start=start,
                    category=Category.OTHER.value,
                    urgency=(Urgency.URGENT if item.urgent else Urgency.ROUTINE).value,
                    reply_language="",
                )
                db.add(report)
                created.append((item.source_id, report))
            reports[item.report_id] = report
            if item.kind == "message":
                body = decrypted.messages[item.id]
                report.category = body.get("category", "") or Category.OTHER.value
                report.urgency = body.get("urgency", "") or report.urgency
                report.reply_language = body.get("reply_language", "")
                report.wiki = body.get("wiki", "")
                report.links = body.get("links", "")
                report.text = body.get("what_happened", "")
                # Absent from messages written before the form asked (read as not said).
                report.place = body.get("place", "")
                report.project = body.get("project", "")
                report.region = body.get("region", "")
                db.add(
                    Submission(
                        uuid=item.id,
                        report=report,
                        kind="message",
                        size=item.size,
                        **_custody(item, decrypted, bundle),
                    )
                )
            else:
                db.add(
                    Submission(
                        uuid=item.id,
                        report=report,
                        kind="file",
                        filename=filenames.get(item.id, f"file-{item.id[:8]}")[:255],
                        safe_name=item.id,
                        size=decrypted.files[item.id].stat().st_size,
                        metadata_json="",  # read later, in the sandbox, on first view
                        **_custody(item, decrypted, bundle),
                    )
                )
            _update_case(case, report, now)
    for source_id, report in created:
        report.follow_up = report.urgency == Urgency.DANGER and answered_before[source_id]
    db.flush()
    return new_cases, len(reports), len(decrypted.files)


def _custody(item: ExportItem, decrypted: Decrypted, bundle: ImportedBundle) -> dict[str, Any]:
    """An item's chain of custody: its ciphertext's hash as the signed manifest states
    it (verify_export_bundle refused any member that differs), its plaintext's as gpg
    wrote it, and its bundle."""
    return {
        "ciphertext_sha256": item.sha256,
        "plaintext_sha256": decrypted.plaintext_sha256[item.id],
        "imported_bundle": bundle,
    }


def _update_case(case: Case, report: Report, now: dt.datetime) -> None:
    """A new report makes a case unread, as urgent as its most urgent report, and reopens
    it if it was closed (so retention never purges a case with fresh news)."""
    if case.category == Category.OTHER and report.category:
        case.category = report.category
    if urgency_rank(report.urgency) > urgency_rank(case.urgency):
        case.urgency = report.urgency
    if report.reply_language:
        case.reply_language = report.reply_language
    case.opened_at = min(case.opened_at, report.clock_start)
    case.unread = True
    case.updated_at = now
    if case.status == CaseStatus.CLOSED:
        case.status = CaseStatus.NEW.value
        case.closed_at = None


def _place_files(ws: Workstation, decrypted: Decrypted) -> None:
    """Give each decrypted file its final, safe name: the server's id, no extension."""
    for item_id, temp in decrypted.files.items():
        os.replace(temp, ws.settings.files_dir / item_id)


def imported_bundles(ws: Workstation) -> list[ImportedBundle]:
    """Bundles imported so far, newest first."""
    with ws.sessions() as db:
        return list(db.scalars(select(ImportedBundle).order_by(ImportedBundle.id.desc())))
