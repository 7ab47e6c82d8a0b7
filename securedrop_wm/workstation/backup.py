"""Backups of the workstation, their restore on a fresh machine, and the team key's export.

A backup is one OpenPGP message holding a tar archive of: a consistent copy of the case
database (SQLite's online backup API, the audit chain included), the files and outbox
folders, the GnuPG home (team, signing and source keys), ``config.toml`` and
``secrets.toml``. tar streams into gpg: no plaintext archive reaches the disk. It is
encrypted either to a backup public key (imported into a throwaway home, never the
workstation's) or under a passphrase this module generates (160 bits from
:mod:`secrets`): a passphrase a person chose is never accepted, since gpg's S2K is
iterated SHA-1 and a human passphrase would be the weakest link.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import json
import os
import secrets
import shutil
import sqlite3
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, cast

from sqlalchemy import select
from sqlalchemy.engine import make_url

from ..crypto import GnuPG, Readable
from ..errors import CryptoError, DecryptionError
from ..files import fsync_dir
from ..gpg_support import _KeyringLock
from . import audit
from .errors import WorkstationError
from .models import Backup
from .services import Workstation, open_workstation
from .settings import load_workstation_settings, read_config_values, write_config

FORMAT = 1
MANIFEST = "backup.json"
DATABASE = "cases.sqlite"
GENERATED = "generated passphrase"
ARCHIVE, TEAM_KEY = "archive", "team_key"
# Settings that name where things live: a restore puts everything in the new data dir.
PATH_SETTINGS = ("data_dir", "database_url", "gpg_home", "files_dir", "outbox_dir")
# What a GnuPG home holds that is not a key: locks, the agent's sockets, key workshops.
_GPG_SKIP = {".keyring.lock", ".keyring.gate", ".keygen", "random_seed", ".#lk"}
_PASSPHRASE_BYTES = 20  # 160 bits, 32 base32 letters
_GROUP = 4


class BackupError(WorkstationError):
    """Raised when a backup, a restore or a key export is refused or fails; says why.
    Nothing is left half-written."""


@dataclass(frozen=True)
class Protection:
    """How an archive is encrypted: to a backup public key, or under a passphrase.

    Make one with :func:`to_backup_key` or :func:`generated_passphrase`.
    """

    key_data: bytes | None = None
    fingerprint: str | None = None
    passphrase: str | None = None

    @property
    def label(self) -> str:
        """What the record and the audit log say: the key's fingerprint or GENERATED."""
        return self.fingerprint or GENERATED


def to_backup_key(key_data: bytes, fingerprint: str) -> Protection:
    """Encrypt to the public key ``fingerprint``, which ``key_data`` must hold."""
    fpr = fingerprint.replace(" ", "").upper()
    if len(fpr) != 40 or any(c not in "0123456789ABCDEF" for c in fpr):
        raise BackupError("the backup key's fingerprint must be 40 hexadecimal digits")
    return Protection(key_data=key_data, fingerprint=fpr)


def generated_passphrase() -> Protection:
    """A new passphrase of 160 bits from :mod:`secrets`, in groups of 4 letters."""
    letters = base64.b32encode(secrets.token_bytes(_PASSPHRASE_BYTES)).decode()
    return Protection(passphrase=_grouped(letters))


def _grouped(letters: str) -> str:
    return "-".join(letters[i : i + _GROUP] for i in range(0, len(letters), _GROUP))


def normalize_passphrase(typed: str) -> str:
    """The passphrase as generated, from what a person typed (case, spaces, dashes).

    :raises BackupError: it cannot be a passphrase this tool generated.
    """
    letters = "".join(c for c in typed.upper() if c not in " -\t")
    if len(letters) != 32 or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in letters):
        raise BackupError(
            "that is not a backup passphrase: it has 32 letters and digits 2-7, "
            "in groups of 4 (as the backup command printed it)"
        )
    return _grouped(letters)


class _ThrowawayGnuPG(GnuPG):
    """A GnuPG home of its own for one backup or restore, never the workstation's:
    it holds the backup key, and encrypts to it or under a generated passphrase."""

    def __init__(self, home: Path, binary: str, passphrase: str | None) -> None:
        super().__init__(home, binary)
        self._passphrase = passphrase

    def encrypt_stream(self, stream: Readable, recipients: Sequence[str], output: Path) -> None:
        """As :meth:`GnuPG.encrypt_stream`, or symmetric under the generated passphrase."""
        if self._passphrase is None:
            super().encrypt_stream(stream, recipients, output)
        else:
            self.encrypt_stream_symmetric(stream, self._passphrase, output)


