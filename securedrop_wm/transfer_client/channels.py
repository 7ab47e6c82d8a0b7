"""Where ``transfer watch`` sends its alerts: mail over SMTP (TLS, authentication,
encrypted to the on-call's OpenPGP key), a webhook (a JSON POST), a local command.

Each is reached directly or, if set so, through tor's SOCKS port. Every message has
the same size and (for mail) the same subject whatever it says.
"""

from __future__ import annotations

import base64
import secrets
import smtplib
import socket
import ssl
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Sequence
from email.encoders import encode_7or8bit
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.policy import compat32
from email.utils import formatdate
from pathlib import Path
from typing import Any, Protocol

import requests
import socks

from ..crypto import GnuPG
from ..errors import SecureDropError
from .alerts import Alert
from .errors import TransferConfigError, TransferError, _clean
from .settings import TransferSettings, read_private_file
from .watch_settings import SmtpSettings

#: Every mail has this subject: it must not tell a digest from a danger alert.
SUBJECT = "securedrop-wm watch"
_TIMEOUT = 60.0

#: ``(host, port, timeout)`` -> a connected socket.
Connect = Callable[[str, int, float], socket.socket]


class AlertDeliveryError(TransferError):
    """An alert could not be sent through one channel (the others are still tried)."""

    retryable = True


class Channel(Protocol):
    """One way of reaching the on-call."""

    name: str

    def send(self, alert: Alert) -> None:
        """Deliver ``alert``. :raises AlertDeliveryError: it could not be."""

    def close(self) -> None:
        """Let go of what the channel holds (a connection pool, a gpg-agent)."""


def build_channels(settings: TransferSettings) -> list[Channel]:
    """The channels the settings configure, ready to send (secrets read, key found).

    :raises TransferConfigError: a secret file or the on-call's key is missing.
    """
    watch = settings.watch
    socks_at = (settings.socks_host, settings.socks_port)
    channels: list[Channel] = []
    if watch.smtp is not None:
        assert watch.gnupg_home is not None and watch.key is not None  # checked on load
        channels.append(
            MailChannel(
                watch.smtp,
                GnuPG(watch.gnupg_home),
                watch.key,
                socks_at if watch.smtp.via_tor else None,
            )
        )
    if watch.webhook_url is not None:
        channels.append(
            WebhookChannel(watch.webhook_url, socks_at if watch.webhook_via_tor else None)
        )
    if watch.command:
        channels.append(CommandChannel(watch.command))
    return channels


# -- mail -----------------------------------------------------------------------------


