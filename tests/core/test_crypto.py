"""The GnuPG wrapper against real gpg: clear errors for keys that cannot be used,
streams that never hold more than a chunk, and aborted streams that leave nothing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from securedrop_wm.crypto import GnuPG
from securedrop_wm.errors import (
    DecryptionError,
    EncryptionError,
    KeyExpiredError,
    KeyMissingError,
    KeyUnusableError,
    OutputTooLargeError,
)
from tests.conftest import Responders, short_tempdir


@pytest.fixture
def gpg() -> Iterator[GnuPG]:
    home = short_tempdir("sdwm-g-")
    g = GnuPG(home / "home")
    yield g
    g.close()
    shutil.rmtree(home, ignore_errors=True)


def _foreign_key(*gen_args: str, faked_time: str | None = None) -> str:
    """Make a key with plain gpg in a throwaway home; return it armored."""
    home = short_tempdir("sdwm-k-")
    try:
        base = ["gpg", "--homedir", str(home), "--batch", "--passphrase", ""]
        if faked_time:
            base += ["--faked-system-time", faked_time]
        subprocess.run([*base, "--quick-gen-key", *gen_args], check=True, capture_output=True)
        return subprocess.run(
            ["gpg", "--homedir", str(home), "--armor", "--export"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=False)
        shutil.rmtree(home, ignore_errors=True)


def test_missing_key_is_named(gpg: GnuPG) -> None:
    with pytest.raises(KeyMissingError, match="0123456789ABCDEF0123456789ABCDEF01234567"):
        gpg.require_encryption_keys(["0123456789ABCDEF0123456789ABCDEF01234567"])


def test_expired_key_is_refused_with_its_date(gpg: GnuPG) -> None:
    fpr = gpg.import_keys(
        _foreign_key(
            "Old responder", "future-default", "default", "1d", faked_time="20200101T000000"
        )
    )[0]
    with pytest.raises(KeyExpiredError, match="expired on 2020-01-02"):
        gpg.require_encryption_keys([fpr])


def test_sign_only_key_is_unusable_for_encryption(gpg: GnuPG, tmp_path: Path) -> None:
    fpr = gpg.import_keys(_foreign_key("Sign only", "ed25519", "sign", "0"))[0]
    with pytest.raises(KeyUnusableError, match="no usable encryption subkey"):
        gpg.require_encryption_keys([fpr])
    with pytest.raises(EncryptionError):
        gpg.encrypt_bytes(b"secret", [fpr], tmp_path / "out.gpg")
    assert not (tmp_path / "out.gpg").exists()


def test_streamed_encryption_round_trips_and_abort_leaves_nothing(
    gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    team = gpg.import_keys(responders.team_public.read_text())[0]
    data = os.urandom(3 * 1024 * 1024 + 17)
    writer = gpg.start_encryption([team], tmp_path / "whole.gpg")
    for start in range(0, len(data), 100_000):
        writer.write(data[start : start + 100_000])
    writer.close()
    assert writer.size == len(data)
    assert responders.decrypt(tmp_path / "whole.gpg") == data

    aborted = gpg.start_encryption([team], tmp_path / "partial.gpg")
    aborted.write(data[:500_000])
    aborted.abort()
    assert not (tmp_path / "partial.gpg").exists()


def test_source_key_opens_only_with_its_passphrase(gpg: GnuPG, tmp_path: Path) -> None:
    fpr = gpg.create_key("securedrop-wm source", "a" * 64)
    gpg.encrypt_bytes("réponse".encode(), [fpr], tmp_path / "reply.gpg")
    assert gpg.decrypt_file(tmp_path / "reply.gpg", "a" * 64) == "réponse".encode()
    with pytest.raises(DecryptionError):
        gpg.decrypt_file(tmp_path / "reply.gpg", "b" * 64)


def test_a_plaintext_over_the_limit_is_refused_and_nothing_is_kept(
    gpg: GnuPG, tmp_path: Path
) -> None:
    # Given 8 MiB of zeros that gpg compressed into a few kilobytes
    fpr = gpg.create_key("Responder", None)
    zeros = tmp_path / "zeros"
    with zeros.open("wb") as f:
        f.truncate(8 << 20)
    bomb = tmp_path / "bomb.gpg"
    subprocess.run(
        ["gpg", "--homedir", str(gpg.home), "--batch", "--trust-model", "always"]
        + ["--compress-algo", "zlib", "-z", "9", "-r", fpr, "-o", str(bomb), "-e", str(zeros)],
        check=True,
        capture_output=True,
    )
    assert bomb.stat().st_size < 64 * 1024
    # When it is decrypted with a limit below its size, then it is refused, on disk or not
    out = tmp_path / "out"
    with pytest.raises(OutputTooLargeError, match=f"larger than {1 << 20} bytes"):
        gpg.decrypt_to_file(bomb, out, max_output=1 << 20)
    assert not out.exists()
    with pytest.raises(OutputTooLargeError):
        gpg.decrypt_file(bomb, max_output=(8 << 20) - 1)
    # And a limit of exactly its size, or none, lets it through whole
    gpg.decrypt_to_file(bomb, out, max_output=8 << 20)
    assert out.stat().st_size == 8 << 20
    assert gpg.decrypt_file(bomb) == bytes(8 << 20)


def test_a_key_making_home_left_by_a_killed_process_is_cleared(gpg: GnuPG) -> None:
    # Given the throwaway home of a process killed while it made a key, its agent running
    gpg.create_key("first", None)
    left = gpg.home / ".keygen" / "tmpkilled"
    left.mkdir(mode=0o700)
    answer = subprocess.run(
        ["gpg-connect-agent", "--homedir", str(left), "getinfo pid", "/bye"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    agent = int(answer.split()[1])
    hour_ago = left.stat().st_mtime - 3600
    os.utime(left, (hour_ago, hour_ago))
    # When the next key is made, then that home is gone and its agent stopped
    gpg.create_key("second", None)
    assert list((gpg.home / ".keygen").iterdir()) == []
    deadline = time.monotonic() + 10
    while _running(agent) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(agent)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_keys_do_not_name_the_machine_they_were_made_on(gpg: GnuPG) -> None:
    fpr = gpg.create_key("securedrop-wm source", "a" * 64)
    (uid,) = gpg.key_info(fpr).uids
    assert socket.gethostname() not in uid
    assert uid == "securedrop-wm source <nobody@securedrop-wm.invalid>"
