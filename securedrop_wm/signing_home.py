"""The server's signing key, in a GnuPG home of its own.

The source UI encrypts with the public keys of ``gpg_home`` and needs no secret key;
the signing key, which the workstation pins and trusts for every export bundle, lives in
``signing_gpg_home``, which only the transfer API and the key commands open. A deployment
hides that folder from the source UI's processes (docs/deploy.md).

A data dir made before this split holds the signing key in ``gpg_home``: the first
:func:`open_signer` moves it (imports it here, checks it, then deletes the secret part
there), once, under a lock. Its public key stays in ``gpg_home``.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .crypto import GnuPG
from .errors import KeyMissingError
from .settings import Settings


def open_signer(settings: Settings, main: GnuPG) -> GnuPG:
    """The GnuPG home holding the secret signing key, moved there from ``main`` if a
    data dir made before the split still has it.

    :raises KeyMissingError: when neither home holds it.
    """
    fingerprint = settings.signing_fingerprint
    signer = GnuPG(settings.signing_gpg_home, settings.gpg_binary)
    try:
        with _locked(settings.signing_gpg_home):
            if not signer.has_secret_key(fingerprint):
                _move(fingerprint, main, signer)
    except BaseException:
        signer.close()
        raise
    return signer


def create_signing_key(home: Path, main: GnuPG, binary: str = "gpg") -> str:
    """Make the server's signing key in ``home`` (no passphrase: the transfer API signs
    unattended) and put its public half in ``main``; return its fingerprint."""
    signer = GnuPG(home, binary)
    try:
        fingerprint = signer.create_key("securedrop-wm server signing key", None)
        main.import_keys(signer.export_public_key(fingerprint))
    finally:
        signer.close()
    return fingerprint


def _move(fingerprint: str, main: GnuPG, signer: GnuPG) -> None:
    if not main.has_secret_key(fingerprint):
        raise KeyMissingError(
            f"the server's signing key {fingerprint} is in neither {signer.home} nor {main.home}"
        )
    signer.import_keys(main.export_secret_key(fingerprint))
    if not signer.has_secret_key(fingerprint):
        raise KeyMissingError(f"the signing key {fingerprint} did not import into {signer.home}")
    main.delete_secret_key(fingerprint)


class _locked:
    """An exclusive lock on a folder, for as long as the block runs."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def __enter__(self) -> None:
        self._fd = os.open(self._folder, os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)
