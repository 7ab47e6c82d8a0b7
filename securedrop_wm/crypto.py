"""GnuPG, through python-gnupg, in a home of our own: never a user's keyring.

Everything that encrypts streams: a caller hands over a readable stream or pushes chunks
into an :class:`EncryptingWriter`, and only ciphertext reaches the disk.

Keys record the day they were made, not the time: a seizer of the server must not be able
to tie a source's key to a moment someone watching the network saw.
:meth:`GnuPG.create_key` runs gpg with its clock held at the start of the UTC day, so
the key, its self-signatures, its revocation certificate, the keybox entry and the agent's
key files all say that day; every change to the keyring then sets the times of the files
in the GnuPG home to the start of their day. What remains: change times and the order of
inodes (as :mod:`.store` says of its folder), the order of keys in the keybox, and what
any later gpg run sets to the second until the next key change: the folder's modification
time (gpg's lock files) and the access times of what it reads (a source's secret key file
when they read a reply) unless the file system is mounted ``noatime``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import gnupg

from .errors import (
    CryptoError,
    DecryptionError,
    EncryptionError,
    KeyExpiredError,
    KeyMissingError,
    KeyUnusableError,
    OutputTooLargeError,
    StoreFullError,
)
from .store import coarsen_times

_GPG_CONF = """\
# Written by securedrop-wm. No network, no automatic key retrieval.
no-auto-key-locate
no-auto-key-retrieve
# Trust is not used (recipients are pinned by fingerprint); skip the per-call trustdb check.
no-auto-check-trustdb
no-greeting
no-comments
no-emit-version
personal-cipher-preferences AES256 AES192 AES
# gpg would rewrite random_seed at every encryption, leaving in the home the exact time
# of the last report or reply; the kernel's generator needs no seed file.
no-random-seed-file
# gpg's own dot-lock on the keybox creates and removes files in the home at every run,
# setting the folder's time to the second of the last report. Every gpg started here
# runs under _KeyringLock (readers shared, key changes exclusive), which is what guards
# the keybox; the dot-lock added nothing but that time.
lock-never
"""
# Lines a home made by an earlier release may lack, added when the home is opened.
_GPG_CONF_ADDED = ("no-random-seed-file", "lock-never")
# Passphrases are never cached: each decryption asks again (loopback pinentry).
# The S2K count of the drop server's home is the minimum because every passphrase given
# to it is a 256-bit value derived by Argon2id (kdf.py): no one guesses 2^256 values,
# however cheap each guess, and stretching it again would cost about 2 s per source key
# and add no strength. A home whose keys carry a human passphrase (the workstation's team
# key) must not have that line: see _HUMAN_AGENT_CONF.
_AGENT_CONF = """\
default-cache-ttl 0
max-cache-ttl 0
allow-loopback-pinentry
s2k-count 65536
"""
# For a home whose passphrases a person chose: no s2k-count, so gpg-agent protects keys
# with its own calibrated count (about 300 million SHA-1 iterations here, some 300 ms):
# each offline guess of a stolen key file costs that much, 4,500 times the minimum.
_HUMAN_AGENT_CONF = """\
default-cache-ttl 0
max-cache-ttl 0
allow-loopback-pinentry
"""
# A count in an agent's key file, in its advanced (``(sha1 #SALT# "COUNT")``) or its
# canonical (``(4:sha18:SALTCOUNT-LEN:COUNT)``) S-expression form.
# The 8-byte salt is written as hex (#...#), or, when its bytes happen to be printable,
# as a quoted string, a token or a length-prefixed string: all four must be read.
_S2K_ADVANCED = re.compile(
    rb'\(\s*sha1\s+(?:#[0-9A-Fa-f]{16}#|"(?:[^"\\]|\\.)*"|8:.{8}|[^\s()"#|]+|\|[^|]*\|)'
    rb'\s+"?(\d+)"?\s*\)',
    re.DOTALL,
)
_S2K_CANONICAL = re.compile(rb"\(4:sha18:.{8}\d+:(\d+)\)", re.DOTALL)
# Uploads are mostly already-compressed media; compressing costs CPU for little gain.
# Nothing here relies on the trust database (always_trust): gpg must not check it at the
# end of an encryption, which reads every key while the keyring lock is not held.
_ENCRYPT_ARGS = ["--compress-algo", "none", "--no-encrypt-to", "--no-auto-check-trustdb"]
_CHUNK = 64 * 1024
# Under concurrent load gpg-agent now and then fails a new key's self-signature
# ("signing failed: Inappropriate ioctl for device", about 1 creation in 100 in
# bench/load.py): creation is tried again, with a new key.
_KEY_ATTEMPTS = 3
# The folder in a GnuPG home for the throwaway homes where keys are made (create_key),
# and the age after which one can only have been left by a killed process.
_WORKSHOPS = ".keygen"
_WORKSHOP_STALE_SECONDS = 600


class Readable(Protocol):
    """Anything gpg can read plaintext from in chunks."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class KeyInfo:
    """What the keyring says about one public key."""

    fingerprint: str
    uids: tuple[str, ...]
    expires: int | None
    can_encrypt: bool
    can_sign: bool
    revoked: bool


