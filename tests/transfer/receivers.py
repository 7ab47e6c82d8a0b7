"""Where ``transfer watch``'s alerts land in the tests: a real SMTP server (aiosmtpd, TLS
and AUTH, with a certificate made here) and a webhook receiver, both on loopback."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.live import free_port

USER, PASSWORD = "oncall", "correct horse battery"
#: Every key an alert's JSON has: levels and counts, nothing a report holds.
ALERT_KEYS = {"kind", "levels", "drop_reachable", "failed_polls", "danger_overdue", "padding"}


def wait_for(items: list[bytes], count: int, timeout: float, what: str) -> list[bytes]:
    """The first ``count`` of ``items`` (filled by another thread), once they are in."""
    end = time.monotonic() + timeout
    while len(items) < count:
        assert time.monotonic() < end, f"{len(items)} {what} of {count} came"
        time.sleep(0.05)
    return items[:count]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key: ``(cert.pem, key.pem)`` in ``folder``."""
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    write_certificate("127.0.0.1", cert_path, key_path)
    return cert_path, key_path


def write_certificate(name: str, cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate (its own CA) for ``name``, an IP address or a host name
    (a team's mail server published as an onion has one for its onion name): a client
    trusts it as its CA file."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    try:
        alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        alternative = x509.DNSName(name)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


@dataclass
class Mailbox:
    """What the SMTP server received for its one user: each message's bytes, and who
    logged in."""

    user: str = USER
    password: str = PASSWORD
    messages: list[bytes] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        assert isinstance(envelope.content, bytes)
        self.messages.append(envelope.content)
        return "250 OK"

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            self.user.encode(),
            self.password.encode(),
        )
        if ok:
            self.logins.append(self.user)
        return AuthResult(success=ok, handled=False)  # a refusal then answers 535

    def wait(self, count: int, timeout: float) -> list[bytes]:
        """The first ``count`` messages, once they are in (or fail after ``timeout``)."""
        return wait_for(self.messages, count, timeout, "message(s)")


@contextmanager
def smtp_server(
    cert: Path, key: Path, tls: str, port: int | None = None, mailbox: Mailbox | None = None
) -> Iterator[tuple[int, Mailbox]]:
    """An SMTP server on 127.0.0.1 (``port``, or a free one) with AUTH for ``mailbox``'s
    user, over STARTTLS (required) or implicit TLS."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = mailbox or Mailbox()
    port = port or free_port()
    options: dict[str, Any] = (
        {"tls_context": context, "require_starttls": True, "auth_require_tls": True}
        if tls == "starttls"
        else {"ssl_context": context, "auth_require_tls": False}
    )
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, authenticator=mailbox, **options
    )
    controller.start()
    try:
        yield port, mailbox
    finally:
        controller.stop()


@dataclass
class Webhook:
    """What the webhook receiver got; ``status`` is what it answers."""

    url: str
    bodies: list[bytes] = field(default_factory=list)
    status: int = 200

    def wait(self, count: int, timeout: float) -> list[bytes]:
        """The first ``count`` bodies, once they are in (or fail after ``timeout``)."""
        return wait_for(self.bodies, count, timeout, "POST(s)")


@contextmanager
def webhook_receiver() -> Iterator[Webhook]:
    """An HTTP server on 127.0.0.1 that keeps every POST body."""
    hook = Webhook("")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length", "0"))
            assert self.headers["Content-Type"] == "application/json"
            hook.bodies.append(self.rfile.read(length))
            self.send_response(hook.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