class MailChannel:
    """PGP/MIME mail (RFC 3156) encrypted to the on-call's key, sent over SMTP with TLS."""

    name = "mail"

    def __init__(
        self, smtp: SmtpSettings, gpg: GnuPG, key: str, via: tuple[str, int] | None
    ) -> None:
        self.smtp, self.gpg, self.key = smtp, gpg, key
        self._connect = _connector(via)
        self._password = (
            None
            if smtp.password_file is None
            else read_private_file(smtp.password_file, "SMTP password file", "change the password")
        )
        try:
            gpg.require_encryption_keys([key])
        except SecureDropError as e:
            raise TransferConfigError(
                f"the on-call's key {key} cannot be used from {gpg.home}: {e}"
            ) from None

    def message(self, alert: Alert) -> bytes:
        """The whole mail: headers and the encrypted, fixed-size alert."""
        inner = b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + alert.text().encode()
        with tempfile.TemporaryDirectory(prefix="sdwm-alert-") as work:
            out = Path(work) / "alert.gpg"
            try:
                self.gpg.encrypt_bytes(inner, [self.key], out)
            except SecureDropError as e:
                raise AlertDeliveryError(f"the alert could not be encrypted: {e}") from None
            armored = armor(out.read_bytes())
        mail = MIMEMultipart("encrypted", protocol="application/pgp-encrypted")
        mail["From"], mail["To"], mail["Subject"] = self.smtp.sender, self.smtp.recipient, SUBJECT
        mail["Date"] = formatdate(usegmt=True)
        domain = self.smtp.sender.rpartition("@")[2] or "localhost"
        mail["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
        version = MIMEApplication(b"Version: 1\r\n", "pgp-encrypted", _encoder=encode_7or8bit)
        body = MIMEApplication(armored.encode(), "octet-stream", _encoder=encode_7or8bit)
        body.add_header("Content-Disposition", "inline", filename="encrypted.asc")
        mail.attach(version)
        mail.attach(body)
        return mail.as_bytes(policy=compat32.clone(linesep="\r\n"))  # SMTP's line ends

    def send(self, alert: Alert) -> None:
        data = self.message(alert)
        s = self.smtp
        context = ssl.create_default_context(cafile=None if s.ca_file is None else str(s.ca_file))
        try:
            # Connected here: given the host, smtplib checks it against the certificate.
            client: smtplib.SMTP
            if s.tls == "implicit":
                client = _SMTPS(self._connect, s.host, s.port, context=context, timeout=_TIMEOUT)
            else:
                client = _SMTP(self._connect, s.host, s.port, timeout=_TIMEOUT)
            with client:
                if s.tls == "starttls":
                    client.starttls(context=context)
                if s.user is not None and self._password is not None:
                    _login(client, s.user, self._password)
                client.sendmail(s.sender, [s.recipient], data)
        except (smtplib.SMTPException, OSError, socks.ProxyError) as e:
            raise AlertDeliveryError(
                f"mail to {s.host}:{s.port} failed: {_clean(str(e) or type(e).__name__, 200)}"
            ) from None

    def close(self) -> None:
        self.gpg.close()


def _login(client: smtplib.SMTP, user: str, password: str) -> None:
    """Authenticate with one mechanism, PLAIN or else LOGIN (over TLS, both are fine):
    a refusal is then final, not the start of a round of other mechanisms."""
    client.ehlo_or_helo_if_needed()
    offered = client.esmtp_features.get("auth", "").upper().split()
    mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        raise smtplib.SMTPException("the server offers neither AUTH PLAIN nor AUTH LOGIN")
    client.user, client.password = user, password
    answer = getattr(client, f"auth_{mechanism.lower()}")
    client.auth(mechanism, answer, initial_response_ok=mechanism == "PLAIN")


class _SMTP(smtplib.SMTP):
    """SMTP whose connection is made by ``connect`` (directly or through tor)."""

    def __init__(self, connect: Connect, host: str, port: int, **kwargs: Any) -> None:
        self._connect_socket = connect
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._connect_socket(host, port, timeout)


class _SMTPS(smtplib.SMTP_SSL):
    """SMTP over TLS from the first byte, connected by ``connect``."""

    def __init__(self, connect: Connect, host: str, port: int, **kwargs: Any) -> None:
        self._connect_socket = connect
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        raw = self._connect_socket(host, port, timeout)
        return self.context.wrap_socket(raw, server_hostname=host)


def armor(data: bytes) -> str:
    """OpenPGP binary data as an ASCII-armored message (RFC 9580, 6.2; no checksum)."""
    lines = textwrap.wrap(base64.b64encode(data).decode(), 64)
    return "\r\n".join(["-----BEGIN PGP MESSAGE-----", "", *lines, "-----END PGP MESSAGE-----", ""])


def _connector(via: tuple[str, int] | None) -> Connect:
    """Connect directly, or through the SOCKS5 proxy ``via`` (tor resolves the name)."""
    if via is None:
        return lambda host, port, timeout: socket.create_connection((host, port), timeout)

    def through_tor(host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = socks.create_connection(
            (host, port),
            timeout=timeout,
            proxy_type=socks.SOCKS5,
            proxy_addr=via[0],
            proxy_port=via[1],
            proxy_rdns=True,
        )
        return sock

    return through_tor


# -- webhook and command --------------------------------------------------------------


class WebhookChannel:
    """POSTs the alert as JSON (e.g. to a self-hosted ntfy topic or a Matrix bridge)."""

    name = "webhook"

    def __init__(self, url: str, via: tuple[str, int] | None) -> None:
        self.url = url
        self._http = requests.Session()
        self._http.trust_env = False
        if via is not None:
            proxy = f"socks5h://{via[0]}:{via[1]}"
            self._http.proxies = {"http": proxy, "https": proxy}

    def send(self, alert: Alert) -> None:
        try:
            response = self._http.post(
                self.url,
                data=alert.json().encode(),
                headers={"Content-Type": "application/json", "User-Agent": "securedrop-wm"},
                timeout=_TIMEOUT,
                allow_redirects=False,
            )
            response.close()
        except requests.RequestException as e:
            raise AlertDeliveryError(f"the webhook failed: {_clean(str(e), 200)}") from None
        if not 200 <= response.status_code < 300:
            raise AlertDeliveryError(f"the webhook answered HTTP {response.status_code}")

    def close(self) -> None:
        self._http.close()


class CommandChannel:
    """Runs a program (no shell) with the alert as JSON on its standard input."""

    name = "command"

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)

    def send(self, alert: Alert) -> None:
        try:
            done = subprocess.run(
                self.argv,
                input=alert.json().encode(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AlertDeliveryError(f"the alert command {self.argv[0]} failed: {e}") from None
        if done.returncode != 0:
            said = _clean(done.stderr.decode("utf-8", "replace"), 200)
            raise AlertDeliveryError(
                f"the alert command {self.argv[0]} exited with status {done.returncode}: {said}"
            )

    def close(self) -> None:
        pass
