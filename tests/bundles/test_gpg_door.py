"""A bundle's signature is checked through the GnuPG wrapper: its binary, its keyring lock."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from securedrop_wm.bundles import UnknownSignerError, verify_reply_bundle, write_reply_bundle
from securedrop_wm.crypto import GnuPG
from tests.conftest import Responders


def _bundle(signer_gpg: GnuPG, responders: Responders, out: Path) -> Path:
    # The server id only has to be a fingerprint: the check below does not pin a server.
    write_reply_bundle(
        signer_gpg, responders.workstation_fingerprint, responders.team_fingerprint, 1, [], [], out
    )
    return out


def _recording_gpg(folder: Path) -> tuple[Path, Path]:
    """A gpg binary that notes each run's arguments, then runs the real gpg."""
    real = shutil.which("gpg")
    assert real is not None
    log = folder / "calls.log"
    script = folder / "recording-gpg"
    script.write_text(f'#!/bin/sh\necho "$*" >> "{log}"\nexec "{real}" "$@"\n')
    script.chmod(0o700)
    return script, log


def test_signature_check_runs_the_configured_gpg_binary(
    signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    # Given a genuine reply bundle and a keyring whose gpg_binary is a recording wrapper
    bundle = _bundle(signer_gpg, responders, tmp_path / "r.tar")
    binary, log = _recording_gpg(tmp_path)
    gpg = GnuPG(responders.home, str(binary))
    # When the bundle is verified
    verified = verify_reply_bundle(bundle, gpg, responders.workstation_fingerprint, None, None)
    # Then it passes, and the signature was checked by the configured binary
    assert verified.manifest.workstation_id == responders.workstation_fingerprint
    assert any("--verify" in line for line in log.read_text().splitlines())


def test_signature_check_refuses_another_signer_through_the_wrapper(
    signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    # A good signature by a key other than the pinned one is still refused as before
    bundle = _bundle(signer_gpg, responders, tmp_path / "r.tar")
    with pytest.raises(UnknownSignerError, match="pinned workstation key"):
        verify_reply_bundle(bundle, signer_gpg, responders.team_fingerprint, None, None)


def test_signature_check_waits_for_a_keyring_change(
    signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    # Given a bundle, and a key change in progress (the keyring held exclusively)
    bundle = _bundle(signer_gpg, responders, tmp_path / "r.tar")
    gpg = GnuPG(responders.home)
    done = threading.Event()

    def verify() -> None:
        verify_reply_bundle(bundle, gpg, responders.workstation_fingerprint, None, None)
        done.set()

    with gpg._keyring.hold(exclusive=True):
        worker = threading.Thread(target=verify)
        worker.start()
        # Then the signature check does not run gpg while the keyring may be half-written
        assert not done.wait(0.5)
    # ...and completes once the change is over
    worker.join(60)
    assert done.is_set()