class GnuPG:
    """A GnuPG home and the operations the drop needs on it."""

    def __init__(self, home: Path, binary: str = "gpg", *, human_passphrases: bool = False) -> None:
        """
        :param human_passphrases: the keys of this home may carry passphrases a person
            chose (the workstation's): gpg-agent protects them with its calibrated S2K
            count, and an existing home's low count is taken out of its configuration
            (its keys are re-protected by :meth:`reprotect_key`).
        """
        self._binary = binary
        self._human = human_passphrases
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        agent_conf = _HUMAN_AGENT_CONF if human_passphrases else _AGENT_CONF
        for name, text in (("gpg.conf", _GPG_CONF), ("gpg-agent.conf", agent_conf)):
            conf = home / name
            if not conf.exists():
                conf.write_text(text)
        _add_missing_lines(home / "gpg.conf", _GPG_CONF_ADDED)
        (home / "random_seed").unlink(missing_ok=True)
        if human_passphrases and _drop_s2k_count(home / "gpg-agent.conf"):
            stop_agent(home)  # an agent started before still has the low count
        self.home = home
        self._gpg = gnupg.GPG(gnupghome=str(home), gpgbinary=binary)
        self._gpg.buffer_size = _CHUNK
        self._gpg.encoding = "utf-8"
        self._keyring = _KeyringLock(home)

    # -- keys -----------------------------------------------------------------------

    def import_keys(self, armored: str | bytes) -> list[str]:
        """Import keys; return the fingerprints imported.

        :raises CryptoError: when the data holds no key.
        """
        with self._changing_keys():
            result = self._gpg.import_keys(armored)
        fingerprints = [f for f in (result.fingerprints or []) if f]
        if not fingerprints:
            raise CryptoError("no OpenPGP key found in the data given")
        return list(dict.fromkeys(fingerprints))

    def scan_keys(self, data: str | bytes) -> list[tuple[str, str]]:
        """What key data holds, without importing anything: for each primary key,
        ``("pub", fingerprint)`` or ``("sec", fingerprint)``; empty for no key at all."""
        with self._keyring.hold():
            result = self._gpg.scan_keys_mem(data)
        return [(str(key["type"]), str(key["fingerprint"])) for key in result]

    def inspect_keys(self, data: str | bytes) -> list[tuple[str, KeyInfo]]:
        """What key data holds, without importing anything: for each primary key,
        ``"pub"`` or ``"sec"`` and what gpg says of it (expiry, usable capabilities)."""
        with self._keyring.hold():
            result = self._gpg.scan_keys_mem(data)
        return [(str(key["type"]), _key_info(key)) for key in result]

    def has_secret_key(self, fingerprint: str) -> bool:
        """Whether this home holds the secret part of ``fingerprint``."""
        with self._keyring.hold():
            keys = self._gpg.list_keys(secret=True, keys=[fingerprint])
        return any(key["fingerprint"] == fingerprint for key in keys)

    def export_public_key(self, fingerprint: str) -> str:
        """The armored public key for ``fingerprint``.

        :raises KeyMissingError: if the keyring lacks it.
        """
        with self._keyring.hold():
            armored = self._gpg.export_keys(fingerprint)
        if not armored:
            raise KeyMissingError(f"key {fingerprint} is not in the keyring")
        return str(armored)

    def export_secret_key(self, fingerprint: str) -> str:
        """The armored secret key for ``fingerprint``, which must have no passphrase
        (the demo's throwaway keys); it is returned in memory, never written.

        :raises KeyMissingError: if the keyring lacks its secret part.
        """
        with self._keyring.hold():
            armored = self._gpg.export_keys(fingerprint, secret=True, expect_passphrase=False)
        if not armored:
            raise KeyMissingError(f"the secret key {fingerprint} is not in the keyring")
        return str(armored)

    def key_info(self, fingerprint: str) -> KeyInfo:
        """Describe one public key.

        :raises KeyMissingError: if the keyring lacks it.
        """
        with self._keyring.hold():
            keys = self._gpg.list_keys(keys=[fingerprint])
        for key in keys:
            if key["fingerprint"] == fingerprint:
                return _key_info(key)
        raise KeyMissingError(f"key {fingerprint} is not in the keyring")

    def require_encryption_keys(self, fingerprints: Iterable[str]) -> None:
        """Check that every key can encrypt now.

        :raises KeyMissingError: a key is absent.
        :raises KeyExpiredError: a key has expired or is revoked.
        :raises KeyUnusableError: a key has no usable encryption subkey.
        """
        now = time.time()
        for fpr in fingerprints:
            info = self.key_info(fpr)
            if info.revoked:
                raise KeyExpiredError(f"key {fpr} is revoked")
            if info.expires is not None and info.expires <= now:
                day = time.strftime("%Y-%m-%d", time.gmtime(info.expires))
                raise KeyExpiredError(f"key {fpr} expired on {day}")
            if not info.can_encrypt:
                raise KeyUnusableError(
                    f"key {fpr} has no usable encryption subkey (expired or missing)"
                )

    def create_key(
        self,
        name: str,
        passphrase: str | None,
        expire_days: int = 0,
    ) -> str:
        """Create an Ed25519 signing key with a Curve25519 encryption subkey, dated to the
        start of the current UTC day (see the module doc); it can encrypt at once.

        :param passphrase: locks the secret key; ``None`` leaves it unprotected (only for
            keys a service must use unattended, such as the server's signing key).
        :returns: the new fingerprint.
        :raises StoreFullError: the disk under the GnuPG home is full.
        """
        params: dict[str, Any] = {
            "key_type": "EDDSA",
            "key_curve": "ed25519",
            "key_usage": "sign",
            "subkey_type": "ECDH",
            "subkey_curve": "cv25519",
            "subkey_usage": "encrypt",
            "name_real": name,
            # python-gnupg would fill in LOGNAME@hostname: the server's name in every key.
            "name_email": "nobody@securedrop-wm.invalid",
            # Counted from the creation date: expiry falls on a day's start too.
            "expire_date": f"{expire_days}d" if expire_days else "0",
        }
        if passphrase is None:
            params["no_protection"] = True
        else:
            params["passphrase"] = passphrase
        for _ in range(_KEY_ATTEMPTS):
            try:
                fingerprint, result = self._generate_dated(params)
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise StoreFullError("the disk is full") from None
                raise CryptoError(f"gpg could not create a key: {e}") from None
            if fingerprint:
                return fingerprint
            if "No space left" in (result.stderr or "") or _no_space_left(self.home):
                raise StoreFullError("the disk is full")
        raise CryptoError(f"gpg could not create a key: {_reason(result)}")

    def _generate_dated(self, params: dict[str, Any]) -> tuple[str | None, Any]:
        """Generate a key in a throwaway home whose gpg and gpg-agent clocks stand still at
        the start of the UTC day, then move it into this home.

        gpg's clock dates the key, its signatures, its keybox entry and its revocation
        certificate. The agent writes into a secret key file when it locked it with a
        passphrase (``protected-at``, authenticated: it cannot be changed afterwards), and
        this home's agent keeps the real clock: hence the throwaway home and agent. The
        keyring is held only for the move, not while the key is made.

        :returns: the new fingerprint, or ``None`` and the failed gpg result.
        """
        day = _day_start(time.time())
        faked = ["--faked-system-time", f"{day}!"]
        params = {**params, "creation_date": time.strftime("%Y%m%dT%H%M%S", time.gmtime(day))}
        workshops = self.home / _WORKSHOPS
        workshops.mkdir(mode=0o700, exist_ok=True)
        _remove_stale_workshops(workshops)
        workshop = Path(tempfile.mkdtemp(dir=workshops))
        moved: list[Path] = []
        try:
            (workshop / "gpg.conf").write_text(_GPG_CONF)
            # A key with a human passphrase gets this home's agent's calibrated count
            # (the throwaway agent would calibrate again, to a slightly other value).
            protection = (
                f"{_HUMAN_AGENT_CONF}s2k-count {self.calibrated_s2k_count()}\n"
                if self._human
                else _AGENT_CONF
            )
            (workshop / "gpg-agent.conf").write_text(f"{protection}faked-system-time {day}!\n")
            maker = gnupg.GPG(gnupghome=str(workshop), gpgbinary=self._binary, options=faked)
            maker.encoding = "utf-8"
            made = maker.gen_key(maker.gen_key_input(**params))
            if not made.fingerprint:
                return None, made
            public = maker.export_keys(made.fingerprint)
            with self._changing_keys():
                for folder in ("private-keys-v1.d", "openpgp-revocs.d"):
                    (self.home / folder).mkdir(mode=0o700, exist_ok=True)
                    for entry in (workshop / folder).iterdir():
                        moved.append(self.home / folder / entry.name)
                        os.replace(entry, moved[-1])
                imported = self._gpg.import_keys(public, extra_args=faked)
                if made.fingerprint not in (imported.fingerprints or []):
                    for path in moved:
                        path.unlink(missing_ok=True)
                    return None, imported
            return str(made.fingerprint), made
        finally:
            _remove_workshop(workshop)
            coarsen_times(workshops)  # the removal just set its times to the second

    def delete_key(self, fingerprint: str, secret_passphrase: str | None = None) -> None:
        """Remove a key (its secret part first, when a passphrase is given)."""
        with self._changing_keys():
            if secret_passphrase is not None:
                self._gpg.delete_keys(
                    fingerprint, secret=True, passphrase=secret_passphrase, expect_passphrase=True
                )
            self._gpg.delete_keys(fingerprint)

    # -- passphrase protection -------------------------------------------------------

    def calibrated_s2k_count(self) -> int:
        """The S2K count this home's gpg-agent calibrated (whatever its configuration
        says): the iterations it hashes in about 100 ms of this machine's time.

        :raises CryptoError: the agent could not be asked.
        """
        argv = ["gpg-connect-agent", "--homedir", str(self.home), "GETINFO s2k_count_cal", "/bye"]
        result = _run_tool(argv, "gpg-agent could not be asked")
        for line in result.stdout.splitlines():
            if line.startswith("D ") and line[2:].strip().isdigit():
                return int(line[2:].strip())
        raise CryptoError(f"gpg-agent did not say its S2K count: {result.stderr.strip()}")

    def s2k_counts(self, fingerprint: str) -> list[int]:
        """The S2K iteration count protecting each passphrase-protected secret (sub)key
        of ``fingerprint``, as its key file in ``private-keys-v1.d`` stores it.

        A key still in the OpenPGP protection it was imported with (``openpgp-native``,
        until its first use) counts as 0: the agent has not protected it yet. Keys with
        no passphrase are left out.
        """
        argv = [self._binary, "--homedir", str(self.home), "--batch", "--with-colons"]
        argv += ["--with-keygrip", "--list-secret-keys", fingerprint]
        with self._keyring.hold():
            listing = _run_tool(argv, "gpg could not list the secret key")
            counts = []
            for line in listing.stdout.splitlines():
                fields = line.split(":")
                if fields[0] != "grp" or len(fields) < 10:
                    continue
                path = self.home / "private-keys-v1.d" / f"{fields[9]}.key"
                try:
                    data = path.read_bytes()
                except FileNotFoundError:
                    continue
                found = _S2K_ADVANCED.findall(data) or _S2K_CANONICAL.findall(data)
                if found:
                    counts.append(min(int(c) for c in found))
                elif b"openpgp-native" in data:
                    counts.append(0)
        return counts

    def reprotect_key(self, fingerprint: str, passphrase: str) -> None:
        """Protect the secret (sub)keys of ``fingerprint`` again with the same passphrase,
        at the count this home's agent uses now (``gpg --passwd``: the agent unlocks
        each key with the old protection and locks it with the new one).

        :raises DecryptionError: the passphrase is wrong; nothing changed.
        :raises CryptoError: gpg failed otherwise.
        """
        argv = [self._binary, "--homedir", str(self.home), "--batch", "--no-tty"]
        argv += ["--pinentry-mode", "loopback", "--passphrase-fd", "0", "--passwd", fingerprint]
        with self._changing_keys():
            result = _run_tool(argv, "gpg could not be run to protect the key", passphrase)
        # gpg --passwd exits 0 even when the agent refused the passphrase: its messages
        # tell.
        stderr = result.stderr
        if "Bad passphrase" in stderr:
            raise DecryptionError("the passphrase is wrong")
        if result.returncode != 0 or "error changing" in stderr:
            errors = [line[5:] for line in stderr.splitlines() if line.startswith("gpg: ")]
            last = errors[-1] if errors else "no message"
            raise CryptoError(f"gpg could not protect the key: {last}")

    # -- encryption -----------------------------------------------------------------

    def encrypt_stream(self, stream: Readable, recipients: Sequence[str], output: Path) -> None:
        """Encrypt everything ``stream`` yields into the file ``output``.

        :raises StoreFullError: the disk filled up; ``output`` is removed.
        :raises EncryptionError: gpg failed otherwise; ``output`` is removed.
        """
        # The keyring is needed only until gpg has found the recipients, and gpg creates
        # its output file only after that (GnuPG 2.2): an upload streaming for minutes
        # must not hold up the creation of new sources' keys.
        fresh = not output.exists()
        release = self._keyring.hold_until(lambda: fresh and output.exists())
        try:
            result = self._gpg.encrypt_file(
                stream,
                list(recipients),
                armor=False,
                always_trust=True,
                output=str(output),
                extra_args=_ENCRYPT_ARGS,
            )
        except (OSError, ValueError) as e:
            # gpg exits at once when its output cannot be written, and the copy into its
            # stdin then breaks: only the free space left tells a full disk apart.
            full = _no_space_left(output.parent)
            output.unlink(missing_ok=True)
            if full:
                raise StoreFullError("the disk is full") from None
            raise EncryptionError(f"gpg could not be run: {e}") from None
        finally:
            release()
        if not result.ok:
            full = _no_space_left(output.parent)
            output.unlink(missing_ok=True)
            reason = _reason(result)
            if full or "No space left" in (result.stderr or ""):
                raise StoreFullError("the disk is full")
            raise EncryptionError(f"gpg could not encrypt: {reason}")

    def encrypt_bytes(self, data: bytes, recipients: Sequence[str], output: Path) -> None:
        """Encrypt ``data`` (already in memory) into ``output``."""
        self.encrypt_stream(_BytesReader(data), recipients, output)

    def start_encryption(self, recipients: Sequence[str], output: Path) -> EncryptingWriter:
        """Open a writer whose chunks gpg encrypts into ``output`` as they arrive."""
        return EncryptingWriter(self, recipients, output)

    def decrypt_file(
        self, path: Path, passphrase: str | None = None, max_output: int | None = None
    ) -> bytes:
        """Decrypt a (small) file into memory.

        :param max_output: the most bytes of plaintext accepted (gpg's ``--max-output``):
            OpenPGP data may be compressed, and a small file inflate without bound.
        :raises OutputTooLargeError: the plaintext is larger than ``max_output``.
        :raises DecryptionError: wrong passphrase, missing secret key or damaged data.
        """
        return bytes(self._decrypt(path, passphrase, max_output, None).data)

    def decrypt_to_file(
        self,
        source: Path,
        output: Path,
        passphrase: str | None = None,
        max_output: int | None = None,
    ) -> None:
        """Decrypt ``source`` into ``output`` without holding it in memory. On any error
        ``output`` is removed; otherwise as :meth:`decrypt_file`."""
        try:
            self._decrypt(source, passphrase, max_output, output)
        except BaseException:
            output.unlink(missing_ok=True)
            raise

    def _decrypt(
        self, source: Path, passphrase: str | None, max_output: int | None, output: Path | None
    ) -> Any:
        extra_args = []
        if max_output is not None:
            if max_output < 1:  # gpg takes 0 for "no limit"
                raise ValueError("max_output must be at least 1 byte")
            extra_args = ["--max-output", str(max_output)]
        with source.open("rb") as f, self._keyring.hold():
            result = self._gpg.decrypt_file(
                f,
                passphrase=passphrase,
                always_trust=True,
                output=None if output is None else str(output),
                extra_args=extra_args,
            )
        # gpg reports DECRYPTION_OKAY before it stops at the limit (python-gnupg then
        # says ok): only its exit code and its messages tell a cut-off plaintext.
        stderr = result.stderr or ""
        if "exceeded --max-output limit" in stderr or "object is too large" in stderr:
            raise OutputTooLargeError(f"the plaintext is larger than {max_output} bytes")
        if not result.ok:
            raise DecryptionError(f"gpg could not decrypt: {_reason(result)}")
        if result.returncode != 0:
            errors = [line[5:] for line in stderr.splitlines() if line.startswith("gpg: ")]
            last = errors[-1] if errors else "no message"
            raise DecryptionError(f"gpg failed after decrypting (exit {result.returncode}): {last}")
        return result

    # -- signatures -----------------------------------------------------------------

    def sign_detached(self, path: Path, fingerprint: str, passphrase: str | None = None) -> bytes:
        """A binary detached signature of the file at ``path``."""
        with path.open("rb") as f, self._keyring.hold():
            result = self._gpg.sign_file(
                f,
                keyid=fingerprint,
                passphrase=passphrase,
                detach=True,
                binary=True,
                clearsign=False,
            )
        if not result.data:
            raise CryptoError(f"gpg could not sign: {_reason(result)}")
        return bytes(result.data)

    def verify_detached_bytes(self, data: bytes, signature: bytes) -> list[list[str]]:
        """Run ``gpg --verify`` of a detached ``signature`` over ``data``; return gpg's
        status lines (``[GNUPG:] KEYWORD ARGS...``) as ``[KEYWORD, ARGS...]`` lists.

        Deciding what the status means (whose key, which refusal) is the caller's.

        :raises CryptoError: gpg could not be run.
        """
        with tempfile.TemporaryDirectory(prefix="sdwm-sig-") as tmp:
            sig_path = Path(tmp) / "manifest.sig"
            sig_path.write_bytes(signature)
            try:
                with self._keyring.hold():
                    result = subprocess.run(
                        [
                            self._binary,
                            "--homedir",
                            str(self.home),
                            "--batch",
                            "--no-tty",
                            "--status-fd",
                            "1",
                            "--no-auto-key-retrieve",
                            "--verify",
                            str(sig_path),
                            "-",
                        ],
                        input=data,
                        capture_output=True,
                        timeout=120,
                        check=False,
                    )
            except (OSError, subprocess.TimeoutExpired) as e:
                raise CryptoError(f"gpg could not be run to check the signature: {e}") from e
        return [
            line.split()[1:]
            for line in result.stdout.decode("utf-8", "replace").splitlines()
            if line.startswith("[GNUPG:] ") and len(line.split()) > 1
        ]

    @contextmanager
    def _changing_keys(self) -> Iterator[None]:
        """Hold the keyring exclusively for a change, then give every file gpg keeps in
        the home the start of its day as its times (the change set them to the second)."""
        with self._keyring.hold(exclusive=True):
            try:
                yield
            finally:
                _coarsen_home_times(self.home)

    def close(self) -> None:
        """Stop the gpg-agent of this home, if one was started."""
        stop_agent(self.home)


