"""``transfer watch``'s channels against real receivers on loopback: mail over SMTP with
TLS and AUTH (aiosmtpd), encrypted to the on-call's key; a webhook; a local command."""

from __future__ import annotations

import email
import json
import re
import sys
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from securedrop_wm.crypto import GnuPG
from securedrop_wm.status_counts import LevelCounts, TransferStatus
from securedrop_wm.transfer_client import TransferConfigError
from securedrop_wm.transfer_client.alerts import ALERT_SIZE, Alert, AlertCore, AlertPolicy
from securedrop_wm.transfer_client.channels import (
    SUBJECT,
    AlertDeliveryError,
    CommandChannel,
    MailChannel,
    WebhookChannel,
)
from securedrop_wm.transfer_client.watch_settings import SmtpSettings
from tests.conftest import Responders, short_tempdir

from .receivers import ALERT_KEYS, PASSWORD, USER, self_signed, smtp_server, webhook_receiver


def alert(danger: int, routine: int, failures: int = 0) -> Alert:
    """An alert with these pending (and twice as many arrived) reports."""
    core = AlertCore(AlertPolicy(interval=1, unreachable_after=1), start=0)
    levels = {"routine": (routine, 2 * routine), "urgent": (0, 0), "danger": (danger, 2 * danger)}
    core.polled(0, TransferStatus({k: LevelCounts(*v) for k, v in levels.items()}))
    for _ in range(failures):
        core.poll_failed(0.5)
    return core.due(1)[0]  # the unreachable alert if polls failed, else the digest


@pytest.fixture
def oncall_home(responders: Responders) -> Iterator[GnuPG]:
    """The transfer machine's GnuPG home: the on-call's public key only."""
    gpg = GnuPG(short_tempdir("sdwm-watch-"))
    gpg.import_keys(responders.team_public.read_bytes())
    yield gpg
    gpg.close()


def mail_settings(port: int, tls: str, cert: Path, tmp_path: Path, password: str) -> SmtpSettings:
    password_file = tmp_path / "smtp-password"
    password_file.write_text(password + "\n")
    password_file.chmod(0o600)
    return SmtpSettings(
        host="127.0.0.1",
        port=port,
        tls=tls,
        sender="watch@drop.example",
        recipient="oncall@team.example",
        user=USER,
        password_file=password_file,
        ca_file=cert,
    )


def decrypt_mail(raw: bytes, responders: Responders, tmp_path: Path) -> tuple[Message, bytes]:
    """The mail's headers, and its one encrypted part decrypted with the on-call's key."""
    mail = email.message_from_bytes(raw)
    assert mail.get_content_type() == "multipart/encrypted"
    assert mail.get_param("protocol") == "application/pgp-encrypted"
    version, body = mail.get_payload()  # type: ignore[misc]
    assert version.get_payload().strip() == "Version: 1"
    armored = body.get_payload()
    assert armored.startswith("-----BEGIN PGP MESSAGE-----")
    path = tmp_path / "mail.asc"
    path.write_text(armored)
    return mail, responders.decrypt(path)


