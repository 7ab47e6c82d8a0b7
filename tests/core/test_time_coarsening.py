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
import socket
import struct
import subprocess
import time
from pathlib import Path

from flask.testing import FlaskClient

from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.settings import Settings
from securedrop_wm.store import coarsen_times
from tests.conftest import csrf_token, new_source
from tests.live import LiveServer
from tests.security.source_http import HttpSource
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
        # O_NOATIME: reading must not give the file an access time of its own (relatime
        # would), which no later key change re-dates since source keys have keyboxes of
        # their own (crypto.py) and a change re-dates only what it touched.
        fd = os.open(path, os.O_RDONLY | os.O_NOATIME)
        with os.fdopen(fd, "rb") as f:
            data = f.read()
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
    (``--with-colons`` fields 6 and 7), sources' own keyboxes included."""
    keyrings = [f"--keyring={p}" for p in sorted((gpg_home / "sources").glob("*.kbx"))]
    out = subprocess.run(
        ["gpg", "--homedir", str(gpg_home), "--batch", "--with-colons", *keyrings, "--list-keys"],
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


def test_a_report_leaves_no_time_of_day_in_the_gnupg_home(
    client: FlaskClient, settings: Settings
) -> None:
    # Given a source, and the GnuPG home as it stands once the source exists
    new_source(client)
    before = _file_times(settings.gpg_home)
    # When they send a report with a file (two encryptions)
    report(client, what_happened="They followed me home.", files=[(b"\x89PNG" * 999, "a.png")])
    # Then no file of the home was written: gpg keeps no random_seed, whose time would be
    # the time of the last report
    after = _file_times(settings.gpg_home)
    assert not (settings.gpg_home / "random_seed").exists()
    written = {name for name in after if after[name][1] != before.get(name, (0, 0))[1]}
    assert written == set()


def test_a_home_from_an_earlier_release_stops_writing_the_seed(tmp_path: Path) -> None:
    # Given a home whose gpg.conf predates the option, with a seed file in it
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    (home / "gpg.conf").write_text("no-greeting\n")
    (home / "random_seed").write_bytes(os.urandom(600))
    # When it is opened, then the option is added and the old seed is gone
    GnuPG(home).close()
    assert "no-random-seed-file" in (home / "gpg.conf").read_text().split()
    assert not (home / "random_seed").exists()


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


def test_an_aborted_upload_leaves_the_store_folder_at_the_day(
    live_server: LiveServer, settings: Settings
) -> None:
    # Given a logged-in source on the real server, and a store folder set to the day
    source = HttpSource(live_server.url, {})
    source.new_codename()
    coarsen_times(settings.store_dir)
    cookie = "; ".join(f"{c.name}={c.value}" for c in source.http.cookies)
    boundary = "sdwm-aborted"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        f"{csrf_token(source.page)}\r\n"
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    # When the source starts sending a 10 MiB file and disconnects after 2 MiB
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=30) as sock:
        sock.sendall(
            (
                "POST /submit HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Cookie: {cookie}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                f"Content-Length: {len(head) + 10 * 1024 * 1024}\r\n\r\n"
            ).encode()
            + head
        )
        for _ in range(8):
            sock.sendall(os.urandom(256 * 1024))
        deadline = time.monotonic() + 10
        while not any(p.name.startswith(".tmp-") for p in settings.store_dir.iterdir()):
            assert time.monotonic() < deadline, "the upload never reached the store"
            time.sleep(0.05)
    source.close()
    # Then the half-written ciphertext is gone and the folder's modification time says
    # only the day (its access time is this test's: listing the folder sets it)
    deadline = time.monotonic() + 20
    while True:
        mtime = settings.store_dir.stat().st_mtime
        leftovers = [p.name for p in settings.store_dir.iterdir()]
        if not leftovers and mtime % DAY == 0:
            break
        assert time.monotonic() < deadline, (leftovers, mtime % DAY)
        time.sleep(0.1)
