"""Disk full: the whole data dir (database, GnuPG home, store) on an 8 MiB tmpfs made for
the test, filled to different levels while the real server runs.

Sources get a clear "Please try again later" page (503) whether the disk fills before a
report, in the middle of a streamed file, or while a new source's key is made; nothing
is half-written or corrupted; and once space returns the same server takes reports again,
earlier reports and a source's key still work, and start-up clean-up finds no orphan.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import Responders, init_data_dir
from tests.live import LiveServer, free_port
from tests.load.client import RandomFile, SourceClient, accepted
from tests.load.verify import Sent, compare, read_store

from .disk import store_state, tmpfs

MIB = 1024 * 1024
KIB = 1024
TRY_LATER = "Please try again later"


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """An 8 MiB tmpfs mounted for this test, unmounted afterwards."""
    with tmpfs("8m") as disk:
        try:
            yield disk
        finally:  # its gpg-agent holds sockets on the disk
            subprocess.run(["gpgconf", "--homedir", str(disk / "data" / "gnupg"), "--kill", "all"])


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` with a file until writes fail, then give back ``leave`` bytes."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for block in (MIB, 4 * KIB):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                pass
    finally:
        os.close(fd)
    os.truncate(filler, max(0, filler.stat().st_size - leave))
    return filler


def is_try_later(response: requests.Response) -> bool:
    return (
        response.status_code == 503
        and TRY_LATER in response.text
        and "Traceback" not in response.text
    )


@pytest.mark.slow
def test_full_disk_gets_try_again_later_and_the_drop_recovers(
    small_disk: Path, responders: Responders
) -> None:
    data = small_disk / "data"
    init_data_dir(data, responders)
    config = data / "config.toml"
    logs = small_disk.parent / "logs"  # off the small disk: gunicorn's own log survives
    sent: list[Sent] = []
    server = LiveServer(config, free_port(), log_dir=logs).start()
    alice = SourceClient(server.url)
    bob = SourceClient(server.url)
    try:
        # Given two sources, one of whom has a report stored and a reply waiting
        alice_codename, _ = alice.new_codename()
        assert alice_codename
        proof = RandomFile("before.bin", 1 * MIB)
        assert accepted(alice.report("before the disk filled", proof))
        sent.append(Sent("before the disk filled", {proof.name: proof.sha256}))
        designation = subprocess.run(
            [sys.executable, "-m", "securedrop_wm", "--config", str(config), "list-sources"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\t")[0]
        subprocess.run(
            [sys.executable, "-m", "securedrop_wm", "--config", str(config), "add-reply"]
            + [designation, "-m", "We have your report."],
            check=True,
            capture_output=True,
        )
        assert bob.new_codename()[0]
        before = store_state(data)

        for leave in (0, 64 * KIB, 512 * KIB):
            # When the disk is full, or fills during a 2 MiB upload
            filler = fill(small_disk, leave)
            big = alice.report(f"too big for {leave}", RandomFile("big.bin", 2 * MIB))
            # Then the source is told to try again later, and nothing is kept
            assert is_try_later(big), (leave, big.status_code)
            assert store_state(data) == before
            # And a text-only report and a new source either work or get the same page
            text = f"text only with {leave} bytes free"
            message = bob.report(text)
            newcomer = SourceClient(server.url)
            created, page = newcomer.new_codename()
            newcomer.close()
            if leave == 0:
                assert is_try_later(message) and is_try_later(page)
            else:
                assert accepted(message) or is_try_later(message)
                assert created or is_try_later(page)
            if accepted(message):
                sent.append(Sent(text))
            before = store_state(data)
            assert before[0] == before[1]  # the store holds what the database refers to
            filler.unlink()

        # When space returns, the same server takes reports again
        after = RandomFile("after.bin", 1 * MIB)
        assert accepted(alice.report("after space returned", after))
        sent.append(Sent("after space returned", {after.name: after.sha256}))
        assert SourceClient(server.url).new_codename()[0]
        # and Alice's key still opens the reply waiting for her
        returning = SourceClient(server.url)
        assert "We have your report." in returning.login(alice_codename).text
        returning.close()
    finally:
        alice.close()
        bob.close()
        server.stop()
    # And every report decrypts exactly; a restart's clean-up finds nothing to remove
    assert compare(sent, read_store(data, responders.home)) == []
    with LiveServer(config, free_port(), log_dir=logs):
        referenced, on_disk = store_state(data)
    assert referenced == on_disk