class _KeyringLock:
    """A readers-writer lock over one GnuPG home, between threads and processes (flock).

    GnuPG 2.2 replaces ``pubring.kbx`` by two renames (current to backup, new to
    current): a gpg that starts between them finds no keyring and fails. Under load a
    new source's key creation made concurrent uploads and logins fail that way. So every
    gpg that changes keys holds this lock exclusively and every gpg that reads them
    holds it shared. A writer first takes a gate that readers pass through, so a steady
    stream of readers cannot starve it.
    """

    def __init__(self, home: Path) -> None:
        self._path = home / ".keyring.lock"
        self._gate = home / ".keyring.gate"

    def _acquire(self, exclusive: bool) -> int:
        gate = os.open(self._gate, os.O_RDWR | os.O_CREAT, 0o600)
        fd = -1
        try:
            fcntl.flock(gate, fcntl.LOCK_EX)
            fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        finally:
            os.close(gate)
        return fd

    @contextmanager
    def hold(self, exclusive: bool = False) -> Iterator[None]:
        """Hold the lock (shared unless ``exclusive``) for a block."""
        fd = self._acquire(exclusive)
        try:
            yield
        finally:
            os.close(fd)

    def hold_until(self, condition: Callable[[], bool]) -> Callable[[], None]:
        """Take the lock shared until ``condition()`` turns true (polled) or the returned
        function is called, whichever comes first."""
        fd = self._acquire(False)
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.005):
                if condition():
                    break
            os.close(fd)

        threading.Thread(target=watch, daemon=True).start()
        return done.set