@contextlib.contextmanager
def _throwaway(binary: str, protection: Protection) -> Iterator[tuple[_ThrowawayGnuPG, list[str]]]:
    """A throwaway home ready to encrypt as ``protection`` says, and its recipients."""
    home = Path(tempfile.mkdtemp(prefix="sdwm-bk-", dir="/tmp"))  # short: agent socket
    gpg = _ThrowawayGnuPG(home, binary, protection.passphrase)
    try:
        recipients: list[str] = []
        if protection.fingerprint is not None:
            try:
                found = gpg.import_keys(protection.key_data or b"")
                if protection.fingerprint not in found:
                    raise BackupError(
                        f"the key file does not hold the backup key {protection.fingerprint}"
                    )
                gpg.require_encryption_keys([protection.fingerprint])
            except CryptoError as e:
                raise BackupError(f"the backup key cannot be used: {e}") from None
            recipients = [protection.fingerprint]
        yield gpg, recipients
    finally:
        gpg.close()
        shutil.rmtree(home, ignore_errors=True)


@dataclass(frozen=True)
class Written:
    """A backup or key export written: where, how protected, how large."""

    path: Path
    protection: Protection
    size: int


def create_backup(ws: Workstation, output: Path, actor: str, protection: Protection) -> Written:
    """Write the encrypted backup archive to ``output`` (a new file), record and audit it.

    :raises BackupError: ``output`` exists, the key cannot be used, or writing failed
        (then nothing is left at ``output``).
    """
    settings = ws.settings
    database = _database_bytes(settings.database_url)

    def fill(tar: tarfile.TarFile) -> None:
        manifest = {"format": FORMAT, "created_at": ws.now().isoformat(), "by": actor}
        _add_bytes(tar, MANIFEST, json.dumps(manifest).encode())
        _add_bytes(tar, DATABASE, database)
        config = settings.config_path
        for name in ("config.toml", "secrets.toml"):
            if (config.parent / name).is_file():
                _add_bytes(tar, name, (config.parent / name).read_bytes())
        _add_tree(tar, settings.files_dir, "files")
        _add_tree(tar, settings.outbox_dir, "outbox")
        with _KeyringLock(settings.gpg_home).hold():
            _add_tree(tar, settings.gpg_home, "gnupg", skip=_GPG_SKIP)

    size = _write_encrypted(ws, output, protection, fill, None)
    _record(ws, actor, ARCHIVE, protection, output, size)
    return Written(output, protection, size)


def export_team_key(
    ws: Workstation,
    output: Path,
    actor: str,
    protection: Protection,
    key_passphrase: str | None = None,
) -> Written:
    """Write the team's secret key, encrypted as ``protection`` says, to ``output``.

    The key keeps its own passphrase inside the message, if it has one (gpg-agent needs
    it, ``key_passphrase``, to export the key at all).

    :raises BackupError: as :func:`create_backup`, or the key cannot be exported.
    """
    try:
        armored = ws.gpg.export_secret_key(ws.team_fingerprint(), key_passphrase).encode()
    except CryptoError as e:
        raise BackupError(f"the team key could not be exported: {e}") from None
    size = _write_encrypted(ws, output, protection, None, armored)
    _record(ws, actor, TEAM_KEY, protection, output, size)
    return Written(output, protection, size)


def _write_encrypted(
    ws: Workstation,
    output: Path,
    protection: Protection,
    fill: Callable[[tarfile.TarFile], None] | None,
    data: bytes | None,
) -> int:
    """Encrypt a tar stream (``fill`` adds its members) or ``data`` into a temp file
    beside ``output``, then link it into place, never replacing a file."""
    if output.exists():
        raise BackupError(f"{output} exists already; refusing to overwrite it")
    if not output.parent.is_dir():
        raise BackupError(f"the folder {output.parent} does not exist")
    temp = output.with_name(f".{output.name}.{secrets.token_hex(8)}.tmp")
    try:
        with _throwaway(ws.settings.gpg_binary, protection) as (gpg, recipients):
            if fill is None:
                gpg.encrypt_bytes(data or b"", recipients, temp)
            else:
                writer = gpg.start_encryption(recipients, temp)
                try:
                    sink = cast(IO[bytes], writer)  # tar's stream mode only writes to it
                    with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                        fill(tar)
                    writer.close()
                except BaseException:
                    writer.abort()
                    raise
        with temp.open("rb") as f:
            os.fsync(f.fileno())
        try:
            os.link(temp, output)
        except FileExistsError:
            raise BackupError(f"{output} exists already; refusing to overwrite it") from None
        fsync_dir(output.parent)
        return output.stat().st_size
    except (CryptoError, OSError) as e:
        raise BackupError(f"the backup could not be written: {e}") from None
    finally:
        temp.unlink(missing_ok=True)


