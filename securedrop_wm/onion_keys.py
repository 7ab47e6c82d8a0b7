"""Onion service key dirs: service keys and client authorization files.

A service's keys live in a *key dir* laid out like Tor's own ``HiddenServiceDir``
(``hs_ed25519_secret_key``, ``hs_ed25519_public_key``, ``hostname``,
``authorized_clients/<name>.auth``), so a key made here can be handed to a tor that
owns it through its torrc, and the other way round. Nothing here talks to tor; that is
:mod:`securedrop_wm.onion`, which also re-exports the public names of this module.
See ``docs/onion.md``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from .errors import ClientKeyError, KeyFileError
from .files import write_exclusively

__all__ = [
    "AuthorizedClient",
    "ClientKeypair",
    "add_authorized_client",
    "ensure_service_key",
    "generate_client_keypair",
    "list_authorized_clients",
    "load_or_create_key",
    "remove_authorized_client",
    "service_address",
    "write_public_files",
]

SECRET_KEY_FILE = "hs_ed25519_secret_key"  # noqa: S105 (a file name)
PUBLIC_KEY_FILE = "hs_ed25519_public_key"
HOSTNAME_FILE = "hostname"
CLIENTS_DIR = "authorized_clients"

# Tor's tagged key files: a 32-byte NUL-padded header, then the key.
_SECRET_HEADER = b"== ed25519v1-secret: type0 ==\x00\x00\x00"
_PUBLIC_HEADER = b"== ed25519v1-public: type0 ==\x00\x00\x00"
_CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_SERVICE_ID = re.compile(r"[a-z2-7]{56}")


@dataclass(frozen=True)
class AuthorizedClient:
    """A client allowed to reach a service with client authorization."""

    name: str
    #: x25519 public key, base32 without padding, as Tor writes it.
    public_key: str


@dataclass(frozen=True)
class ClientKeypair:
    """An x25519 key pair for v3 client authorization.

    The public half goes to the service (:meth:`Onion.add_client`); the private
    half stays with the client, in Tor's ``ClientOnionAuthDir`` or Tor Browser.
    """

    #: base32 without padding, as in a ``.auth_private`` file. A secret.
    private_key: str
    #: base32 without padding, as in an ``authorized_clients/*.auth`` file.
    public_key: str

    def auth_private_line(self, address: str) -> str:
        """The line of a client's ``<name>.auth_private`` file for ``address``."""
        service_id = address.removesuffix(".onion")
        return f"{service_id}:descriptor:x25519:{self.private_key}\n"


def generate_client_keypair() -> ClientKeypair:
    """Make a fresh x25519 key pair for v3 client authorization."""
    key = X25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return ClientKeypair(_b32encode(private), _b32encode(public))


