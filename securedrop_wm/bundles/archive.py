"""Reading and writing bundle tar files.

Reading never trusts the tar: members are read one by one (never ``extractall``), each
checked for its name, type, count and size before a byte of it is kept, and the
signature is checked before anything but the manifest is read. Verification is complete
before an importer writes anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import secrets
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Container, Sequence
from pathlib import Path
from typing import IO, Any, Self

from ..crypto import GnuPG
from ..files import fsync_dir
from .errors import (
    BundleError,
    BundleFormatError,
    DuplicateIdError,
    HashMismatchError,
    MemberTooLargeError,
    MissingMemberError,
    ReplayError,
    TruncatedBundleError,
    UnknownSignerError,
    UnlistedMemberError,
    WrongServerError,
)
from .manifest import (
    EXPORT_LIMITS,
    REPLY_LIMITS,
    REPLY_SCHEMA_VERSION,
    ExportManifest,
    Limits,
    ReplyEntry,
    ReplyFile,
    ReplyManifest,
    _audit_head,
    _check_unique,
    _export_members,
    _fpr,
    _load_json,
    _positive,
    _reply_json,
    _reply_members,
    _uuid,
)
from .signature import _verify_signature
from .tar_members import (
    BoundedTarInfo,
    check_end,
    check_member,
    copy_member,
    members,
    read_all,
    refuse_compressed,
)

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"

_CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
# -- verified bundles -----------------------------------------------------------------


class _Verified:
    """Members that passed verification, kept in a private folder until :meth:`close`."""

    def __init__(self, folder: Path | None, manifest_sha256: str) -> None:
        self._folder = folder
        self.manifest_sha256 = manifest_sha256

    def _member(self, name: str) -> Path:
        if self._folder is None:
            raise BundleError("this bundle was verified without a workdir: members not kept")
        return self._folder / name

    def close(self) -> None:
        """Remove the verified members that were not moved elsewhere."""
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VerifiedExport(_Verified):
    """An export bundle whose signature, hashes and layout were all checked."""

    def __init__(self, manifest: ExportManifest, folder: Path | None, sha256: str) -> None:
        super().__init__(folder, sha256)
        self.manifest = manifest

    def item_path(self, item_id: str) -> Path:
        """The verified ciphertext of item ``item_id``."""
        return self._member(f"submissions/{_uuid(item_id, 'item id')}.gpg")

    def key_path(self, source_id: str) -> Path:
        """The verified armored public key of source ``source_id``."""
        return self._member(f"keys/{_uuid(source_id, 'source id')}.asc")


class VerifiedReplies(_Verified):
    """A reply bundle whose signature, hashes and layout were all checked."""

    def __init__(self, manifest: ReplyManifest, folder: Path | None, sha256: str) -> None:
        super().__init__(folder, sha256)
        self.manifest = manifest

    def reply_path(self, reply_id: str) -> Path:
        """The verified ciphertext of reply ``reply_id``."""
        return self._member(f"replies/{_uuid(reply_id, 'reply id')}.gpg")


def verify_export_bundle(
    path: Path,
    gpg: GnuPG,
    server_fingerprint: str,
    workdir: Path | None,
    limits: Limits = EXPORT_LIMITS,
    progress: Progress | None = None,
) -> VerifiedExport:
    """Verify an export bundle signed by the pinned server key ``server_fingerprint``.

    :param workdir: where a private folder is made to keep the verified members; ``None``
        verifies only (hashes and discards), e.g. to preview a bundle.
    :raises BundleError: (a subclass saying why) and keeps nothing.
    """
    result = _read_bundle(
        path, gpg, server_fingerprint, "server", _export_members, limits, workdir, progress
    )
    manifest, folder, sha = result
    assert isinstance(manifest, ExportManifest)
    return VerifiedExport(manifest, folder, sha)


def verify_reply_bundle(
    path: Path,
    gpg: GnuPG,
    workstation_fingerprint: str,
    server_id: str | None,
    workdir: Path | None,
    limits: Limits = REPLY_LIMITS,
    progress: Progress | None = None,
) -> VerifiedReplies:
    """Verify a reply bundle signed by the pinned workstation key and meant for ``server_id``.

    :raises WrongServerError: the bundle names another server.
    :raises BundleError: (a subclass saying why) and keeps nothing.
    """
    manifest, folder, sha = _read_bundle(
        path, gpg, workstation_fingerprint, "workstation", _reply_members, limits, workdir, progress
    )
    assert isinstance(manifest, ReplyManifest)
    if server_id is not None and manifest.server_id != server_id.upper():
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise WrongServerError(
            f"this reply bundle is meant for server {manifest.server_id}, not this one "
            f"({server_id.upper()})"
        )
    return VerifiedReplies(manifest, folder, sha)


def check_replay(
    manifest_sha256: str,
    sequence: int,
    last_sequence: int | None,
    imported_hashes: Container[str],
) -> bool:
    """Apply the replay rule: the same bundle again is a no-op, an older one is refused.

    :returns: True when this very bundle was imported before (change nothing).
    :raises ReplayError: a different bundle whose sequence is not newer than the last.
    """
    if manifest_sha256 in imported_hashes:
        return True
    if last_sequence is not None and sequence <= last_sequence:
        raise ReplayError(
            f"bundle sequence {sequence} is not newer than the last imported ({last_sequence}):"
            " an old or replayed bundle, refused"
        )
    return False


# -- writing --------------------------------------------------------------------------


def write_reply_bundle(
    gpg: GnuPG,
    signing_fingerprint: str,
    server_id: str,
    sequence: int,
    replies: Sequence[ReplyFile],
    acknowledged: Sequence[str],
    output: Path,
    *,
    passphrase: str | None = None,
    today: dt.date | None = None,
    audit_head: str | None = None,
) -> ReplyManifest:
    """Write a reply bundle signed by the workstation key ``signing_fingerprint``.

    :param replies: ciphertexts already encrypted to the source key and the team key.
    :param acknowledged: ids of the export items the workstation has imported.
    :param audit_head: the hash of the newest event of the workstation's audit log.
    :raises DuplicateIdError: an id appears twice.
    :raises BundleError: an id is malformed or a file unreadable; no output is left.
    """
    _check_unique((r.id for r in replies), "reply id")
    _check_unique(acknowledged, "acknowledged id")
    entries = []
    members = []
    for reply in replies:
        _uuid(reply.id, "reply id")
        _uuid(reply.source_id, "source id")
        size, sha = _hash_file(reply.ciphertext)
        entry = ReplyEntry(reply.id, reply.source_id, size, sha)
        entries.append(entry)
        members.append((entry.member, reply.ciphertext, size))
    manifest = ReplyManifest(
        schema=REPLY_SCHEMA_VERSION,
        workstation_id=_fpr(signing_fingerprint, "workstation_id"),
        server_id=_fpr(server_id, "server_id"),
        sequence=_positive(sequence, "sequence"),
        created_day=today or dt.datetime.now(dt.UTC).date(),
        replies=tuple(entries),
        acknowledged=tuple(_uuid(a, "acknowledged id") for a in acknowledged),
        audit_head=None if audit_head is None else _audit_head(audit_head),
    )
    _write_bundle(gpg, signing_fingerprint, passphrase, _reply_json(manifest), members, output)
    return manifest


def _write_bundle(
    gpg: GnuPG,
    fingerprint: str,
    passphrase: str | None,
    manifest: bytes,
    members: Sequence[tuple[str, Path, int]],
    output: Path,
    progress: Progress | None = None,
) -> None:
    """Sign ``manifest`` and write the tar atomically: a temp file, fsync, rename."""
    temp = output.with_name(f".{output.name}.tmp-{secrets.token_hex(8)}")
    manifest_file = temp.with_name(temp.name + ".manifest")
    try:
        manifest_file.write_bytes(manifest)
        signature = gpg.sign_detached(manifest_file, fingerprint, passphrase)
        manifest_file.unlink()
        with temp.open("xb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                _add_bytes(tar, MANIFEST, manifest)
                _add_bytes(tar, SIGNATURE, signature)
                total = sum(size for _name, _path, size in members)
                done = 0
                for name, path, size in members:
                    with path.open("rb") as f:
                        tar.addfile(_tarinfo(name, size), f)
                    done += size
                    if progress is not None:
                        progress(done, total)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, output)
        fsync_dir(output.parent)
    except OSError as e:
        raise BundleError(f"the bundle could not be written to {output}: {e.strerror or e}") from e
    finally:
        manifest_file.unlink(missing_ok=True)
        temp.unlink(missing_ok=True)


def _tarinfo(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = 0
    info.type = tarfile.REGTYPE
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_tarinfo(name, len(data)), io.BytesIO(data))


def _hash_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as e:
        raise BundleError(f"cannot read {path.name}: {e.strerror or e}") from e
    return size, digest.hexdigest()


# -- reading --------------------------------------------------------------------------

_Manifest = ExportManifest | ReplyManifest
# A manifest parser: the JSON, the pinned signer and the limits in; the manifest and the
# members it pins (name -> (size, SHA-256)) out.
Progress = Callable[[int, int], None]
"""Told ``(done, total)`` in bytes as a bundle is written or read, for a progress bar."""

_Parser = Callable[[dict[str, Any], str, Limits], tuple[_Manifest, dict[str, tuple[int, str]]]]


def _read_bundle(
    path: Path,
    gpg: GnuPG,
    signer: str,
    role: str,
    parse: _Parser,
    limits: Limits,
    workdir: Path | None,
    progress: Progress | None = None,
) -> tuple[_Manifest, Path | None, str]:
    """Read, check and (into a private folder of ``workdir``) keep a bundle's members."""
    signer = signer.replace(" ", "").upper()
    try:
        total = path.stat().st_size
    except OSError as e:
        raise BundleFormatError(f"cannot read the bundle {path.name}: {e.strerror}") from e
    if total > limits.max_total_bytes:
        raise MemberTooLargeError(
            f"the bundle is {total} bytes, more than the limit of {limits.max_total_bytes}"
        )
    try:
        folder = Path(tempfile.mkdtemp(prefix=".bundle-", dir=workdir)) if workdir else None
    except OSError as e:
        raise BundleError(f"cannot make a folder in {workdir}: {e.strerror}") from e
    try:
        try:
            f = path.open("rb")
        except OSError as e:
            raise BundleFormatError(f"cannot read the bundle {path.name}: {e.strerror}") from e
        with f:
            manifest = _readmembers(f, total, gpg, signer, role, parse, limits, folder, progress)
        if progress is not None:
            progress(total, total)
    except BaseException:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return manifest[0], folder, manifest[1]


