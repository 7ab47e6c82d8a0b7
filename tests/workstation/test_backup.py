"""Issue 16, item 6: the workstation's backup, its restore on a fresh machine, the team
key's export, and the reminder banner. Real gpg, real SQLite, the real CLI."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient

from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.errors import SettingsError
from securedrop_wm.workstation import backup, cases, replies
from securedrop_wm.workstation.cli import workstation as ws_cli
from securedrop_wm.workstation.importing import import_bundle
from securedrop_wm.workstation.models import Backup, Report
from securedrop_wm.workstation.services import open_workstation
from securedrop_wm.workstation.settings import load_workstation_settings
from tests.conftest import Responders, short_tempdir
from tests.workstation.fixtures import Station, export, login, source_reports

REPORT = "They posted my home address on the village pump."
FILE = b"screenshot bytes that must never leave in clear"
PASSPHRASE = re.compile(r"^  ([A-Z2-7]{4}(?:-[A-Z2-7]{4}){7})$", re.MULTILINE)
# Tables a restore must bring back row for row (audit_events: see the test).
TABLES = ("accounts", "cases", "reports", "submissions", "notes", "outgoing_replies")


def run(*args: str, given: str = "\n") -> Result:
    """The real CLI; ``given`` answers its prompts (an empty key passphrase)."""
    return CliRunner().invoke(ws_cli, list(args), input=given)


def first_packet_tag(path: Path) -> int:
    """The tag of the first OpenPGP packet (RFC 4880, 4.2); -1 when it is not one."""
    header = path.read_bytes()[0]
    if not header & 0x80:
        return -1
    return header & 0x3F if header & 0x40 else (header >> 2) & 0x0F


def rows(database: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(database) as db:
        return db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()  # noqa: S608


def folder_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def worked(station: Station, drop: Drop, tmp_path: Path) -> Station:
    """A workstation with one imported case holding a file, a note and a queued reply."""
    source_reports(drop, REPORT, files=[(FILE, "shot.png")])
    import_bundle(station.ws, "admin", export(drop, tmp_path, "first.tar"))
    with station.ws.sessions() as db:
        case_id = db.query(Report).one().case_id
    cases.add_note(station.ws, "admin", case_id, "Called the stewards.")
    replies.queue_reply(station.ws, "admin", case_id, "We are on it.")
    return station


@pytest.mark.slow
def test_backup_restores_byte_exact_on_a_fresh_workstation(
    worked: Station, drop: Drop, tmp_path: Path
) -> None:
    ws = worked.ws
    config = str(ws.settings.config_path)
    archive = tmp_path / "ws.gpg"
    # When the admin backs up under a generated passphrase
    made = run("backup", "--config", config, "--output", str(archive), "--by", "admin")
    assert made.exit_code == 0, made.output
    found = PASSPHRASE.search(made.output)
    assert found, made.output
    passphrase = found.group(1)
    # Then the archive is one OpenPGP message (symmetric-key session key packet, tag 3)
    # and holds neither the report's text nor the file's bytes in clear
    assert first_packet_tag(archive) == 3
    data = archive.read_bytes()
    assert REPORT.encode() not in data and FILE not in data
    # and the backup is recorded and audited
    with ws.sessions() as db:
        record = db.query(Backup).one()
    assert (record.kind, record.actor, record.protection) == (
        "archive",
        "admin",
        "generated passphrase",
    )
    # and it refuses to overwrite the archive
    again = run("backup", "--config", config, "--output", str(archive))
    assert again.exit_code != 0 and "refusing to overwrite" in again.output

    base = short_tempdir("sdwm-rs-")
    try:
        target = base / "new"
        # A wrong passphrase is refused and leaves nothing
        wrong = backup.generated_passphrase().passphrase or ""
        refused = run("restore", str(archive), "--data-dir", str(target), "--passphrase", wrong)
        assert refused.exit_code != 0 and "cannot be decrypted" in refused.output
        assert not target.exists() and list(base.iterdir()) == []
        # The passphrase as printed (typed in lower case, with spaces) restores
        typed = passphrase.lower().replace("-", " ")
        restored = run("restore", str(archive), "--data-dir", str(target), given=typed + "\n")
        assert restored.exit_code == 0, restored.output
        # Cases, notes, replies, accounts: row for row; files byte for byte
        for table in TABLES:
            assert rows(target / "cases.sqlite", table) == rows(
                ws.settings.data_dir / "cases.sqlite", table
            ), table
        assert folder_bytes(target / "files") == folder_bytes(ws.settings.files_dir)
        assert folder_bytes(ws.settings.files_dir)
        # the audit log: the original's events up to the backup, then the restore's own
        original = rows(ws.settings.data_dir / "cases.sqlite", "audit_events")
        copied = rows(target / "cases.sqlite", "audit_events")
        assert copied[: len(original) - 1] == original[:-1]
        assert original[-1][3] == "backup" and copied[-1][3] == "restored"
        checked = run("verify-audit", "--config", str(target / "config.toml"))
        assert checked.exit_code == 0 and "audit log intact" in checked.output, checked.output
        # A new export bundle from the same drop imports and decrypts on the restored one
        source_reports(drop, "A second report, after the disk died.")
        fresh = open_workstation(load_workstation_settings(target / "config.toml", environ={}))
        try:
            result = import_bundle(fresh, "admin", export(drop, tmp_path, "second.tar"))
            assert result.reports == 1
            with fresh.sessions() as db:
                texts = {r.text for r in db.query(Report)}
        finally:
            fresh.close()
        assert any("after the disk died" in t for t in texts)
        # A non-empty target is refused
        other = run("restore", str(archive), "--data-dir", str(target), "--passphrase", typed)
        assert other.exit_code != 0 and "not empty" in other.output
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def backup_key() -> tuple[Path, Path, str]:
    """A backup key pair kept off the workstation: public and secret key files."""
    home = short_tempdir("sdwm-bkey-")
    gpg = GnuPG(home)
    fpr = gpg.create_key("Workstation backups", None)
    (home / "public.asc").write_text(gpg.export_public_key(fpr))
    (home / "secret.asc").write_text(gpg.export_secret_key(fpr))
    gpg.close()
    yield home / "public.asc", home / "secret.asc", fpr
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_backup_to_a_backup_key_and_refused_when_damaged(
    worked: Station, tmp_path: Path, backup_key: tuple[Path, Path, str]
) -> None:
    public, secret, fpr = backup_key
    config = str(worked.ws.settings.config_path)
    archive = tmp_path / "k.gpg"
    key_args = ("--to-key", str(public), "--fingerprint", fpr)
    made = run("backup", "--config", config, "--output", str(archive), *key_args)
    assert made.exit_code == 0, made.output
    assert fpr in made.output and not PASSPHRASE.search(made.output)
    # a public-key encrypted session key packet (tag 1) first; no plaintext
    assert first_packet_tag(archive) == 1
    assert REPORT.encode() not in archive.read_bytes()
    with worked.ws.sessions() as db:
        assert db.query(Backup).order_by(Backup.id.desc()).first().protection == fpr  # type: ignore[union-attr]
    # The key was imported into a throwaway home, not the workstation's
    assert not worked.ws.gpg.has_secret_key(fpr)
    with pytest.raises(Exception):  # noqa: B017, PT011
        worked.ws.gpg.key_info(fpr)
    base = short_tempdir("sdwm-rs-")
    try:
        data = archive.read_bytes()
        tampered = tmp_path / "tampered.gpg"
        middle = len(data) // 2
        tampered.write_bytes(data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :])
        truncated = tmp_path / "truncated.gpg"
        truncated.write_bytes(data[: len(data) * 3 // 4])
        for bad in (tampered, truncated):
            out = run("restore", str(bad), "--data-dir", str(base / "x"), "--key", str(secret))
            assert out.exit_code != 0 and "cannot be decrypted" in out.output, out.output
            assert list(base.iterdir()) == []
        good = run("restore", str(archive), "--data-dir", str(base / "x"), "--key", str(secret))
        assert good.exit_code == 0, good.output
        assert (base / "x" / "cases.sqlite").is_file()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_exported_team_key_decrypts_a_team_message(
    station: Station, responders: Responders, tmp_path: Path
) -> None:
    config = str(station.ws.settings.config_path)
    out = tmp_path / "team-key.gpg"
    made = run("export-team-key", "--config", config, "--output", str(out), "--by", "admin")
    assert made.exit_code == 0, made.output
    passphrase = PASSPHRASE.search(made.output)
    assert passphrase, made.output
    # An OpenPGP message, not gpg's export of the key in clear
    assert first_packet_tag(out) == 3
    assert b"PRIVATE KEY" not in out.read_bytes()
    # A message for the team key, made elsewhere
    sender = GnuPG(tmp_path / "sender")
    sender.import_keys(responders.team_public.read_text())
    message = tmp_path / "message.gpg"
    sender.encrypt_bytes(b"for the team only", [responders.team_fingerprint], message)
    sender.close()
    # When the export is decrypted and imported into a fresh home, it decrypts it
    home = short_tempdir("sdwm-fresh-")
    fresh = GnuPG(home)
    try:
        armored = fresh.decrypt_file(out, passphrase=passphrase.group(1))
        assert responders.team_fingerprint in fresh.import_keys(armored)
        assert fresh.decrypt_file(message) == b"for the team only"
        with pytest.raises(Exception):  # noqa: B017, PT011
            fresh.decrypt_file(out, passphrase=backup.generated_passphrase().passphrase)
    finally:
        fresh.close()
        shutil.rmtree(home, ignore_errors=True)
    with station.ws.sessions() as db:
        assert db.query(Backup).one().kind == "team_key"
    audit_page = run("verify-audit", "--config", config)
    assert audit_page.exit_code == 0


def test_reminder_banner_until_a_backup_and_again_after_a_week(
    ws_client: FlaskClient, station: Station, tmp_path: Path
) -> None:
    assert "Backup due" not in ws_client.get("/login").text
    login(ws_client, station)
    for page in ("/", "/import", "/audit"):
        text = ws_client.get(page).text
        assert "Backup due" in text and "never been backed up" in text, page
        assert "securedrop-wm workstation backup --output" in text
    backup.create_backup(station.ws, tmp_path / "b.gpg", "admin", backup.generated_passphrase())
    assert "Backup due" not in ws_client.get("/").text
    station.clock.advance(days=7, hours=1)
    login(ws_client, station)
    text = ws_client.get("/").text
    assert "Backup due" in text and "more than 7 day(s) old" in text


def test_backup_reminder_days_bounds(station: Station) -> None:
    config = station.ws.settings.config_path
    text = config.read_text()
    config.write_text(text + "backup_reminder_days = 0\n")
    with pytest.raises(SettingsError, match="backup_reminder_days"):
        load_workstation_settings(config, environ={})
    config.write_text(text + "backup_reminder_days = 30\n")
    assert load_workstation_settings(config, environ={}).backup_reminder_days == 30


def test_a_chosen_passphrase_is_refused() -> None:
    with pytest.raises(backup.BackupError, match="not a backup passphrase"):
        backup.normalize_passphrase("correct horse battery staple")


def test_a_team_key_with_a_passphrase_is_exported_with_it(
    station: Station, responders: Responders, tmp_path: Path
) -> None:
    # Given a team key protected by a passphrase a person chose (as a careful team's is)
    config = str(station.ws.settings.config_path)
    home, team = str(station.ws.settings.gpg_home), station.ws.team_fingerprint()
    subprocess.run(
        ["gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback"]
        + ["--passphrase", "our team passphrase", "--passwd", team],
        check=True,
        capture_output=True,
    )
    # Without its passphrase gpg cannot export it: said, and nothing is written
    out = tmp_path / "team-key.gpg"
    refused = run("export-team-key", "--config", config, "--output", str(out), "--by", "admin")
    assert refused.exit_code != 0 and "has a passphrase" in refused.output
    assert not out.exists()
    # With it (asked, not on the command line), the export holds the key, still protected
    made = run(
        "export-team-key", "--config", config, "--output", str(out), "--by", "admin",
        "--ask-key-passphrase", given="our team passphrase\n",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    passphrase = PASSPHRASE.search(made.output)
    assert passphrase, made.output
    fresh_home = short_tempdir("sdwm-fresh-")
    fresh = GnuPG(fresh_home)
    try:
        armored = fresh.decrypt_file(out, passphrase=passphrase.group(1))
        assert team in fresh.import_keys(armored)
        message = tmp_path / "message.gpg"
        fresh.encrypt_bytes(b"for the team only", [team], message)
        with pytest.raises(Exception):  # noqa: B017, PT011 (locked: no passphrase given)
            fresh.decrypt_file(message)
        assert fresh.decrypt_file(message, passphrase="our team passphrase") == b"for the team only"
    finally:
        fresh.close()
        shutil.rmtree(fresh_home, ignore_errors=True)
