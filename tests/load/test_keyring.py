"""New sources' keys are made while uploads stream: neither may break the other.

GnuPG 2.2 swaps ``pubring.kbx`` by two renames; a gpg started between them finds no
keyring. Before the keyring lock in ``crypto.py``, this test saw a few percent of key
creations and uploads fail within seconds.
"""

from __future__ import annotations

import os
import shutil
import threading
import time

from securedrop_wm.crypto import GnuPG
from securedrop_wm.errors import SecureDropError
from tests.conftest import short_tempdir


def test_key_creation_and_streaming_encryption_run_side_by_side() -> None:
    home = short_tempdir("sdwm-kr-")
    gpg = GnuPG(home / "gnupg")
    errors: list[str] = []
    done = {"keys": 0, "uploads": 0}
    try:
        team = gpg.create_key("Response team", None)
        deadline = time.monotonic() + 4

        def create() -> None:
            while time.monotonic() < deadline:
                try:
                    gpg.create_key("source", "derived passphrase")
                    done["keys"] += 1
                except SecureDropError as e:
                    errors.append(f"create: {e}")

        def upload(n: int) -> None:
            out = home / f"upload-{n}"
            while time.monotonic() < deadline:
                try:
                    writer = gpg.start_encryption([team], out)
                    for _ in range(4):
                        writer.write(os.urandom(64 * 1024))
                    writer.close()
                    done["uploads"] += 1
                except SecureDropError as e:
                    errors.append(f"upload: {e}")
                out.unlink(missing_ok=True)

        threads = [threading.Thread(target=create) for _ in range(2)]
        threads += [threading.Thread(target=upload, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        # Neither side starves the other.
        assert done["keys"] >= 5 and done["uploads"] >= 20, done
    finally:
        gpg.close()
        shutil.rmtree(home, ignore_errors=True)


def test_a_stalled_upload_does_not_hold_up_new_sources() -> None:
    """An upload over a slow Tor link can take minutes: a new source's key is made meanwhile."""
    home = short_tempdir("sdwm-kr-")
    gpg = GnuPG(home / "gnupg")
    try:
        team = gpg.create_key("Response team", None)
        writer = gpg.start_encryption([team], home / "upload")
        writer.write(os.urandom(1000))  # then nothing more for now
        deadline = time.monotonic() + 10
        while not (home / "upload").exists():  # gpg is running
            assert time.monotonic() < deadline
            time.sleep(0.01)
        creation = threading.Thread(target=gpg.create_key, args=("source", "passphrase"))
        creation.start()
        creation.join(timeout=10)
        made_meanwhile = not creation.is_alive()
        writer.write(os.urandom(1000))
        writer.close()
        creation.join()
        assert made_meanwhile
        assert (home / "upload").stat().st_size > 2000
    finally:
        gpg.close()
        shutil.rmtree(home, ignore_errors=True)