def service_address(key_dir: Path) -> str | None:
    """The ``.onion`` address a key dir publishes, if it is known yet."""
    try:
        hostname = (Path(key_dir) / HOSTNAME_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyFileError(f"cannot read {key_dir / HOSTNAME_FILE}: {exc}") from exc
    if not _SERVICE_ID.fullmatch(hostname.removesuffix(".onion")):
        raise KeyFileError(f"{key_dir / HOSTNAME_FILE} does not hold an onion address")
    return hostname


def ensure_service_key(key_dir: Path) -> str:
    """Make the service key in ``key_dir`` if it has none yet; return its ``.onion``
    address, known before anything is published (e.g. to hand a client its key line).

    :raises KeyFileError: the key dir or key cannot be made or read.
    """
    load_or_create_key(key_dir)
    address = service_address(key_dir)
    if address is None:
        raise KeyFileError(f"{Path(key_dir) / HOSTNAME_FILE} is missing beside its key")
    return address


def list_authorized_clients(key_dir: Path) -> list[AuthorizedClient]:
    """The clients authorized in ``key_dir``, sorted by name."""
    clients_dir = Path(key_dir) / CLIENTS_DIR
    try:
        files = sorted(clients_dir.glob("*.auth"))
    except OSError as exc:
        raise KeyFileError(f"cannot list {clients_dir}: {exc}") from exc
    clients = []
    for path in files:
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise KeyFileError(f"cannot read {path}: {exc}") from exc
        auth_type, _, key = text.partition(":x25519:")
        try:
            public_key = _normalize_public_key(key)
        except ClientKeyError:
            public_key = None
        if auth_type != "descriptor" or public_key is None:
            raise KeyFileError(f"{path} is not a 'descriptor:x25519:<key>' line")
        clients.append(AuthorizedClient(path.name.removesuffix(".auth"), public_key))
    return clients


def add_authorized_client(key_dir: Path, name: str, public_key: str) -> AuthorizedClient:
    """Authorize a client in ``key_dir``; a running service learns of it on its next
    publication (:meth:`Onion.add_client` republishes at once).

    :param name: a short label such as ``alice-laptop``; letters, digits, ``_.-``.
    :param public_key: the client's x25519 public key, base32.
    :raises ClientKeyError: malformed name or key, or the name is taken.
    """
    if not _CLIENT_NAME.fullmatch(name):
        raise ClientKeyError(f"invalid client name {name!r}: use letters, digits, '_', '.', '-'")
    client = AuthorizedClient(name, _normalize_public_key(public_key))
    clients_dir = Path(key_dir) / CLIENTS_DIR
    if any(c.name == name for c in list_authorized_clients(key_dir)):
        raise ClientKeyError(f"a client named {name!r} is already authorized")
    try:
        clients_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create {clients_dir}: {exc}") from exc
    line = f"descriptor:x25519:{client.public_key}\n".encode("ascii")
    _write_new_file(clients_dir / f"{name}.auth", line)
    return client


def remove_authorized_client(key_dir: Path, name: str) -> None:
    """Remove a client's authorization from ``key_dir``.

    :raises ClientKeyError: no client of that name is authorized.
    """
    if not _CLIENT_NAME.fullmatch(name):
        raise ClientKeyError(f"invalid client name {name!r}")
    path = Path(key_dir) / CLIENTS_DIR / f"{name}.auth"
    try:
        path.unlink()
    except FileNotFoundError:
        raise ClientKeyError(f"no client named {name!r} is authorized") from None
    except OSError as exc:
        raise KeyFileError(f"cannot remove {path}: {exc}") from exc


def load_or_create_key(key_dir: Path) -> tuple[str, str | None]:
    """The service's secret key as ADD_ONION wants it, and its address if known.

    A new key is made here, not by tor, so that it is on disk before the service
    is published and its address is known up front.
    """
    key_dir = Path(key_dir)
    path = key_dir / SECRET_KEY_FILE
    try:
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create key dir {key_dir}: {exc}") from exc
    if not path.exists():
        _create_key(key_dir)
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = f.read(len(_SECRET_HEADER) + 65)
    except OSError as exc:
        raise KeyFileError(f"cannot read onion key {path}: {exc}") from exc
    if mode & 0o077:
        raise KeyFileError(f"onion key {path} is readable by other users; chmod 600 it")
    if len(data) != len(_SECRET_HEADER) + 64 or not data.startswith(_SECRET_HEADER):
        raise KeyFileError(f"{path} is not an ed25519 onion service key (corrupt?)")
    blob = base64.b64encode(data[len(_SECRET_HEADER) :]).decode("ascii")
    return blob, service_address(key_dir)


def _create_key(key_dir: Path) -> None:
    seed = os.urandom(32)
    # Tor keeps the "expanded" secret key: SHA-512 of the seed, clamped (RFC 8032).
    expanded = bytearray(hashlib.sha512(seed).digest())
    expanded[0] &= 248
    expanded[31] &= 127
    expanded[31] |= 64
    public = (
        Ed25519PrivateKey.from_private_bytes(seed)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    with contextlib.suppress(FileExistsError):  # another process made one just now
        _write_new_file(key_dir / SECRET_KEY_FILE, _SECRET_HEADER + bytes(expanded))
        write_public_files(key_dir, _onion_id(public))


def write_public_files(key_dir: Path, service_id: str) -> None:
    """Write ``hostname`` and ``hs_ed25519_public_key`` as tor would."""
    public = _b32decode(service_id.upper())[:32]
    for name, data in (
        (HOSTNAME_FILE, f"{service_id}.onion\n".encode("ascii")),
        (PUBLIC_KEY_FILE, _PUBLIC_HEADER + public),
    ):
        with contextlib.suppress(FileExistsError):
            _write_new_file(key_dir / name, data)


def _onion_id(public_key: bytes) -> str:
    version = b"\x03"
    checksum = hashlib.sha3_256(b".onion checksum" + public_key + version).digest()[:2]
    return base64.b32encode(public_key + checksum + version).decode("ascii").lower()


def _write_new_file(path: Path, data: bytes) -> None:
    """Write a 0600 file atomically; :class:`FileExistsError` if it exists."""
    try:
        write_exclusively(path, data)
    except FileExistsError:
        raise
    except OSError as exc:
        raise KeyFileError(f"cannot write {path}: {exc}") from exc


def _normalize_public_key(key: str) -> str:
    try:
        raw = _b32decode(key.strip().upper())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ClientKeyError("a client public key is 32 bytes of x25519, base32-encoded")
    return _b32encode(raw)


def _b32encode(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _b32decode(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))
