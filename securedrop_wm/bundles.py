"""Signed transfer bundles between the drop server and the air-gapped workstation.

A bundle is one uncompressed tar file: ``manifest.json`` first, its detached signature
``manifest.json.sig`` second, then the members the manifest pins by size and SHA-256.
Export bundles carry submissions and source keys out; reply bundles carry replies and
acknowledgements back. docs/bundles.md is the specification.

Reading never trusts the tar: members are read one by one (never ``extractall``), each
checked for its name, type, count and size before a byte of it is kept, and the
signature is checked before anything but the manifest is read. Verification is complete
before an importer writes anything.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Self

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from .crypto import GnuPG
from .drop import Drop
from .errors import SecureDropError
from .models import BundleRecord, Reply, Report, Source, Submission

EXPORT_FORMAT = "sdwm-export"
REPLIES_FORMAT = "sdwm-replies"
SCHEMA_VERSION = 1
SUPPORTED_SCHEMAS = (1,)
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
EXPORT = "export"
IMPORT = "import"

_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_FPR = re.compile(r"^[0-9A-F]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_BLOCK = tarfile.BLOCKSIZE
_KINDS = ("message", "file")
_GPG = "gpg"


# -- errors ---------------------------------------------------------------------------


class BundleError(SecureDropError):
    """Base class of every refusal of a bundle; nothing was imported when it is raised."""


class BundleFormatError(BundleError):
    """Raised when a bundle is not a tar of the expected layout or its manifest is malformed."""


class TruncatedBundleError(BundleFormatError):
    """Raised when a bundle file ends before its last member or its end-of-archive mark."""


class UnknownSchemaError(BundleFormatError):
    """Raised when a manifest's schema version is not one this code understands."""


class SignatureError(BundleError):
    """Base class of the signature refusals."""


class UnknownSignerError(SignatureError):
    """Raised when the manifest is signed by a key other than the pinned one."""


class BadSignatureError(SignatureError):
    """Raised when the signature does not verify, or its key has expired or been revoked."""


class HashMismatchError(BundleError):
    """Raised when a member's size or SHA-256 differs from what the manifest pins."""


class UnsafeMemberError(BundleError):
    """Base class of the refusals of a member that could write outside its folder."""


class PathEscapeError(UnsafeMemberError):
    """Raised when a member's name is absolute or climbs out with ``..``."""


class SpecialMemberError(UnsafeMemberError):
    """Raised when a member is a link, device, fifo or folder rather than a regular file."""


class BundleLimitError(BundleError):
    """Base class of the refusals of a bundle that is too big."""


class TooManyMembersError(BundleLimitError):
    """Raised when a bundle holds more members than the limits allow."""


class MemberTooLargeError(BundleLimitError):
    """Raised when a member, the manifest or the whole bundle is larger than allowed."""


class UnlistedMemberError(BundleError):
    """Raised when a member is present that the manifest does not list."""


class MissingMemberError(BundleError):
    """Raised when the manifest lists a member the bundle does not hold."""


class DuplicateIdError(BundleError):
    """Raised when an id appears twice in a manifest, or a member name twice in the tar."""


class ReplayError(BundleError):
    """Raised when a different bundle's sequence number is not newer than the last one."""


class WrongServerError(BundleError):
    """Raised when a manifest names another server (or workstation) than the pinned one."""


# -- limits and manifests -------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Caps checked while a bundle is read, before any member is kept."""

    max_members: int
    max_member_bytes: int
    max_total_bytes: int
    max_manifest_bytes: int = 32 * 1024 * 1024
    max_signature_bytes: int = 64 * 1024


EXPORT_LIMITS = Limits(max_members=100_000, max_member_bytes=4 << 30, max_total_bytes=256 << 30)
REPLY_LIMITS = Limits(
    max_members=20_000,
    max_member_bytes=64 << 20,
    max_total_bytes=2 << 30,
    max_manifest_bytes=8 << 20,
)


@dataclass(frozen=True)
class SourceEntry:
    """A source in an export bundle: its public key travels as ``keys/<id>.asc``."""

    id: str
    designation: str
    key_fingerprint: str
    created_day: dt.date
    size: int
    sha256: str

    @property
    def member(self) -> str:
        return f"keys/{self.id}.asc"


@dataclass(frozen=True)
class ExportItem:
    """One submission ciphertext in an export bundle: ``submissions/<id>.gpg``."""

    id: str
    kind: str
    report_id: str
    source_id: str
    created_day: dt.date
    urgent: bool
    size: int
    sha256: str

    @property
    def member(self) -> str:
        return f"submissions/{self.id}.gpg"