def _readmembers(
    f: IO[bytes],
    total: int,
    gpg: GnuPG,
    signer: str,
    role: str,
    parse: _Parser,
    limits: Limits,
    folder: Path | None,
    progress: Progress | None = None,
) -> tuple[_Manifest, str]:
    refuse_compressed(f)
    try:
        tar = tarfile.open(fileobj=f, mode="r:", tarinfo=BoundedTarInfo)
    except tarfile.ReadError as e:
        raise BundleFormatError(f"not a bundle: the file is not a tar archive ({e})") from e
    manifest: _Manifest | None = None
    manifest_sha = ""
    expected: dict[str, tuple[int, str]] = {}
    seen: set[str] = set()
    manifest_bytes = b""
    count = 0
    with tar:
        for info in members(tar):
            if progress is not None:
                progress(min(f.tell(), total), total)
            count += 1
            name = check_member(info, count, limits)
            if name in seen:
                raise DuplicateIdError(f"the member {name} appears twice in the bundle")
            seen.add(name)
            if count == 1:
                if name != MANIFEST:
                    raise BundleFormatError(f"not a bundle: the first member is not {MANIFEST}")
                if info.size > limits.max_manifest_bytes:
                    raise MemberTooLargeError(
                        f"the manifest is {info.size} bytes, more than the limit of "
                        f"{limits.max_manifest_bytes}"
                    )
                manifest_bytes = read_all(tar, info)
                continue
            if count == 2:
                if name != SIGNATURE:
                    raise BundleFormatError(f"the bundle is not signed: no {SIGNATURE} second")
                if info.size > limits.max_signature_bytes:
                    raise MemberTooLargeError(f"the signature is too large ({info.size} bytes)")
                try:
                    _verify_signature(gpg, manifest_bytes, read_all(tar, info), signer, role)
                except UnknownSignerError:
                    _refuse_another_kind(manifest_bytes, role)
                    raise
                manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
                manifest, expected = parse(_load_json(manifest_bytes), signer, limits)
                continue
            if name not in expected:
                raise UnlistedMemberError(f"the member {name} is not listed in the manifest")
            size, sha = expected[name]
            if info.size > limits.max_member_bytes:
                raise MemberTooLargeError(
                    f"the member {name} is {info.size} bytes, more than the limit of "
                    f"{limits.max_member_bytes}"
                )
            if info.size != size:
                raise HashMismatchError(
                    f"the member {name} is {info.size} bytes but the manifest says {size}"
                )
            if copy_member(tar, info, folder) != sha:
                raise HashMismatchError(
                    f"the member {name} does not match its SHA-256 in the manifest "
                    "(tampered or damaged)"
                )
        if count < 2 or manifest is None:
            raise TruncatedBundleError("the bundle ends before its manifest and signature")
        missing = sorted(set(expected) - seen)
        check_end(f, tar, total, missing)
        if missing:
            raise MissingMemberError(
                f"the bundle lacks {len(missing)} member(s) the manifest lists, e.g. {missing[0]}"
            )
    return manifest, manifest_sha


# What each kind of signed package is, in words, by the format its manifest declares.
_KINDS = {
    "sdwm-export": "an export bundle (made by the drop server for the workstation)",
    "sdwm-replies": "a reply bundle (made by the workstation for the drop server)",
    "sdwm-case-export": "a case export (made by the workstation for a lawyer or partner)",
}
_EXPECTED = {"server": "sdwm-export", "workstation": "sdwm-replies"}


def _refuse_another_kind(manifest_bytes: bytes, role: str) -> None:
    """When a signature is not the pinned key's, say so in words if the package is of
    another kind altogether (a reply bundle given to the import, say) rather than only
    by key numbers. The manifest is not trusted: only its declared format is read, and
    the package is refused either way."""
    try:
        declared = json.loads(manifest_bytes).get("format")
    except (ValueError, AttributeError):
        return
    expected = _EXPECTED.get(role)
    if isinstance(declared, str) and declared in _KINDS and declared != expected:
        wanted = _KINDS.get(expected or "", "another kind of bundle")
        raise BundleFormatError(f"this is {_KINDS[declared]}, not {wanted}: refused")
