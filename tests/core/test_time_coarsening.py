"""What a seized server says about when things happened: days, never times of day.

The database keeps days; these tests look where a seizer would look next: the times of
the files in the store and in the GnuPG home, and the timestamps gpg writes into keys,
the keybox and revocation certificates.
"""

from __future__ import annotations

import base64
import calendar
import os
import re
import struct
import subprocess
import time
from pathlib import Path

from flask.testing import FlaskClient

from securedrop_wm.drop import Drop
from securedrop_wm.settings import Settings
from securedrop_wm.store import coarsen_times
from tests.conftest import new_source
from tests.workstation.fixtures import report

DAY = 86_400
_ISO_TIME = re.compile(rb"(20\d{6})T(\d{6})")
_ARMOR = re.compile(rb"-----BEGIN PGP [A-Z ]+-----\r?\n(?:[^\n]*:[^\n]*\n)*\r?\n(.*?)\n[=-]", re.S)


def _file_times(root: Path) -> dict[str, tuple[float, float]]:
    """(atime, mtime) of ``root`` and of everything under it, symlinks aside. A folder's
    times are read before it is listed: listing it sets its access time (relatime)."""
    found = {}
    folders = [root]
    while folders:
        folder = folders.pop()
        st = folder.lstat()
        found[str(folder.relative_to(root))] = (st.st_atime, st.st_mtime)
        for path in folder.iterdir():
            if path.is_dir() and not path.is_symlink():
                folders.append(path)
            elif not path.is_symlink():
                st = path.lstat()
                found[str(path.relative_to(root))] = (st.st_atime, st.st_mtime)
    return found


def _times_of_day_written(root: Path, start: float, end: float) -> set[tuple[str, int]]:
    """Timestamps from ``start`` to ``end`` that are not a day's start, found in any file
    under ``root``: as 32-bit big-endian numbers (OpenPGP packets, keybox blobs, trustdb),
    as ISO times (the agent's key files), also inside ASCII armor (revocation certificates).
    """
    found = set()
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        blobs = [data]
        for block in _ARMOR.findall(data):
            blobs.append(base64.b64decode(b"".join(block.split()), validate=False))
        for blob in blobs:
            for i in range(len(blob) - 3):
                (value,) = struct.unpack_from(">I", blob, i)
                if start <= value <= end and value % DAY:
                    found.add((path.name, value))
            for day, hms in _ISO_TIME.findall(blob):
                value = calendar.timegm(time.strptime((day + hms).decode(), "%Y%m%d%H%M%S"))
                if start <= value <= end and hms != b"000000":
                    found.add((path.name, value))
    return found


def _key_times(gpg_home: Path) -> dict[str, tuple[int, int | None]]:
    """Fingerprint to (creation, expiry) of every key and subkey, as gpg lists them
    (``--with-colons`` fields 6 and 7)."""
    out = subprocess.run(
        ["gpg", "--homedir", str(gpg_home), "--batch", "--with-colons", "--list-keys"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    keys, times = {}, (0, None)
    for f in (line.split(":") for line in out.splitlines()):
        if f[0] in ("pub", "sub"):
            times = (int(f[5]), int(f[6]) if f[6] else None)
        elif f[0] == "fpr":
            keys[f[9]] = times
    return keys


def _subkey(gpg_home: Path, fingerprint: str) -> str:
    out = subprocess.run(
        ["gpg", "--homedir", str(gpg_home), "--batch", "--with-colons", "-k", fingerprint],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr")][1]


def test_store_files_and_folder_carry_only_the_day(client: FlaskClient, settings: Settings) -> None:
    # Given a source who sends a report with a file
    new_source(client)
    report(client, what_happened="They followed me home.", files=[(b"\x89PNG" * 999, "a.png")])
    # Then every ciphertext in the store, and the store folder, says only the day
    times = _file_times(settings.store_dir)
    assert len(times) >= 3  # the folder, the message and the file
    exact = {name: t for name, t in times.items() if any(v % DAY for v in t)}
    assert exact == {}


def test_a_new_source_key_is_dated_to_the_day_and_leaves_no_time_of_day(
    client: FlaskClient, settings: Settings
) -> None:
    keys_before = _key_times(settings.gpg_home)
    start = time.time()
    # (the data folder was made a moment ago: its own times are no source's)
    written_before = _times_of_day_written(settings.gpg_home, start - 3600, start + 3600)
    # When a new source is created (a key with its own revocation certificate)
    new_source(client)
    end = time.time() + 1
    # Then no file in the GnuPG home has a time of day among its times (read before gpg
    # runs again: any gpg run reads files and takes a lock in the folder)
    times = _file_times(settings.gpg_home)
    assert {name: t for name, t in times.items() if any(v % DAY for v in t)} == {}
    # Nor in its bytes: the key, its keybox entry, its secret key files, its revocation
    # certificate and the trust database all say the day
    written = _times_of_day_written(settings.gpg_home, start - 3600, end)
    assert written - written_before == set()
    # And the source's key and subkey are dated to the start of the day
    keys = _key_times(settings.gpg_home)
    new_keys = [keys[fpr] for fpr in keys.keys() - keys_before.keys()]
    assert len(new_keys) == 2
    for created, _ in new_keys:
        assert created % DAY == 0 and start - DAY < created <= start


def test_an_expiring_key_expires_at_a_day_start_and_encrypts_at_once(
    drop: Drop, tmp_path: Path
) -> None:
    gpg = drop.gpg
    fpr = gpg.create_key("securedrop-wm source", "a" * 64, expire_days=30)
    keys = _key_times(gpg.home)
    (created, expires), (sub_created, sub_expires) = keys[fpr], keys[_subkey(gpg.home, fpr)]
    assert created % DAY == 0 and created == sub_created
    assert expires == sub_expires == created + 30 * DAY
    gpg.require_encryption_keys([fpr])
    gpg.encrypt_bytes(b"a reply", [fpr], tmp_path / "reply.gpg")
    assert gpg.decrypt_file(tmp_path / "reply.gpg", "a" * 64) == b"a reply"


def test_the_day_is_kept_and_only_the_time_of_day_dropped(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    os.utime(path, (1_700_000_000.5, 1_600_000_123.25))
    coarsen_times(path)
    st = path.stat()
    assert (st.st_atime_ns, st.st_mtime_ns) == (
        1_699_920_000 * 10**9,
        1_599_955_200 * 10**9,
    )