def _record(
    ws: Workstation, actor: str, kind: str, protection: Protection, output: Path, size: int
) -> None:
    now = ws.now()
    what = "backup" if kind == ARCHIVE else "team key export"
    to = protection.label if protection.fingerprint is None else f"key {protection.label}"
    with ws.write() as db:
        db.add(
            Backup(at=now, actor=actor, kind=kind, protection=protection.label, name=output.name)
        )
        action = "backup" if kind == ARCHIVE else "team_key_exported"
        detail = f"{what} {output.name} ({size} bytes), encrypted to {to}"
        audit.record(db, now, actor, action, detail=detail)


def _database_bytes(url: str) -> bytes:
    """A consistent copy of the SQLite case database, through the online backup API."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        raise BackupError("only an SQLite case database can be backed up")
    source = sqlite3.connect(f"file:{parsed.database}?mode=ro", uri=True)
    copy = sqlite3.connect(":memory:")
    try:
        source.backup(copy)
        return copy.serialize()
    except sqlite3.Error as e:
        raise BackupError(f"the case database could not be copied: {e}") from None
    finally:
        copy.close()
        source.close()


def _tarinfo(name: str, kind: bytes, size: int = 0, mode: int = 0o600) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, size, mode
    info.mtime = int(dt.datetime.now(dt.UTC).timestamp()) // 86_400 * 86_400
    return info


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_tarinfo(name, tarfile.REGTYPE, len(data)), io.BytesIO(data))


def _add_tree(tar: tarfile.TarFile, root: Path, name: str, skip: set[str] | None = None) -> None:
    """Add the folder ``root`` as ``name``: its folders and regular files, nothing else."""
    if not root.is_dir():
        return
    tar.addfile(_tarinfo(name, tarfile.DIRTYPE, mode=0o700))
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in (skip or set()))
        relative = PurePosixPath(name, Path(folder).relative_to(root).as_posix())
        for d in dirs:
            if not Path(folder, d).is_symlink():
                tar.addfile(_tarinfo(str(relative / d), tarfile.DIRTYPE, mode=0o700))
        for f in sorted(files):
            path = Path(folder, f)
            st = path.lstat()
            if f in (skip or set()) or not stat.S_ISREG(st.st_mode):
                continue  # sockets, symbolic links, locks
            with path.open("rb") as data:
                info = _tarinfo(str(relative / f), tarfile.REGTYPE, st.st_size)
                tar.addfile(info, data)


@dataclass(frozen=True)
class Restored:
    """A restored data dir: its config and the audit events it holds."""

    config_path: Path
    events: int


def restore_backup(
    archive: Path,
    data_dir: Path,
    *,
    passphrase: str | None = None,
    secret_key: bytes | None = None,
    key_passphrase: str | None = None,
    gpg_binary: str = "gpg",
) -> Restored:
    """Restore ``archive`` into ``data_dir``, which must be missing or empty.

    Everything is decrypted and checked in a folder beside ``data_dir`` (gpg checks the
    archive's integrity, the audit chain must verify), then moved into place in one
    rename: a refusal leaves nothing behind.

    :param passphrase: the generated passphrase, or ``secret_key`` (armored) with
        ``key_passphrase`` when the archive was encrypted to a backup key.
    :raises BackupError: wrong passphrase or key, damaged or tampered archive, target
        not empty.
    """
    if (passphrase is None) == (secret_key is None):
        raise BackupError("give either the backup passphrase or the backup secret key")
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty: restore into a new, empty folder")
    if not archive.is_file():
        raise BackupError(f"{archive} is not a file")
    data_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = data_dir.parent / f".{data_dir.name}.restore-{secrets.token_hex(6)}"
    staging.mkdir(mode=0o700)
    try:
        plain = staging / "archive.tar"
        _decrypt(archive, plain, passphrase, secret_key, key_passphrase, gpg_binary)
        target = staging / "data"
        target.mkdir(mode=0o700)
        _extract(plain, target)
        plain.unlink()
        config = target / "config.toml"
        _local_paths(config)
        restored_ws = open_workstation(load_workstation_settings(config, environ={}))
        try:
            with restored_ws.sessions() as db:
                events = audit.verify_log(db)
        finally:
            restored_ws.close()
        if data_dir.exists():
            data_dir.rmdir()
        os.rename(target, data_dir)
        fsync_dir(data_dir.parent)
    except WorkstationError as e:
        if isinstance(e, BackupError):
            raise
        raise BackupError(f"the restored data does not check out: {e}") from None
    except (CryptoError, OSError, tarfile.TarError, ValueError) as e:
        raise BackupError(f"the restore failed: {e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Restored(data_dir / "config.toml", events)


def _decrypt(
    archive: Path,
    plain: Path,
    passphrase: str | None,
    secret_key: bytes | None,
    key_passphrase: str | None,
    binary: str,
) -> None:
    home = Path(tempfile.mkdtemp(prefix="sdwm-rs-", dir="/tmp"))  # short: agent socket
    gpg = GnuPG(home, binary)
    try:
        if secret_key is not None:
            try:
                gpg.import_keys(secret_key)
            except CryptoError as e:
                raise BackupError(f"the backup key cannot be read: {e}") from None
        given = normalize_passphrase(passphrase) if passphrase is not None else key_passphrase
        try:
            gpg.decrypt_to_file(archive, plain, passphrase=given)
        except DecryptionError as e:
            raise BackupError(
                "the archive cannot be decrypted: wrong passphrase or key, or the archive "
                f"is truncated or was altered ({e})"
            ) from None
    finally:
        gpg.close()
        shutil.rmtree(home, ignore_errors=True)


def _extract(plain: Path, target: Path) -> None:
    """Extract the folders and regular files of a backup archive, refusing anything else."""
    seen_manifest = False
    with tarfile.open(plain, mode="r:") as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if not parts or member.name.startswith("/") or ".." in parts:
                raise BackupError(f"the archive holds a bad name: {member.name!r}")
            path = target.joinpath(*parts)
            if member.isdir():
                path.mkdir(mode=0o700, exist_ok=True)
            elif member.isreg():
                source = tar.extractfile(member)
                if source is None:
                    raise BackupError(f"the archive's {member.name} cannot be read")
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(source, out)
                if member.name == MANIFEST:
                    seen_manifest = json.loads(path.read_text()).get("format") == FORMAT
            else:
                raise BackupError(f"the archive holds an unexpected entry: {member.name!r}")
    if not seen_manifest or not (target / DATABASE).is_file():
        raise BackupError("this is not a securedrop-wm workstation backup")
    (target / MANIFEST).unlink()


def _local_paths(config: Path) -> None:
    """Take out of the restored config the settings naming where things lived: here,
    everything lives in the restored data dir."""
    values = read_config_values(config)
    if any(name in values for name in PATH_SETTINGS):
        write_config(config, {k: v for k, v in values.items() if k not in PATH_SETTINGS})


def record_restore(config: Path, archive: Path, actor: str) -> None:
    """Audit the restore in the restored workstation's own log."""
    ws = open_workstation(load_workstation_settings(config, environ={}))
    try:
        with ws.write() as db:
            audit.record(db, ws.now(), actor, "restored", detail=f"restored from {archive.name}")
    finally:
        ws.close()


@dataclass(frozen=True)
class Reminder:
    """A backup is due: the last one (None: never) and the setting's number of days."""

    last: dt.datetime | None
    days: int


def backup_due(ws: Workstation) -> Reminder | None:
    """Whether a backup is due: never made, or older than ``backup_reminder_days``."""
    with ws.sessions() as db:
        last = db.scalar(
            select(Backup.at).where(Backup.kind == ARCHIVE).order_by(Backup.at.desc()).limit(1)
        )
    days = ws.settings.backup_reminder_days
    if last is not None and ws.now() - last <= dt.timedelta(days=days):
        return None
    return Reminder(last, days)