@dataclass(frozen=True)
class ExportManifest:
    """What the server signed: the pending submissions and their sources' keys."""

    schema: int
    server_id: str
    sequence: int
    created_day: dt.date
    sources: tuple[SourceEntry, ...]
    items: tuple[ExportItem, ...]


@dataclass(frozen=True)
class ReplyEntry:
    """One reply ciphertext in a reply bundle: ``replies/<id>.gpg``."""

    id: str
    source_id: str
    size: int
    sha256: str

    @property
    def member(self) -> str:
        return f"replies/{self.id}.gpg"


@dataclass(frozen=True)
class ReplyManifest:
    """What the workstation signed: replies, and the submissions it has imported."""

    schema: int
    workstation_id: str
    server_id: str
    sequence: int
    created_day: dt.date
    replies: tuple[ReplyEntry, ...]
    acknowledged: tuple[str, ...]


@dataclass(frozen=True)
class ReplyFile:
    """A reply ciphertext the workstation puts into a reply bundle."""

    id: str
    source_id: str
    ciphertext: Path


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
) -> ReplyManifest:
    """Write a reply bundle signed by the workstation key ``signing_fingerprint``.

    :param replies: ciphertexts already encrypted to the source key and the team key.
    :param acknowledged: ids of the export items the workstation has imported.
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
        schema=SCHEMA_VERSION,
        workstation_id=_fpr(signing_fingerprint, "workstation_id"),
        server_id=_fpr(server_id, "server_id"),
        sequence=_positive(sequence, "sequence"),
        created_day=today or dt.datetime.now(dt.UTC).date(),
        replies=tuple(entries),
        acknowledged=tuple(_uuid(a, "acknowledged id") for a in acknowledged),
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
        _fsync_dir(output.parent)
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


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
            manifest = _read_members(f, total, gpg, signer, role, parse, limits, folder, progress)
        if progress is not None:
            progress(total, total)
    except BaseException:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return manifest[0], folder, manifest[1]


def _read_members(
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
    try:
        tar = tarfile.open(fileobj=f, mode="r:")
    except tarfile.ReadError as e:
        raise BundleFormatError(f"not a bundle: the file is not a tar archive ({e})") from e
    manifest: _Manifest | None = None
    manifest_sha = ""
    expected: dict[str, tuple[int, str]] = {}
    seen: set[str] = set()
    manifest_bytes = b""
    count = 0
    with tar:
        for info in _members(tar):
            if progress is not None:
                progress(min(f.tell(), total), total)
            count += 1
            name = _check_member(info, count, limits)
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
                manifest_bytes = _read_all(tar, info)
                continue
            if count == 2:
                if name != SIGNATURE:
                    raise BundleFormatError(f"the bundle is not signed: no {SIGNATURE} second")
                if info.size > limits.max_signature_bytes:
                    raise MemberTooLargeError(f"the signature is too large ({info.size} bytes)")
                _verify_signature(gpg, manifest_bytes, _read_all(tar, info), signer, role)
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
            if _copy_member(tar, info, folder) != sha:
                raise HashMismatchError(
                    f"the member {name} does not match its SHA-256 in the manifest "
                    "(tampered or damaged)"
                )
        if count < 2 or manifest is None:
            raise TruncatedBundleError("the bundle ends before its manifest and signature")
        missing = sorted(set(expected) - seen)
        _check_end(f, tar, total, missing)
        if missing:
            raise MissingMemberError(
                f"the bundle lacks {len(missing)} member(s) the manifest lists, e.g. {missing[0]}"
            )
    return manifest, manifest_sha


def _members(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            info = tar.next()
        except tarfile.ReadError as e:
            if "unexpected end of data" in str(e):
                raise TruncatedBundleError("the bundle file ends early, between two members") from e
            raise BundleFormatError(f"the bundle is damaged: {e}") from e
        if info is None:
            return
        yield info


def _check_member(info: tarfile.TarInfo, count: int, limits: Limits) -> str:
    name = info.name
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ".." in parts or re.match(r"^[A-Za-z]:", name):
        raise PathEscapeError(f"the member {name!r} would be written outside the bundle folder")
    if info.type not in (tarfile.REGTYPE, tarfile.AREGTYPE):
        what = (
            "a link"
            if info.issym() or info.islnk()
            else "a folder"
            if info.isdir()
            else "a device or fifo"
            if info.isdev()
            else "not a regular file"
        )
        raise SpecialMemberError(f"the member {name!r} is {what}; only regular files are allowed")
    if count > limits.max_members + 2:
        raise TooManyMembersError(f"the bundle holds more than {limits.max_members} members")
    return name


def _read_all(tar: tarfile.TarFile, info: tarfile.TarInfo) -> bytes:
    reader = tar.extractfile(info)
    assert reader is not None  # a regular file always has a reader
    try:
        data = reader.read()
    except (tarfile.ReadError, OSError) as e:
        raise TruncatedBundleError(f"the bundle ends in the middle of {info.name}") from e
    if len(data) != info.size:
        raise TruncatedBundleError(f"the bundle ends in the middle of {info.name}")
    return data


def _copy_member(tar: tarfile.TarFile, info: tarfile.TarInfo, folder: Path | None) -> str:
    """Hash a member while copying it into ``folder``; return its SHA-256."""
    reader = tar.extractfile(info)
    assert reader is not None
    digest = hashlib.sha256()
    try:
        with contextlib.ExitStack() as stack:
            out: IO[bytes] | None = None
            if folder is not None:
                target = folder / info.name
                target.parent.mkdir(mode=0o700, exist_ok=True)
                out = stack.enter_context(target.open("xb"))
            remaining = info.size
            while remaining > 0:
                try:
                    chunk = reader.read(min(_CHUNK, remaining))
                except (tarfile.ReadError, OSError):
                    chunk = b""
                if not chunk:
                    raise TruncatedBundleError(f"the bundle ends in the middle of {info.name}")
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
                remaining -= len(chunk)
    except OSError as e:
        # Writing the verified copy failed: the disk of the importer, not the bundle.
        raise BundleError(f"cannot keep {info.name} in the work folder: {e.strerror}") from e
    return digest.hexdigest()


def _check_end(f: IO[bytes], tar: tarfile.TarFile, total: int, missing: list[str]) -> None:
    """Require a proper end-of-archive: two zero blocks, and only zeros after them."""
    f.seek(tar.offset)
    tail = f.read(2 * _BLOCK)
    if len(tail) < 2 * _BLOCK or tail.strip(b"\0"):
        where = f"before {missing[0]}" if missing else "before its end-of-archive mark"
        raise TruncatedBundleError(f"the bundle file ends early or is damaged ({where})")
    while chunk := f.read(_CHUNK):
        if chunk.strip(b"\0"):
            raise BundleFormatError("the bundle has data after its end-of-archive mark")


# What to do when the pinned key is missing from the keyring, on each machine.
_MISSING_KEY_HINTS = {
    "workstation": "register it again with `securedrop-wm workstation-key set FILE`",
    "server": "import the server's public key into the workstation's GnuPG home "
    "(`gpg --homedir GNUPG-HOME --import server.asc`)",
}


def _verify_signature(
    gpg: GnuPG, manifest: bytes, signature: bytes, signer: str, role: str
) -> None:
    """Check the detached signature with gpg's machine-readable status lines."""
    with tempfile.TemporaryDirectory(prefix="sdwm-sig-") as tmp:
        sig_path = Path(tmp) / "manifest.sig"
        sig_path.write_bytes(signature)
        try:
            result = subprocess.run(
                [
                    _GPG,
                    "--homedir",
                    str(gpg.home),
                    "--batch",
                    "--no-tty",
                    "--status-fd",
                    "1",
                    "--no-auto-key-retrieve",
                    "--verify",
                    str(sig_path),
                    "-",
                ],
                input=manifest,
                capture_output=True,
                timeout=120,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise BundleError(f"gpg could not be run to check the signature: {e}") from e
    status = [
        line.split()[1:]
        for line in result.stdout.decode("utf-8", "replace").splitlines()
        if line.startswith("[GNUPG:] ") and len(line.split()) > 1
    ]
    keywords = [s[0] for s in status]
    if "PLAINTEXT" in keywords:
        raise BadSignatureError("the signature is not a detached signature of the manifest")
    if keywords.count("NEWSIG") > 1:
        raise BadSignatureError("the manifest carries more than one signature")
    for s in status:
        if s[0] == "ERRSIG" and len(s) > 6 and s[6] == "9":
            keyid = s[1].upper()
            if signer.endswith(keyid):
                raise UnknownSignerError(
                    f"signed by the pinned {role} key {signer}, but that key is not in "
                    f"this keyring: {_MISSING_KEY_HINTS.get(role, 'import it first')}"
                )
            raise UnknownSignerError(
                f"signed by an unknown key {keyid}, not by the pinned {role} key {signer}"
            )
        if s[0] == "BADSIG":
            raise BadSignatureError(
                "the signature does not match the manifest: the bundle was tampered with"
            )
        if s[0] in ("EXPKEYSIG", "REVKEYSIG", "EXPSIG"):
            what = {"EXPKEYSIG": "has expired", "REVKEYSIG": "is revoked", "EXPSIG": "expired"}
            raise BadSignatureError(f"the signing key or signature {what[s[0]]} ({s[1]})")
    valid = [s for s in status if s[0] == "VALIDSIG" and len(s) >= 11]
    if not valid or "GOODSIG" not in keywords:
        raise BadSignatureError("the manifest has no valid signature (missing or damaged)")
    primary = valid[0][10].upper()
    if primary != signer and valid[0][1].upper() != signer:
        raise UnknownSignerError(
            f"signed by key {primary}, not by the pinned {role} key {signer}: refused"
        )
    if valid[0][9] != "00":
        raise BadSignatureError("the signature is not a signature over the manifest's bytes")


# -- manifests ------------------------------------------------------------------------


def _load_json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # bad UTF-8 or JSON, huge numbers, deep nesting
        raise BundleFormatError(f"the manifest is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise BundleFormatError("the manifest is not a JSON object")
    return value


def _check_header(raw: dict[str, Any], expected_format: str) -> int:
    fmt = raw.get("format")
    if fmt != expected_format:
        raise BundleFormatError(
            f"this is not a {expected_format} bundle (its manifest says format {fmt!r})"
        )
    schema = raw.get("schema")
    if not isinstance(schema, int) or isinstance(schema, bool) or schema not in SUPPORTED_SCHEMAS:
        raise UnknownSchemaError(
            f"unknown manifest schema version {schema!r}; this version reads "
            f"{', '.join(map(str, SUPPORTED_SCHEMAS))} (upgrade securedrop-wm?)"
        )
    return schema


def _export_members(
    raw: dict[str, Any], signer: str, limits: Limits
) -> tuple[ExportManifest, dict[str, tuple[int, str]]]:
    schema = _check_header(raw, EXPORT_FORMAT)
    server_id = _fpr(_get(raw, "server_id", str), "server_id")
    if server_id != signer:
        raise WrongServerError(f"the manifest names server {server_id} but {signer} signed it")
    sources_raw = _get(raw, "sources", list)
    items_raw = _get(raw, "items", list)
    if len(sources_raw) + len(items_raw) > limits.max_members:
        raise TooManyMembersError(f"the manifest lists more than {limits.max_members} members")
    sources = tuple(
        SourceEntry(
            id=_uuid(_get(s, "id", str), "source id"),
            designation=_text(_get(s, "designation", str), "designation", 80),
            key_fingerprint=_fpr(_get(s, "key_fingerprint", str), "key_fingerprint"),
            created_day=_day(_get(s, "created_day", str)),
            size=_size(_get(s, "size", int)),
            sha256=_sha(_get(s, "sha256", str)),
        )
        for s in (_obj(x, "source") for x in sources_raw)
    )
    items = tuple(
        ExportItem(
            id=_uuid(_get(i, "id", str), "item id"),
            kind=_kind(_get(i, "kind", str)),
            report_id=_uuid(_get(i, "report_id", str), "report id"),
            source_id=_uuid(_get(i, "source_id", str), "source id"),
            created_day=_day(_get(i, "created_day", str)),
            urgent=_get(i, "urgent", bool),
            size=_size(_get(i, "size", int)),
            sha256=_sha(_get(i, "sha256", str)),
        )
        for i in (_obj(x, "item") for x in items_raw)
    )
    _check_unique((s.id for s in sources), "source id")
    _check_unique((i.id for i in items), "item id")
    known = {s.id for s in sources}
    for item in items:
        if item.source_id not in known:
            raise BundleFormatError(f"item {item.id} refers to a source not in the bundle")
    manifest = ExportManifest(
        schema=schema,
        server_id=server_id,
        sequence=_positive(_get(raw, "sequence", int), "sequence"),
        created_day=_day(_get(raw, "created_day", str)),
        sources=sources,
        items=items,
    )
    members = {s.member: (s.size, s.sha256) for s in sources}
    members.update({i.member: (i.size, i.sha256) for i in items})
    return manifest, members


def _reply_members(
    raw: dict[str, Any], signer: str, limits: Limits
) -> tuple[ReplyManifest, dict[str, tuple[int, str]]]:
    schema = _check_header(raw, REPLIES_FORMAT)
    workstation_id = _fpr(_get(raw, "workstation_id", str), "workstation_id")
    if workstation_id != signer:
        raise WrongServerError(
            f"the manifest names workstation {workstation_id} but {signer} signed it"
        )
    replies_raw = _get(raw, "replies", list)
    acks_raw = _get(raw, "acknowledged", list)
    if len(replies_raw) > limits.max_members or len(acks_raw) > 10 * limits.max_members:
        raise TooManyMembersError(f"the manifest lists more than {limits.max_members} replies")
    replies = tuple(
        ReplyEntry(
            id=_uuid(_get(r, "id", str), "reply id"),
            source_id=_uuid(_get(r, "source_id", str), "source id"),
            size=_size(_get(r, "size", int)),
            sha256=_sha(_get(r, "sha256", str)),
        )
        for r in (_obj(x, "reply") for x in replies_raw)
    )
    acknowledged = tuple(
        _uuid(a if isinstance(a, str) else "", "acknowledged id") for a in acks_raw
    )
    _check_unique((r.id for r in replies), "reply id")
    _check_unique(acknowledged, "acknowledged id")
    manifest = ReplyManifest(
        schema=schema,
        workstation_id=workstation_id,
        server_id=_fpr(_get(raw, "server_id", str), "server_id"),
        sequence=_positive(_get(raw, "sequence", int), "sequence"),
        created_day=_day(_get(raw, "created_day", str)),
        replies=replies,
        acknowledged=acknowledged,
    )
    return manifest, {r.member: (r.size, r.sha256) for r in replies}


def _export_json(m: ExportManifest) -> bytes:
    return _dump(
        {
            "format": EXPORT_FORMAT,
            "schema": m.schema,
            "server_id": m.server_id,
            "sequence": m.sequence,
            "created_day": m.created_day.isoformat(),
            "sources": [
                {
                    "id": s.id,
                    "designation": s.designation,
                    "key_fingerprint": s.key_fingerprint,
                    "created_day": s.created_day.isoformat(),
                    "size": s.size,
                    "sha256": s.sha256,
                }
                for s in m.sources
            ],
            "items": [
                {
                    "id": i.id,
                    "kind": i.kind,
                    "report_id": i.report_id,
                    "source_id": i.source_id,
                    "created_day": i.created_day.isoformat(),
                    "urgent": i.urgent,
                    "size": i.size,
                    "sha256": i.sha256,
                }
                for i in m.items
            ],
        }
    )


def _reply_json(m: ReplyManifest) -> bytes:
    return _dump(
        {
            "format": REPLIES_FORMAT,
            "schema": m.schema,
            "workstation_id": m.workstation_id,
            "server_id": m.server_id,
            "sequence": m.sequence,
            "created_day": m.created_day.isoformat(),
            "replies": [
                {"id": r.id, "source_id": r.source_id, "size": r.size, "sha256": r.sha256}
                for r in m.replies
            ],
            "acknowledged": list(m.acknowledged),
        }
    )


def _dump(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1).encode("utf-8")


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BundleFormatError(f"the manifest has a {what} that is not a JSON object")
    return value


def _get(obj: dict[str, Any], name: str, typ: type[Any]) -> Any:
    value = obj.get(name)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise BundleFormatError(f"the manifest field {name!r} is missing or not a {typ.__name__}")
    return value


def _uuid(value: str, what: str) -> str:
    if not _UUID.match(value):
        raise BundleFormatError(f"{what} {value!r} is not a lowercase UUID")
    return value


def _fpr(value: str, what: str) -> str:
    fpr = value.replace(" ", "").upper()
    if not _FPR.match(fpr):
        raise BundleFormatError(f"{what} {value!r} is not a 40-hex-digit fingerprint")
    return fpr


def _sha(value: str) -> str:
    if not _SHA256.match(value):
        raise BundleFormatError(f"{value!r} is not a lowercase hex SHA-256")
    return value


def _size(value: int) -> int:
    if value < 0:
        raise BundleFormatError(f"a member size of {value} bytes is impossible")
    return value


def _positive(value: int, what: str) -> int:
    if not 0 < value < 2**62:
        raise BundleFormatError(f"{what} must be a positive integer, not {value}")
    return value


def _day(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BundleFormatError(f"{value!r} is not a day (YYYY-MM-DD)") from None


def _kind(value: str) -> str:
    if value not in _KINDS:
        raise BundleFormatError(f"unknown item kind {value!r} (message or file)")
    return value


def _text(value: str, what: str, limit: int) -> str:
    if not value or len(value) > limit or any(ord(c) < 32 for c in value):
        raise BundleFormatError(f"the {what} {value[:limit]!r} is empty, too long or unprintable")
    return value


def _check_unique(values: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise DuplicateIdError(f"the {what} {value} appears twice in the manifest")
        seen.add(value)


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
