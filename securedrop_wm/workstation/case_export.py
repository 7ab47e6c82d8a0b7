"""Export one case as a package a team can hand to a lawyer or a partner.

The package is an uncompressed tar holding one folder, ``case-export/``: the reports as
UTF-8 text, the files under neutral names (``files/report-1-file-2.bin``; the source's
name appears only in ``index.txt``, its hidden characters made visible), the custody
hashes, internal notes, replies, the status history and the case's audit excerpt with
its chain hashes. ``manifest.json`` (format ``sdwm-case-export``) lists every file with
its SHA-256, ``SHA256SUMS`` covers every file for ``sha256sum -c``, and both carry a
detached ASCII-armoured signature by the workstation signing key, whose public key is
included (``workstation-key.asc``). Optionally the tar is encrypted to a recipient's
OpenPGP key, imported into a throwaway keyring, never the workstation's.

The same key signs reply bundles; the drop server's reply import refuses this manifest
by its format. Exporting is audited; docs/case-export.md says how to check a package.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import shutil
import tarfile
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from ..crypto import GnuPG
from ..errors import CryptoError
from ..filenames import visible_name
from ..files import fsync_dir
from . import audit
from .cases import get_case
from .clocks import reply_state
from .errors import CaseError
from .models import Account, AuditEvent, Case, Report, Submission
from .services import Workstation

FORMAT = "sdwm-case-export"
SCHEMA = 1
FOLDER = "case-export"
MANIFEST, SUMS, PUBLIC_KEY = "manifest.json", "SHA256SUMS", "workstation-key.asc"
MAX_RECIPIENT_KEY_BYTES = 1024 * 1024
NOT_RECORDED = "not recorded"


class CaseExportError(CaseError):
    """Raised when a case cannot be exported: who asks, a recipient key, signing."""


@dataclass(frozen=True)
class Recipient:
    """A recipient's public key, checked: it can encrypt now."""

    fingerprint: str
    uids: tuple[str, ...]
    armored: bytes


@dataclass(frozen=True)
class CaseExport:
    """A package just written: where, its neutral download name, what signed it."""

    path: Path
    download_name: str
    signing_fingerprint: str
    recipient: str | None


def download_name(now: dt.datetime, encrypted: bool) -> str:
    """A neutral file name: the day and random letters, nothing about the case."""
    suffix = ".tar.gpg" if encrypted else ".tar"
    return f"case-export-{now:%Y-%m-%d}-{secrets.token_hex(4)}{suffix}"


def check_recipient(data: bytes, gpg_binary: str = "gpg") -> Recipient:
    """Read a recipient's key file in a throwaway keyring and check it can encrypt.

    :raises CaseExportError: no key, a secret key, several keys, or a key that is
        expired, revoked or has no usable encryption subkey (the message says which).
    """
    if len(data) > MAX_RECIPIENT_KEY_BYTES:
        raise CaseExportError("the recipient's key file is too large to be one public key")
    with tempfile.TemporaryDirectory(prefix="sdwm-rcpt-") as home:
        gpg = GnuPG(Path(home), gpg_binary)
        try:
            found = gpg.inspect_keys(data)
            if not found:
                raise CaseExportError("the recipient's key file holds no OpenPGP key")
            if any(kind == "sec" for kind, _info in found):
                raise CaseExportError(
                    "the recipient's key file holds a SECRET key: ask for their public key"
                )
            if len(found) > 1:
                raise CaseExportError("the recipient's key file holds several keys: give one")
            fingerprint = gpg.import_keys(data)[0]
            info = gpg.key_info(fingerprint)
            if info.revoked:
                raise CaseExportError(f"the recipient's key {fingerprint} is revoked")
            if info.expires is not None and info.expires <= time.time():
                raise CaseExportError(f"the recipient's key {fingerprint} has expired")
            if not info.can_encrypt:
                raise CaseExportError(
                    f"the recipient's key {fingerprint} cannot encrypt (no usable "
                    "encryption subkey: expired, revoked or missing)"
                )
            armored = gpg.export_public_key(fingerprint).encode("ascii")
        except CryptoError as e:
            raise CaseExportError(f"the recipient's key cannot be used: {e}") from None
        finally:
            gpg.close()
    return Recipient(fingerprint, info.uids, armored)