@pytest.mark.parametrize("tls", ["starttls", "implicit"])
def test_the_digest_by_mail_decrypts_with_the_on_call_key_has_one_size_and_counts_only(
    tls: str, responders: Responders, oncall_home: GnuPG, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    quiet, busy = alert(danger=0, routine=0), alert(danger=4, routine=12345678, failures=2)
    with smtp_server(cert, key, tls) as (port, mailbox):
        settings = mail_settings(port, tls, cert, tmp_path, PASSWORD)
        channel = MailChannel(settings, oncall_home, responders.team_fingerprint, None)
        channel.send(quiet)
        channel.send(busy)
        channel.close()
        first, second = mailbox.wait(2, timeout=30)
    assert mailbox.logins == [USER, USER]
    # The same size whatever the counts: the provider learns nothing from the length.
    assert len(first) == len(second)
    for raw, sent in ((first, quiet), (second, busy)):
        mail, plain = decrypt_mail(raw, responders, tmp_path)
        assert mail["Subject"] == SUBJECT and mail["To"] == "oncall@team.example"
        # Nothing but the padded alert: levels and counts.
        assert plain == b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + sent.text().encode()
        assert len(sent.text().encode()) == ALERT_SIZE
    plain = decrypt_mail(second, responders, tmp_path)[1]
    assert re.search(rb"\ndanger +4 +8 +4\n", plain)
    assert b"did not answer the last 2 polls" in plain


def test_mail_with_a_wrong_password_or_an_open_password_file_is_refused(
    responders: Responders, oncall_home: GnuPG, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    with smtp_server(cert, key, "starttls") as (port, mailbox):
        settings = mail_settings(port, "starttls", cert, tmp_path, "wrong")
        channel = MailChannel(settings, oncall_home, responders.team_fingerprint, None)
        with pytest.raises(AlertDeliveryError, match=f"mail to 127.0.0.1:{port} failed"):
            channel.send(alert(1, 1))
        assert mailbox.messages == []
    assert settings.password_file is not None
    settings.password_file.chmod(0o644)
    with pytest.raises(TransferConfigError, match="can be read by other users"):
        MailChannel(settings, oncall_home, responders.team_fingerprint, None)
    settings.password_file.chmod(0o600)
    with pytest.raises(TransferConfigError, match="cannot be used"):
        MailChannel(settings, oncall_home, responders.second_fingerprint, None)


def test_mail_to_a_server_whose_certificate_is_not_trusted_is_not_sent(
    responders: Responders, oncall_home: GnuPG, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    other, _ = self_signed(tmp_path / "other")  # a certificate, but not the server's
    with smtp_server(cert, key, "implicit") as (port, mailbox):
        settings = mail_settings(port, "implicit", other, tmp_path, PASSWORD)
        channel = MailChannel(settings, oncall_home, responders.team_fingerprint, None)
        with pytest.raises(AlertDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            channel.send(alert(1, 1))
        assert mailbox.messages == [] and mailbox.logins == []


def test_the_webhook_gets_fixed_size_json_with_counts_only() -> None:
    with webhook_receiver() as hook:
        channel = WebhookChannel(hook.url, None)
        channel.send(alert(danger=0, routine=0))
        channel.send(alert(danger=3, routine=99999))
        hook.status = 500
        with pytest.raises(AlertDeliveryError, match="HTTP 500"):
            channel.send(alert(1, 1))
        channel.close()
    first, second, _ = hook.bodies
    assert len(first) == len(second) == ALERT_SIZE
    body = json.loads(second)
    assert body["kind"] == "digest"
    assert body["levels"]["danger"] == {"pending": 3, "arrived": 6, "new": 3}
    assert set(body) == ALERT_KEYS


def test_the_local_command_gets_the_alert_on_stdin_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "alert.json"
    script = "import sys; open(sys.argv[1], 'wb').write(sys.stdin.buffer.read())"
    CommandChannel([sys.executable, "-c", script, str(out)]).send(alert(danger=2, routine=0))
    assert json.loads(out.read_bytes())["levels"]["danger"]["pending"] == 2
    # An argument is one argument: no shell sees "; touch".
    echo = "import sys; sys.stdin.buffer.read(); open(sys.argv[1], 'w').write(sys.argv[2])"
    argument = f"x; touch {tmp_path}/pwned"
    CommandChannel([sys.executable, "-c", echo, str(out), argument]).send(alert(1, 1))
    assert out.read_text() == argument and not (tmp_path / "pwned").exists()
    failing = CommandChannel([sys.executable, "-c", "import sys; sys.exit('no pager')"])
    with pytest.raises(AlertDeliveryError, match="exited with status 1: no pager"):
        failing.send(alert(1, 1))
    with pytest.raises(AlertDeliveryError, match="failed"):
        CommandChannel([str(tmp_path / "missing")]).send(alert(1, 1))