class EncryptingWriter:
    """A writable sink: each chunk written is handed to a gpg process encrypting to a file.

    Memory is bounded by a small queue between the writer and gpg, whatever the size of
    the stream. :meth:`close` waits for gpg and reports failure; :meth:`abort` discards.
    """

    _QUEUE_CHUNKS = 16

    def __init__(self, gpg: GnuPG, recipients: Sequence[str], output: Path) -> None:
        self.output = output
        self.size = 0
        self._queue: queue.Queue[bytes] = queue.Queue(self._QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._closed = False
        self._reader = _QueueReader(self._queue)
        self._thread = threading.Thread(target=self._run, args=(gpg, list(recipients)), daemon=True)
        self._thread.start()

    def _run(self, gpg: GnuPG, recipients: list[str]) -> None:
        try:
            gpg.encrypt_stream(self._reader, recipients, self.output)
        except BaseException as e:  # noqa: BLE001 - handed to the writer's thread
            self._error = e
        finally:
            self._reader.finished = True

    def write(self, data: bytes) -> int:
        """Queue ``data`` for encryption; blocks while gpg catches up."""
        if self._closed:
            raise ValueError("write to a closed EncryptingWriter")
        for start in range(0, len(data), _CHUNK):
            chunk = bytes(data[start : start + _CHUNK])
            while True:
                if not self._thread.is_alive():
                    self._raise_failure()
                try:
                    self._queue.put(chunk, timeout=0.2)
                    break
                except queue.Full:
                    continue
        self.size += len(data)
        return len(data)

    def close(self) -> None:
        """Finish the stream and wait for gpg.

        :raises EncryptionError: or :class:`StoreFullError` when gpg failed.
        """
        if self._closed:
            return
        self._closed = True
        self._put_end()
        self._thread.join()
        if self._error is not None:
            self._raise_failure()

    def abort(self) -> None:
        """Stop and remove whatever was written. Safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._reader.cancelled = True
            self._put_end()
            self._thread.join()
        self.output.unlink(missing_ok=True)

    def _put_end(self) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(b"", timeout=0.2)
                return
            except queue.Full:
                continue

    def _raise_failure(self) -> None:
        self._closed = True
        self.output.unlink(missing_ok=True)
        error = self._error
        if isinstance(error, CryptoError | StoreFullError):
            raise error
        raise EncryptionError(f"encryption stopped: {error}")

    # Werkzeug's form parser treats the sink as a file object.
    def seek(self, offset: int, whence: int = 0) -> int:
        return self.size

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        return None


class _QueueReader:
    """The read side of :class:`EncryptingWriter`: what python-gnupg copies into gpg."""

    def __init__(self, chunks: queue.Queue[bytes]) -> None:
        self._chunks = chunks
        self.finished = False
        self.cancelled = False
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        if self._eof:
            return b""
        chunk = self._chunks.get()
        if not chunk or self.cancelled:
            self._eof = True
            # A cancelled stream must not end as a valid ciphertext: make gpg fail.
            if self.cancelled:
                raise OSError("upload cancelled")
            return b""
        return chunk

    def close(self) -> None:
        return None


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        size = len(self._view) if size < 0 else size
        chunk = self._view[self._pos : self._pos + size]
        self._pos += len(chunk)
        return bytes(chunk)

    def close(self) -> None:
        return None


def _key_info(key: dict[str, Any]) -> KeyInfo:
    """A key as python-gnupg lists it; upper-case capabilities are the usable ones."""
    cap = key.get("cap", "")
    return KeyInfo(
        fingerprint=str(key["fingerprint"]),
        uids=tuple(key.get("uids", [])),
        expires=int(key["expires"]) if key.get("expires") else None,
        can_encrypt="E" in cap,
        can_sign="S" in cap,
        revoked=key.get("trust") == "r",
    )


def stop_agent(home: Path) -> None:
    """Stop the gpg-agent of the GnuPG home ``home``, if one was started."""
    with contextlib.suppress(OSError):
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )


def _run_tool(
    argv: list[str], failure: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a GnuPG tool (up to 5 min); return its exit code, output and messages.

    :raises CryptoError: it could not be run, or did not end in time (``failure``).
    """
    given = None if stdin is None else stdin + "\n"
    try:
        return subprocess.run(argv, input=given, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CryptoError(f"{failure}: {e}") from None


def _add_missing_lines(conf: Path, lines: tuple[str, ...]) -> None:
    """Append to a gpg.conf the ``lines`` it does not have yet (an older release's home)."""
    present = {line.strip() for line in conf.read_text().splitlines()}
    missing = [line for line in lines if line not in present]
    if missing:
        with conf.open("a") as f:
            f.write("".join(f"{line}\n" for line in missing))


def _drop_s2k_count(conf: Path) -> bool:
    """Take any ``s2k-count`` line out of a gpg-agent.conf; return whether there was one."""
    lines = conf.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.split()[:1] != ["s2k-count"]]
    if kept == lines:
        return False
    conf.write_text("".join(kept))
    return True


def _remove_stale_workshops(workshops: Path) -> None:
    """Remove throwaway homes left by a process killed while it made a key."""
    for workshop in workshops.iterdir():
        try:
            stale = time.time() - workshop.stat().st_mtime > _WORKSHOP_STALE_SECONDS
        except FileNotFoundError:  # its maker just removed it
            continue
        if stale:
            _remove_workshop(workshop)


def _remove_workshop(workshop: Path) -> None:
    """Stop a throwaway home's agent and remove the home (it holds a public key only)."""
    subprocess.run(
        ["gpgconf", "--homedir", str(workshop), "--kill", "gpg-agent"],
        capture_output=True,
        check=False,
    )
    shutil.rmtree(workshop, ignore_errors=True)


def _day_start(timestamp: float) -> int:
    return int(timestamp) // 86_400 * 86_400


def _coarsen_home_times(home: Path) -> None:
    """Day-coarsen the times of a GnuPG home, of its key folders and of all they hold."""
    for folder in (home, home / "private-keys-v1.d", home / "openpgp-revocs.d"):
        try:
            entries = list(os.scandir(folder))
            coarsen_times(folder)
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            try:
                coarsen_times(Path(entry.path))
            except FileNotFoundError:  # a lock file gpg just removed
                continue


# Less free space than this after gpg failed to write means the disk was full: gpg
# writes in blocks of a few KiB, so a failed write leaves a remainder smaller than one.
_FULL_BELOW_BYTES = 1 << 20


def _no_space_left(folder: Path) -> bool:
    """Whether the file system holding ``folder`` is (all but) full."""
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _FULL_BELOW_BYTES


def _reason(result: Any) -> str:
    status = getattr(result, "status", None) or ""
    stderr = getattr(result, "stderr", "") or ""
    for line in stderr.splitlines():
        if "No space left" in line:
            return "no space left on device"
        if line.startswith("gpg: ") and "WARNING" not in line:
            return f"{status or 'error'}: {line[5:].strip()}"
    return str(status or "unknown error")