def export_case(
    ws: Workstation,
    actor: str,
    case_id: int,
    output: Path,
    *,
    recipient: Recipient | None = None,
    passphrase: str | None = None,
) -> CaseExport:
    """Write case ``case_id``'s package to ``output`` (atomically), signed by the
    workstation key and, with ``recipient``, encrypted to it; the export is audited.

    :raises CaseNotFoundError: no such case.
    :raises CaseExportError: ``output`` exists, ``actor`` is not an active account, or
        signing or encryption failed; nothing is left at ``output``.
    """
    signing = ws.signing_fingerprint()
    if output.exists():
        raise CaseExportError(f"{output} exists already; refusing to overwrite it")
    written = False
    work = Path(tempfile.mkdtemp(prefix=".case-export-", dir=ws.settings.data_dir))
    try:
        with ws.write() as db:
            account = db.scalar(select(Account).where(Account.username == actor))
            if account is None or not account.active:
                raise CaseExportError(f"{actor!r} is not an active account: export refused")
            case = get_case(db, case_id)
            now = ws.now()
            detail = f"encrypted to {recipient.fingerprint}" if recipient else "not encrypted"
            event = audit.record(db, now, actor, "case.export", case_id=case.id, detail=detail)
            events = db.scalars(
                select(AuditEvent).where(AuditEvent.case_id == case.id).order_by(AuditEvent.id)
            ).all()
            root = work / FOLDER
            root.mkdir()
            listed = _write_contents(ws, case, events, root)
            (root / PUBLIC_KEY).write_text(ws.gpg.export_public_key(signing))
            listed.append(PUBLIC_KEY)
            manifest = {
                "format": FORMAT,
                "schema": SCHEMA,
                "created_at": _utc(now),
                "created_by": actor,
                "case": case.id,
                "workstation_key": signing,
                "audit_head": event.hash,
                "encrypted_to": recipient.fingerprint if recipient else None,
                "files": [_entry(root, name) for name in sorted(listed)],
            }
            _write(root / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
            _sign(ws, root / MANIFEST, signing, passphrase)
            covered = sorted([*listed, MANIFEST, f"{MANIFEST}.asc"])
            _write(root / SUMS, "".join(f"{_sha256(root / n)}  {n}\n" for n in covered))
            _sign(ws, root / SUMS, signing, passphrase)
            _package(work, root, output, recipient, ws.settings.gpg_binary)
            written = True
        fingerprint = recipient.fingerprint if recipient else None
        return CaseExport(output, output.name, signing, fingerprint)
    except BaseException:
        if written:  # the audit event did not commit: the package must not stay
            output.unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _write_contents(
    ws: Workstation, case: Case, events: Iterable[AuditEvent], root: Path
) -> list[str]:
    """Write the case's texts and files under ``root``; return their relative paths."""
    listed: list[str] = []
    (root / "reports").mkdir()
    (root / "files").mkdir()
    index = [f"Case export: case {case.id}", "", "What is where (paths in this folder):", ""]
    custody = ["Chain of custody, per item, as recorded at import on the workstation.", ""]
    for r_no, report in enumerate(case.reports, start=1):
        name = f"reports/report-{r_no}.txt"
        _write(root / name, _report_text(r_no, report))
        listed.append(name)
        index.append(f"{name}: report {r_no} of {report.received_day.isoformat()}")
        f_no = 0
        for sub in report.submissions:
            if sub.kind == "file":
                f_no += 1
                label = f"report {r_no}, file {f_no}"
                path = f"files/report-{r_no}-file-{f_no}.bin"
                source_file = ws.settings.files_dir / (sub.safe_name or "")
                if sub.safe_name and source_file.is_file():
                    shutil.copyfile(source_file, root / path)
                    listed.append(path)
                    where = f"{path} ({sub.size} bytes, SHA-256 {_sha256(root / path)})"
                else:
                    where = "MISSING from the workstation's files folder: not in this package"
                index.append(f"{label}: {where}")
                shown = json.dumps(visible_name(sub.filename), ensure_ascii=False)
                index.append(f"    name the source gave: {shown}")
            else:
                label = f"report {r_no}, message"
            custody += _custody(label, sub)
    index += ["", "case.txt: the case's state; history.txt: status history"]
    index += ["notes.txt, replies.txt, custody.txt; audit.jsonl: the audit excerpt"]
    index += ["SHA256SUMS, manifest.json and their signatures (.asc): see docs/case-export.md"]
    texts = {
        "index.txt": index,
        "custody.txt": custody,
        "case.txt": _case_lines(case),
        "notes.txt": _notes(case),
        "replies.txt": _replies(case),
        "history.txt": _history(case, events),
    }
    for name, lines in texts.items():
        _write(root / name, "\n".join(lines) + "\n")
        listed.append(name)
    _write(root / "audit.jsonl", "".join(_audit_line(e) + "\n" for e in events))
    listed.append("audit.jsonl")
    return listed


def _report_text(number: int, report: Report) -> str:
    fields = [
        ("Report", str(number)),
        ("Day", report.received_day.isoformat()),
        ("Category", report.category),
        ("Urgency", report.urgency),
        ("Reply language", report.reply_language),
        ("Imported", _utc(report.imported_at)),
        ("Wiki", report.wiki),
        ("Where", report.place),
        ("Project", report.project),
        ("Country or region", report.region),
    ]
    head = "".join(f"{k}: {v}\n" for k, v in fields)
    return f"{head}\nLinks:\n{report.links}\n\nText:\n{report.text}\n"


def _custody(label: str, sub: Submission) -> list[str]:
    bundle = sub.imported_bundle

    def shown(value: object) -> str:
        return NOT_RECORDED if value is None or value == "" else str(value)

    return [
        f"{label} ({sub.kind}, {sub.size} bytes)",
        f"    ciphertext SHA-256 (signed server manifest): {shown(sub.ciphertext_sha256)}",
        f"    plaintext SHA-256 (as decrypted): {shown(sub.plaintext_sha256)}",
        f"    export bundle sequence: {shown(bundle and bundle.sequence)}",
        f"    bundle manifest SHA-256: {shown(bundle and bundle.manifest_sha256)}",
        f"    imported by: {shown(bundle and bundle.imported_by)}",
        f"    imported at: {shown(bundle and _utc(bundle.imported_at))}",
        "",
    ]


def _case_lines(case: Case) -> list[str]:
    lines = [
        f"Case {case.id}",
        f"Status: {case.status}",
        f"Category: {case.category}",
        f"Urgency: {case.urgency}",
        f"Reply language: {case.reply_language}",
        f"Opened: {_utc(case.opened_at)}",
        f"First response: {_utc(case.first_response_at) if case.first_response_at else 'none'}",
        f"Closed: {_utc(case.closed_at) if case.closed_at else 'no'}",
        f"Assignee: {case.assignee.username if case.assignee else 'nobody'}",
        f"Labels: {', '.join(label.name for label in case.labels) or 'none'}",
        f"Legal hold: {'yes' if case.legal_hold else 'no'}",
    ]
    if case.legal_hold:
        lines.append(f"Hold reason: {case.hold_reason}")
    return lines


def _notes(case: Case) -> list[str]:
    lines = ["Internal notes (never sent to the source)", ""]
    for n in case.notes:
        lines += [f"--- {_utc(n.created_at)} by {n.author}", n.text, ""]
    return lines if case.notes else [*lines, "none"]


def _replies(case: Case) -> list[str]:
    lines = ["Replies to the source (queued: not sent yet; sent: left in a reply bundle;", ""]
    lines[0] += " delivered: the drop server confirmed it received it)"
    for r in case.replies:
        where = f", reply bundle {r.bundle.sequence}" if r.bundle else ""
        lines += [f"--- {_utc(r.created_at)} by {r.author}: {reply_state(r)}{where}", r.text, ""]
    return lines if case.replies else [*lines, "none"]


def _history(case: Case, events: Iterable[AuditEvent]) -> list[str]:
    lines = ["Status history", "", f"{_utc(case.opened_at)}  opened: new"]
    for e in events:
        if e.action == "case.status":
            lines.append(f"{_utc(e.at)}  {e.detail} (by {e.actor})")
    return [*lines, "", f"Status now: {case.status}"]


def _audit_line(e: AuditEvent) -> str:
    """One event as JSON; ``at`` exactly as the chain hashes it (naive UTC ISO 8601)."""
    at = e.at.astimezone(dt.UTC).replace(tzinfo=None).isoformat()
    return json.dumps(
        {
            "id": e.id,
            "at": at,
            "actor": e.actor,
            "action": e.action,
            "case_id": e.case_id,
            "detail": e.detail,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        },
        ensure_ascii=False,
    )


def _sign(ws: Workstation, path: Path, fingerprint: str, passphrase: str | None) -> None:
    """Write ``path``.asc: a detached signature by ``fingerprint``, ASCII-armoured."""
    try:
        signature = ws.gpg.sign_detached(path, fingerprint, passphrase)
    except CryptoError as e:
        raise CaseExportError(f"the package could not be signed: {e}") from None
    _write(path.with_name(path.name + ".asc"), armor_signature(signature))


def armor_signature(data: bytes) -> str:
    """OpenPGP ASCII armour (RFC 4880, 6.2) of a binary signature, with its CRC-24."""
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    body = base64.b64encode(data).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    checksum = base64.b64encode((crc & 0xFFFFFF).to_bytes(3, "big")).decode("ascii")
    return (
        "\n".join(
            [
                "-----BEGIN PGP SIGNATURE-----",
                "",
                *lines,
                f"={checksum}",
                "-----END PGP SIGNATURE-----",
            ]
        )
        + "\n"
    )


def _package(
    work: Path, root: Path, output: Path, recipient: Recipient | None, gpg_binary: str
) -> None:
    """Tar ``root`` (encrypted to ``recipient`` if given) into ``output`` atomically."""
    tar_path = work / "package.tar"
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in [root, *sorted(root.rglob("*"))]:
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(work)))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if path.is_dir() else 0o644
            if path.is_dir():
                tar.addfile(info)
            else:
                with path.open("rb") as f:
                    tar.addfile(info, f)
    temp = output.with_name(f".{output.name}.tmp-{secrets.token_hex(8)}")
    try:
        if recipient is None:
            shutil.copyfile(tar_path, temp)
        else:
            _encrypt(tar_path, recipient, temp, gpg_binary)
        with temp.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(temp, output)
        fsync_dir(output.parent)
    except OSError as e:
        raise CaseExportError(f"the package could not be written to {output}: {e}") from None
    finally:
        temp.unlink(missing_ok=True)


def _encrypt(source: Path, recipient: Recipient, output: Path, gpg_binary: str) -> None:
    """Encrypt ``source`` to ``recipient`` alone, in a throwaway keyring."""
    with tempfile.TemporaryDirectory(prefix="sdwm-rcpt-") as home:
        gpg = GnuPG(Path(home), gpg_binary)
        try:
            gpg.import_keys(recipient.armored)
            gpg.require_encryption_keys([recipient.fingerprint])
            with source.open("rb") as f:
                gpg.encrypt_stream(f, [recipient.fingerprint], output)
        except CryptoError as e:
            raise CaseExportError(f"the package could not be encrypted: {e}") from None
        finally:
            gpg.close()


def _entry(root: Path, name: str) -> dict[str, object]:
    path = root / name
    return {"path": name, "size": path.stat().st_size, "sha256": _sha256(path)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
