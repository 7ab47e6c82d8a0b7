"""The team key's passphrase is stretched as gpg itself would: a stolen key file costs an
attacker gpg-agent's calibrated S2K count per guess, not the drop server's minimum."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from securedrop_wm import crypto
from securedrop_wm.drop import Drop
from securedrop_wm.errors import DecryptionError
from securedrop_wm.workstation import importing
from securedrop_wm.workstation.errors import SecretKeyLockedError
from securedrop_wm.workstation.models import AuditEvent
from securedrop_wm.workstation.services import open_workstation
from tests.workstation.fixtures import ADMIN, Station, export, source_reports

PASSPHRASE = "our team's long passphrase"
# The drop server's count, which a human passphrase must never get again.
SERVER_COUNT = 65536


def test_a_team_key_made_with_a_passphrase_gets_the_calibrated_count(station: Station) -> None:
    # Given the workstation's own GnuPG home (as first-run setup uses it)
    gpg = station.ws.gpg
    # When a team key is made with a passphrase a person chose
    fingerprint = gpg.create_key("securedrop-wm response team", PASSPHRASE)
    # Then its key files (primary key and subkey) hold at least the agent's calibration
    counts = gpg.s2k_counts(fingerprint)
    calibrated = gpg.calibrated_s2k_count()
    assert len(counts) == 2
    assert calibrated > 1000 * SERVER_COUNT  # a real calibration, not the minimum
    assert min(counts) >= calibrated, (counts, calibrated)


def test_a_weak_key_of_an_older_workstation_is_protected_again_at_its_next_unlock(
    station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Given a workstation set up before the fix: its agent ran with "s2k-count 65536"
    # and the team key got its passphrase then
    settings = station.ws.settings
    home = settings.gpg_home
    fingerprint = station.ws.team_fingerprint()
    station.ws.close()
    conf = home / "gpg-agent.conf"
    conf.write_text(conf.read_text() + f"s2k-count {SERVER_COUNT}\n")
    # An agent still running from the setup would protect with its own count: stop it
    # (and wait for it) so the next one reads the old configuration.
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=True)
    subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--pinentry-mode", "loopback"]
        + ["--passphrase", PASSPHRASE, "--passwd", fingerprint],
        check=True,
        capture_output=True,
    )
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], check=True)
    source_reports(drop, "first report", files=[(b"abc", "a.txt")])
    first = export(drop, tmp_path, "first.tar")

    # When the updated workstation starts and the team key is unlocked for an import
    ws = open_workstation(settings)
    ws.now = station.clock
    try:
        assert ws.gpg.s2k_counts(fingerprint) == [SERVER_COUNT, SERVER_COUNT]
        with pytest.raises(SecretKeyLockedError):
            importing.import_bundle(ws, ADMIN, first, passphrase="not the passphrase")
        assert ws.gpg.s2k_counts(fingerprint) == [SERVER_COUNT, SERVER_COUNT]
        result = importing.import_bundle(ws, ADMIN, first, passphrase=PASSPHRASE)
        assert result.reports == 1

        # Then the key is protected at the calibrated count, with the same passphrase
        counts = ws.gpg.s2k_counts(fingerprint)
        assert min(counts) >= ws.gpg.calibrated_s2k_count(), counts
        assert "s2k-count" not in conf.read_text()
        with ws.sessions() as db:
            actions = db.scalars(select(AuditEvent.action)).all()
        assert actions.count("key.protect") == 1
        source_reports(drop, "second report")
        second = export(drop, tmp_path, "second.tar")
        with pytest.raises(SecretKeyLockedError):
            importing.import_bundle(ws, ADMIN, second)
        assert importing.import_bundle(ws, ADMIN, second, passphrase=PASSPHRASE).reports == 1
        with pytest.raises(DecryptionError):
            ws.gpg.reprotect_key(fingerprint, "not the passphrase")
        # And a strong key is left alone at the next unlock
        with ws.sessions() as db:
            actions = db.scalars(select(AuditEvent.action)).all()
        assert actions.count("key.protect") == 1
    finally:
        ws.close()


@pytest.mark.parametrize(
    "salt",
    [b"#0102030405060708#", b'"abc\\"defg"', b"abcdefgh", b"|YWJjZGVmZ2g=|"],
    ids=["hex", "quoted", "token", "base64"],
)
def test_the_count_is_read_whatever_form_the_random_salt_takes(salt: bytes) -> None:
    # gpg-agent writes the 8 random salt bytes as hex only when they are not printable;
    # a reader that knew only hex missed about one key in six (the test above flickered).
    key_file = b"(protected openpgp-s2k3-ocb-aes ((sha1 " + salt + b' "65011712")#00#)'
    assert crypto._S2K_ADVANCED.findall(key_file) == [b"65011712"]
