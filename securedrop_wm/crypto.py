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

Source keys (``create_key(..., own_keybox=True)``) each have a keybox of their own, so
that adding or removing one touches a bounded number of files (:mod:`.source_keys`).
Helpers: :mod:`.gpg_support` (configuration, lock, coarsening), :mod:`.gpg_stream`.
"""

from __future__ import annotations

import copy
import errno
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gnupg

from . import source_keys
from .errors import (
    CryptoError,
    DecryptionError,
    EncryptionError,
    KeyMissingError,
    OutputTooLargeError,
    StoreFullError,
)
from .gpg_stream import EncryptingWriter, Readable, _BytesReader
from .gpg_support import (
    _AGENT_CONF,
    _CHUNK,
    _ENCRYPT_ARGS,
    _GPG_CONF,
    _GPG_CONF_ADDED,
    _HUMAN_AGENT_CONF,
    _KEY_ATTEMPTS,
    _S2K_ADVANCED,
    _WORKSHOPS,
    KeyInfo,
    _add_missing_lines,
    _calibrated_s2k_count,
    _check_encryption_key,
    _check_passwd,
    _coarsen_home_times,
    _day_start,
    _drop_s2k_count,
    _key_info,
    _KeyringLock,
    _no_space_left,
    _reason,
    _remove_stale_workshops,
    _remove_workshop,
    _run_tool,
    _s2k_counts,
    _verify_detached,
    stop_agent,
)
from .store import coarsen_times

if TYPE_CHECKING:
    from hashlib import _Hash as Hash

__all__ = ["EncryptingWriter", "GnuPG", "KeyInfo", "Readable", "_S2K_ADVANCED", "stop_agent"]


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
        keyrings = source_keys.keyring_args(self.home, [fingerprint])
        with self._keyring.hold():
            if keyrings:  # a source's own keybox: python-gnupg's export takes no options
                argv = [self._binary, "--homedir", str(self.home), "--batch", *keyrings]
                argv += ["--armor", "--export", fingerprint]
                armored = _run_tool(argv, "gpg could not export the key").stdout
                source_keys.settle(self.home, [fingerprint])
            else:
                armored = self._gpg.export_keys(fingerprint)
        if not armored:
            raise KeyMissingError(f"key {fingerprint} is not in the keyring")
        return str(armored)

    def export_secret_key(self, fingerprint: str, passphrase: str | None = None) -> str:
        """The armored secret key for ``fingerprint``, still protected by its own
        passphrase if it has one (gpg-agent asks for it to export: give ``passphrase``);
        it is returned in memory, never written.

        :raises KeyMissingError: if the keyring lacks its secret part.
        :raises CryptoError: it has a passphrase, and none or a wrong one was given.
        """
        with self._keyring.hold():
            if passphrase is None:
                armored = self._gpg.export_keys(fingerprint, secret=True, expect_passphrase=False)
            else:
                armored = self._gpg.export_keys(fingerprint, secret=True, passphrase=passphrase)
        if not armored:
            if self.has_secret_key(fingerprint):
                raise CryptoError(
                    f"the secret key {fingerprint} has a passphrase: give it (a wrong one fails)"
                )
            raise KeyMissingError(f"the secret key {fingerprint} is not in the keyring")
        return str(armored)

    def launch_agent(self) -> None:
        """Start this home's gpg-agent now, once: gpg processes started together would
        otherwise race to start it, and a loser reports "no secret key"."""
        _run_tool(["gpgconf", "--homedir", str(self.home), "--launch", "gpg-agent"], "no agent")

    def encrypted_to(self, path: Path) -> set[str]:
        """The long key IDs an OpenPGP message is encrypted to, read from its packets
        without decrypting it (gpg ``--list-only``)."""
        argv = [self._binary, "--homedir", str(self.home), "--batch", "--status-fd", "1"]
        listed = _run_tool([*argv, "--list-only", "--decrypt", str(path)], "gpg could not read")
        return {
            line.split()[2]
            for line in listed.stdout.splitlines()
            if line.startswith("[GNUPG:] ENC_TO ") and len(line.split()) > 2
        }

    def key_ids(self, fingerprint: str) -> set[str]:
        """The long key IDs of a key and its subkeys (what a message names as recipient).

        :raises KeyMissingError: if the keyring lacks it.
        """
        with self._keyring.hold():
            keys = self._gpg.list_keys(keys=[fingerprint])
        found = [k for k in keys if k["fingerprint"] == fingerprint]
        if not found:
            raise KeyMissingError(f"key {fingerprint} is not in the keyring")
        return {found[0]["keyid"], *(sub[0] for sub in found[0].get("subkeys", []))}

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
            _check_encryption_key(self.key_info(fpr), now)

    def create_key(
        self,
        name: str,
        passphrase: str | None,
        expire_days: int = 0,
        *,
        own_keybox: bool = False,
    ) -> str:
        """Create an Ed25519 signing key with a Curve25519 encryption subkey, dated to the
        start of the current UTC day (see the module doc); it can encrypt at once.

        :param passphrase: locks the secret key; ``None`` leaves it unprotected (only for
            keys a service must use unattended, such as the server's signing key).
        :param own_keybox: give the key a keybox file of its own (a source's key, see the
            module doc) instead of adding it to the home's keybox.
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
                fingerprint, result = self._generate_dated(params, own_keybox)
            except OSError as e:
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise StoreFullError("the disk is full") from None
                raise CryptoError(f"gpg could not create a key: {e}") from None
            if fingerprint:
                return fingerprint
            if "No space left" in (result.stderr or "") or _no_space_left(self.home):
                raise StoreFullError("the disk is full")
        raise CryptoError(f"gpg could not create a key: {_reason(result)}")

    def _generate_dated(
        self, params: dict[str, Any], own_keybox: bool = False
    ) -> tuple[str | None, Any]:
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
            if own_keybox:
                # The throwaway home's keybox holds this key alone, dated to the day: it
                # becomes the key's own keybox, with no gpg run and no exclusive lock.
                with self._keyring.hold():
                    source_keys.adopt(self.home, workshop, str(made.fingerprint))
                return str(made.fingerprint), made
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
        """Remove a key (its secret part first, when a passphrase is given). A key with a
        keybox of its own goes with its secret key files, passphrase or not."""
        if source_keys.keybox(self.home, fingerprint).exists():
            self.remove_source_keys([fingerprint])
            return
        with self._changing_keys():
            if secret_passphrase is not None:
                self._gpg.delete_keys(
                    fingerprint, secret=True, passphrase=secret_passphrase, expect_passphrase=True
                )
            self._gpg.delete_keys(fingerprint)

    def delete_secret_key(self, fingerprint: str) -> None:
        """Remove the secret part of a key that has no passphrase; keep its public key."""
        with self._changing_keys():
            argv = [self._binary, "--homedir", str(self.home), "--batch", "--yes"]
            done = _run_tool([*argv, "--delete-secret-keys", fingerprint], "gpg could not delete")
        if done.returncode != 0:
            raise CryptoError(f"gpg could not delete the secret key {fingerprint}: {done.stderr}")

    def remove_source_keys(self, fingerprints: Sequence[str]) -> int:
        """Remove source keys for good, without their passphrases: keybox (or entry in the
        home's keybox, for a home made by an earlier release), secret key files and
        revocation certificates. Linear in the number of keys, one coarsening at the end.

        :returns: how many of the keys were found.
        """
        return source_keys.remove(self, self._binary, self._keyring, fingerprints)

    # -- passphrase protection -------------------------------------------------------

    def calibrated_s2k_count(self) -> int:
        """The S2K count this home's gpg-agent calibrated (whatever its configuration
        says): the iterations it hashes in about 100 ms of this machine's time.

        :raises CryptoError: the agent could not be asked.
        """
        return _calibrated_s2k_count(self.home)

    def s2k_counts(self, fingerprint: str) -> list[int]:
        """The S2K iteration count protecting each passphrase-protected secret (sub)key
        of ``fingerprint``, as its key file in ``private-keys-v1.d`` stores it.

        A key still in the OpenPGP protection it was imported with (``openpgp-native``,
        until its first use) counts as 0: the agent has not protected it yet. Keys with
        no passphrase are left out.
        """
        return _s2k_counts(self._binary, self.home, self._keyring, fingerprint)

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
        _check_passwd(result.returncode, result.stderr)

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
        keyrings = source_keys.keyring_args(self.home, recipients)
        release = self._keyring.hold_until(lambda: fresh and output.exists())
        try:
            result = self._gpg.encrypt_file(
                stream,
                list(recipients),
                armor=False,
                always_trust=True,
                output=str(output),
                extra_args=[*_ENCRYPT_ARGS, *keyrings],
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
            if keyrings:
                source_keys.settle(self.home, recipients)
        if not result.ok:
            full = _no_space_left(output.parent)
            output.unlink(missing_ok=True)
            reason = _reason(result)
            if full or "No space left" in (result.stderr or ""):
                raise StoreFullError("the disk is full")
            raise EncryptionError(f"gpg could not encrypt: {reason}")

    def encrypt_stream_symmetric(self, stream: Readable, passphrase: str, output: Path) -> None:
        """Encrypt ``stream`` into ``output`` under ``passphrase`` (AES-256). Only for a
        passphrase made by ``secrets`` with at least 128 bits: gpg stretches it with
        iterated SHA-512, no defence for a passphrase a person chose.

        :raises EncryptionError: gpg failed; ``output`` is removed.
        """
        try:
            result = self._gpg.encrypt_file(
                stream,
                None,
                symmetric="AES256",
                passphrase=passphrase,
                armor=False,
                output=str(output),
                extra_args=[
                    *_ENCRYPT_ARGS,
                    "--s2k-cipher-algo",
                    "AES256",
                    "--s2k-digest-algo",
                    "SHA512",
                ],
            )
        except (OSError, ValueError) as e:
            output.unlink(missing_ok=True)
            raise EncryptionError(f"gpg could not be run: {e}") from None
        if not result.ok:
            output.unlink(missing_ok=True)
            raise EncryptionError(f"gpg could not encrypt: {_reason(result)}")

    def encrypt_bytes(self, data: bytes, recipients: Sequence[str], output: Path) -> None:
        """Encrypt ``data`` (already in memory) into ``output``."""
        self.encrypt_stream(_BytesReader(data), recipients, output)

    def start_encryption(self, recipients: Sequence[str], output: Path) -> EncryptingWriter:
        """Open a writer whose chunks gpg encrypts into ``output`` as they arrive."""
        return EncryptingWriter(self, recipients, output)

    def decrypt_file(
        self,
        path: Path,
        passphrase: str | None = None,
        max_output: int | None = None,
        *,
        keys: Sequence[str] = (),
    ) -> bytes:
        """Decrypt a (small) file into memory.

        :param keys: fingerprints of source keys that may be needed, whose own keyboxes
            gpg must then read (the home's keybox is always read).
        :param max_output: the most bytes of plaintext accepted (gpg's ``--max-output``):
            OpenPGP data may be compressed, and a small file inflate without bound.
        :raises OutputTooLargeError: the plaintext is larger than ``max_output``.
        :raises DecryptionError: wrong passphrase, missing secret key or damaged data.
        """
        return bytes(self._decrypt(path, passphrase, max_output, None, keys).data)

    def decrypt_to_file(
        self,
        source: Path,
        output: Path,
        passphrase: str | None = None,
        max_output: int | None = None,
        *,
        digest: Hash | None = None,
    ) -> None:
        """Decrypt ``source`` into ``output`` without holding it in memory. On any error
        ``output`` is removed; otherwise as :meth:`decrypt_file`.

        :param digest: a hashlib object fed the plaintext as it streams to ``output``
            (the file is then written here, chunk by chunk, never read back).
        """
        try:
            if digest is None:
                self._decrypt(source, passphrase, max_output, output)
                return
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as sink:

                def write(chunk: bytes) -> bool:
                    digest.update(chunk)
                    sink.write(chunk)
                    return False  # written: not also kept in memory

                result = self._decrypt(source, passphrase, max_output, None, on_data=write)
            failure = getattr(result, "on_data_failure", None)
            if failure is not None:  # writing the plaintext failed (a full disk, say)
                raise failure
        except BaseException:
            output.unlink(missing_ok=True)
            raise

    def _decrypt(
        self,
        source: Path,
        passphrase: str | None,
        max_output: int | None,
        output: Path | None,
        keys: Sequence[str] = (),
        *,
        on_data: Callable[[bytes], bool] | None = None,
    ) -> Any:
        gpg = self._gpg
        if on_data is not None:  # a copy of our own: on_data is per call, calls run in threads
            gpg = copy.copy(self._gpg)
            gpg.on_data = on_data
        extra_args = source_keys.keyring_args(self.home, keys)
        if max_output is not None:
            if max_output < 1:  # gpg takes 0 for "no limit"
                raise ValueError("max_output must be at least 1 byte")
            extra_args += ["--max-output", str(max_output)]
        with source.open("rb") as f, self._keyring.hold():
            result = gpg.decrypt_file(
                f,
                passphrase=passphrase,
                always_trust=True,
                output=None if output is None else str(output),
                extra_args=extra_args,
            )
        if keys:  # a source's key was read: its files say the day again
            source_keys.settle(self.home, keys)
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
        return _verify_detached(self._binary, self.home, self._keyring, data, signature)

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
