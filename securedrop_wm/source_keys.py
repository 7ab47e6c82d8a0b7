"""Source keys, each in a keybox file of its own: ``<GnuPG home>/sources/<FPR>.kbx``.

Before, every source key went into the home's ``pubring.kbx``: GnuPG rewrote that whole
file for each new source, under the exclusive keyring lock, and the day-coarsening that
follows every key change re-dated every file of the home (three per source), so a new
source, and every upload and login waiting for the lock, cost more with each source
(0.93 s under the lock at 15,000 sources). Now a new source's key is made in a throwaway
home (:meth:`.crypto.GnuPG.create_key`) whose keybox holds that key alone: it is moved
into ``sources/`` as it is, its secret key files (one per keygrip) into the agent's
``private-keys-v1.d`` and its revocation certificate into ``openpgp-revocs.d``, and only
those files and their folders are day-coarsened. The gpg runs that need a source's key
(encrypting a reply to it, decrypting its replies, exporting it) name its keybox with
``--keyring``; the home's keybox is read as well, so the source keys a home made by an
earlier release keeps there still work (they are not moved: they go when their source
is removed).

Beside the keybox, ``sources/<FPR>.grips`` names the keygrips of its secret key files
(public data: they derive from the public key), so that the files of one source can be
found without a gpg run or a scan of the folder: to day-coarsen them again after a gpg
run read them (:func:`settle`: a read sets the access time to the second, and under
``relatime`` the first read after a coarsening always does), and to remove them.

Removal needs no passphrase: the keybox, the secret key files (found by keygrip) and the
revocation certificate are unlinked. :func:`remove` does any number of keys in one pass
with one coarsening (keys in the home's keybox: a gpg run per 200 keys to read their
keygrips and one to delete them).
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .gpg_support import _KeyringLock, _run_tool
from .store import coarsen_times

if TYPE_CHECKING:
    from .crypto import GnuPG

SOURCES = "sources"
_KEY_FOLDERS = ("private-keys-v1.d", "openpgp-revocs.d")
_FPR = re.compile(r"^[0-9A-F]{40}$")
# gpg 2.2 reads at most 40 keyring resources in one run (keydb.c).
_KEYBOXES_PER_RUN = 30
_FPRS_PER_RUN = 200


def keybox(home: Path, fingerprint: str) -> Path:
    """Where the keybox of the source key ``fingerprint`` is (whether it exists or not)."""
    if not _FPR.match(fingerprint):
        raise ValueError(f"not a fingerprint: {fingerprint!r}")
    return home / SOURCES / f"{fingerprint}.kbx"


def keyring_args(home: Path, fingerprints: Iterable[str]) -> list[str]:
    """The ``--keyring`` options naming the own keyboxes of those of ``fingerprints``
    that have one (operator keys and a former release's source keys have none)."""
    args: list[str] = []
    for fpr in fingerprints:
        if _FPR.match(fpr):
            path = home / SOURCES / f"{fpr}.kbx"
            if path.exists():
                args += ["--keyring", str(path)]
    return args


def adopt(home: Path, workshop: Path, fingerprint: str) -> list[Path]:
    """Move a key made in the throwaway home ``workshop`` (which holds it alone) into
    ``home``: its keybox to ``sources/``, its secret key files and revocation certificate
    to their folders. Only what moved and the folders it moved into are day-coarsened.

    :returns: the files now in ``home``.
    """
    moved: list[Path] = []
    folders = [home]
    for name in (*_KEY_FOLDERS, SOURCES):
        (home / name).mkdir(mode=0o700, exist_ok=True)
        folders.append(home / name)
    # Secret parts first: a keybox is only ever present with its secret key.
    for name in _KEY_FOLDERS:
        for entry in (workshop / name).iterdir():
            moved.append(home / name / entry.name)
            os.replace(entry, moved[-1])
    box = keybox(home, fingerprint)
    grips = box.with_suffix(".grips")
    grips.write_text("".join(f"{p.stem}\n" for p in moved if p.parent.name == _KEY_FOLDERS[0]))
    moved.append(grips)
    moved.append(box)
    _date_keybox_header(workshop / "pubring.kbx")
    os.replace(workshop / "pubring.kbx", box)
    _coarsen_home_files(home)  # listing the home sets its access time: folders last
    for path in (*moved, *folders):
        coarsen_times(path)
    return moved


def _date_keybox_header(path: Path) -> None:
    """Set the two times of a keybox's header blob (creation, last maintenance) to the
    start of their day: gpg writes them from the real clock, ``--faked-system-time`` or
    not. The header is 32 bytes: length, type 1, version, flags, ``KBXf``, reserved,
    then the two 32-bit big-endian times at offsets 16 and 20; it has no checksum."""
    with path.open("r+b") as f:
        header = f.read(32)
        if len(header) < 32 or header[4] != 1 or header[8:12] != b"KBXf":
            return
        times = struct.unpack_from(">II", header, 16)
        f.seek(16)
        f.write(struct.pack(">II", *(t - t % 86_400 for t in times)))


def settle(home: Path, fingerprints: Iterable[str]) -> None:
    """Day-coarsen again what a gpg run that read the own keyboxes of ``fingerprints``
    (and their secret keys) left with a time of day: those files and the home's own
    files (its configuration, keybox, locks). A bounded number of files."""
    folders: set[Path] = set()
    for fpr in fingerprints:
        if not _FPR.match(fpr):
            continue
        box = keybox(home, fpr)
        folders.add(box.parent)  # gpg's lock files beside the keybox re-date it
        targets = [box, *(home / _KEY_FOLDERS[0] / f"{g}.key" for g in _sidecar_grips(box))]
        for path in targets:
            try:
                coarsen_times(path)
            except FileNotFoundError:
                continue
    for folder in folders:
        with contextlib.suppress(FileNotFoundError):
            coarsen_times(folder)
    _coarsen_home_files(home)
    coarsen_times(home)


def _sidecar_grips(box: Path) -> list[str]:
    try:
        text = box.with_suffix(".grips").read_text()
    except FileNotFoundError:
        return []
    return [g for g in text.split() if _FPR.match(g)]


def _coarsen_home_files(home: Path) -> None:
    """The files directly in the home (not its folders' contents): a dozen or so."""
    for entry in os.scandir(home):
        if entry.is_symlink() or entry.is_dir(follow_symlinks=False):
            continue
        try:
            coarsen_times(Path(entry.path))
        except FileNotFoundError:  # a file gpg just removed
            continue


def remove(gpg: GnuPG, binary: str, lock: _KeyringLock, fingerprints: Sequence[str]) -> int:
    """Remove source keys without their passphrases (see the module doc).

    :returns: how many of ``fingerprints`` had a key here.
    """
    home = gpg.home
    wanted = list(dict.fromkeys(f for f in fingerprints if _FPR.match(f)))
    own = [f for f in wanted if keybox(home, f).exists()]
    own_set = set(own)
    legacy = [f for f in wanted if f not in own_set]
    base = [binary, "--homedir", str(home), "--batch", "--with-colons", "--with-keygrip"]
    grips: list[str] = []
    found: set[str] = set()
    unnamed = []
    for fpr in own:
        named = _sidecar_grips(keybox(home, fpr))
        grips += named
        if named:
            found.add(fpr)
        else:  # no sidecar: ask gpg
            unnamed.append(fpr)
    for chunk in _chunks(unnamed, _KEYBOXES_PER_RUN):
        argv = [*base, "--no-default-keyring", *keyring_args(home, chunk), "--list-keys"]
        _parse_listing(_run_tool(argv, "gpg could not list keys").stdout, grips, found)
    legacy_found: set[str] = set()
    if legacy:
        with lock.hold():
            for chunk in _chunks(legacy, _FPRS_PER_RUN):
                argv = [*base, "--list-keys", *chunk]
                out = _run_tool(argv, "gpg could not list keys").stdout
                _parse_listing(out, grips, legacy_found)
    legacy_found &= set(legacy)
    with lock.hold(exclusive=True):
        for grip in grips:
            (home / "private-keys-v1.d" / f"{grip}.key").unlink(missing_ok=True)
        for fpr in wanted:
            (home / "openpgp-revocs.d" / f"{fpr}.rev").unlink(missing_ok=True)
        for fpr in own:
            path = keybox(home, fpr)
            path.unlink(missing_ok=True)
            path.with_name(f"{path.name}~").unlink(missing_ok=True)
            path.with_suffix(".grips").unlink(missing_ok=True)
        # Without their secret key files gpg deletes the public keys without asking.
        for chunk in _chunks(sorted(legacy_found), _FPRS_PER_RUN):
            argv = [binary, "--homedir", str(home), "--batch", "--yes", "--delete-keys", *chunk]
            _run_tool(argv, "gpg could not delete keys")
        _coarsen_after_removal(home, changed_keybox=bool(legacy_found))
    return len(found & own_set) + len(legacy_found)


def _parse_listing(out: str, grips: list[str], primaries: set[str]) -> None:
    expect_primary = False
    for line in out.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            expect_primary = True
        elif fields[0] == "fpr" and expect_primary and len(fields) > 9:
            primaries.add(fields[9])
            expect_primary = False
        elif fields[0] == "grp" and len(fields) > 9 and re.fullmatch(r"[0-9A-F]{40}", fields[9]):
            grips.append(fields[9])


def _coarsen_after_removal(home: Path, *, changed_keybox: bool) -> None:
    """Day-coarsen the folders removal changed (and the home's own files, when keys left
    its keybox): not the files that stayed."""
    if changed_keybox:
        _coarsen_home_files(home)
    for path in (home, *(home / name for name in (*_KEY_FOLDERS, SOURCES))):
        try:
            coarsen_times(path)
        except FileNotFoundError:
            continue


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
