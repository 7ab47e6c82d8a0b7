"""What :mod:`.crypto` builds on: the configuration written into a GnuPG home, the lock
that guards its keyboxes, the day-coarsening of its files, and small helpers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CryptoError, DecryptionError, KeyExpiredError, KeyUnusableError
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


@dataclass(frozen=True)
class KeyInfo:
    """What the keyring says about one public key."""

    fingerprint: str
    uids: tuple[str, ...]
    expires: int | None
    can_encrypt: bool
    can_sign: bool
    revoked: bool


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


def _s2k_counts(binary: str, home: Path, lock: _KeyringLock, fingerprint: str) -> list[int]:
    """:meth:`.crypto.GnuPG.s2k_counts`."""
    argv = [binary, "--homedir", str(home), "--batch", "--with-colons"]
    argv += ["--with-keygrip", "--list-secret-keys", fingerprint]
    with lock.hold():
        listing = _run_tool(argv, "gpg could not list the secret key")
        counts = []
        for line in listing.stdout.splitlines():
            fields = line.split(":")
            if fields[0] != "grp" or len(fields) < 10:
                continue
            path = home / "private-keys-v1.d" / f"{fields[9]}.key"
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


def _verify_detached(
    binary: str, home: Path, lock: _KeyringLock, data: bytes, signature: bytes
) -> list[list[str]]:
    """:meth:`.crypto.GnuPG.verify_detached_bytes`."""
    with tempfile.TemporaryDirectory(prefix="sdwm-sig-") as tmp:
        sig_path = Path(tmp) / "manifest.sig"
        sig_path.write_bytes(signature)
        try:
            with lock.hold():
                result = subprocess.run(
                    [
                        binary,
                        "--homedir",
                        str(home),
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


def _calibrated_s2k_count(home: Path) -> int:
    """:meth:`.crypto.GnuPG.calibrated_s2k_count`."""
    argv = ["gpg-connect-agent", "--homedir", str(home), "GETINFO s2k_count_cal", "/bye"]
    result = _run_tool(argv, "gpg-agent could not be asked")
    for line in result.stdout.splitlines():
        if line.startswith("D ") and line[2:].strip().isdigit():
            return int(line[2:].strip())
    raise CryptoError(f"gpg-agent did not say its S2K count: {result.stderr.strip()}")


def _check_passwd(returncode: int, stderr: str) -> None:
    """Raise when a ``gpg --passwd`` failed (:meth:`.crypto.GnuPG.reprotect_key`)."""
    # gpg --passwd exits 0 even when the agent refused the passphrase: its messages
    # tell.
    if "Bad passphrase" in stderr:
        raise DecryptionError("the passphrase is wrong")
    if returncode != 0 or "error changing" in stderr:
        errors = [line[5:] for line in stderr.splitlines() if line.startswith("gpg: ")]
        last = errors[-1] if errors else "no message"
        raise CryptoError(f"gpg could not protect the key: {last}")


def _check_encryption_key(info: KeyInfo, now: float) -> None:
    """Raise unless the key ``info`` describes can encrypt at ``now``
    (:meth:`.crypto.GnuPG.require_encryption_keys`)."""
    fpr = info.fingerprint
    if info.revoked:
        raise KeyExpiredError(f"key {fpr} is revoked")
    if info.expires is not None and info.expires <= now:
        day = time.strftime("%Y-%m-%d", time.gmtime(info.expires))
        raise KeyExpiredError(f"key {fpr} expired on {day}")
    if not info.can_encrypt:
        raise KeyUnusableError(f"key {fpr} has no usable encryption subkey (expired or missing)")
