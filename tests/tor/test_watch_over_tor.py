"""``transfer watch`` over real Tor, set up as docs/transfer.md section 5 says: a danger
report filed at the source onion reaches the on-call within one interval plus a minute,
as the default digest, by mail and webhook each reached over Tor and by a local command.

The source UI is published on the private network's onion host, the transfer API with
client authorization (the ``transfer_onion`` fixture of test_transfer_over_tor.py); the
watcher polls through client 0's SOCKS port. The on-call's mail server (SMTP with
STARTTLS and AUTH, a certificate for its onion name) and webhook receiver run on
loopback, each published as an onion service on the same host, so the watcher reaches
them only through tor (``smtp_via_tor``, ``webhook_via_tor``).

This is the Tor half of the docs' walk (tests/docs/test_watch_doc.py has the rest): the
watcher reaches the drop only by an onion address, so it is here that section 5's setup
block is run by bash as written, its settings written as written with only the
addresses filled in (the onion, tor's SOCKS port, the mail server, the webhook, the
command's path, the on-call key's fingerprint; the commented-out Tor and CA settings
turned on), and the watcher started with the systemd unit's command line (the program
and the home it names replaced by this checkout's and a temp dir), plus the documented
options that shorten the interval for a test.
"""

from __future__ import annotations

import email
import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from privnet import PrivateTorNetwork, fetch_until_ok
from test_source_over_tor import connect_host, tor_source
from test_transfer_over_tor import TransferOnion, transfer_onion  # noqa: F401 - a fixture

from securedrop_wm.drop import Drop
from securedrop_wm.transfer import create_token
from securedrop_wm.transfer_client.channels import SUBJECT
from tests.conftest import Responders, short_tempdir
from tests.docs.test_watch_doc import (
    carry_to_transfer_machine,
    kill_agent,
    run_setup_block,
    shell_env,
    unit_block,
    unit_directives,
    watch_settings,
)
from tests.live import LiveServer, free_port
from tests.transfer.receivers import Mailbox, smtp_server, webhook_receiver, write_certificate

pytestmark = pytest.mark.tor

INTERVAL = 20.0
#: The docs' ``smtp_user``, kept as written; the password is what the person carries.
SMTP_USER, SMTP_PASSWORD = "drop-alerts", "a mail password"
DANGER_LINE = re.compile(r"^danger\s+(\d+)\s+(\d+)\s+(\d+)\s*$", re.MULTILINE)


def danger_pending(body: bytes) -> int:
    return int(json.loads(body)["levels"]["danger"]["pending"])


def mail_text(raw: bytes, responders: Responders, folder: Path) -> str:
    """A mail's encrypted PGP/MIME part, decrypted with the on-call key."""
    mail = email.message_from_bytes(raw)
    assert mail["Subject"] == SUBJECT
    assert mail.get_content_type() == "multipart/encrypted"
    _, body = mail.get_payload()  # type: ignore[misc]
    path = folder / "mail.asc"
    path.write_text(body.get_payload())
    return responders.decrypt(path).decode()


def mail_danger(mailbox: Mailbox, responders: Responders, folder: Path) -> list[int]:
    """The pending danger count each mail says."""
    counts = []
    for raw in list(mailbox.messages):
        match = DANGER_LINE.search(mail_text(raw, responders, folder))
        assert match, raw
        counts.append(int(match.group(1)))
    return counts


def paged(folder: Path) -> list[bytes]:
    """What the local command was given, one alert a file, oldest first."""
    return [p.read_bytes() for p in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)]


def test_a_danger_report_at_the_onion_reaches_the_on_call_within_one_interval(
    tor_network: PrivateTorNetwork,
    transfer_onion: TransferOnion,  # noqa: F811 - the fixture imported above
    live_server: LiveServer,
    drop: Drop,
    responders: Responders,
    data_dir: Path,
) -> None:
    laptop = tor_network.clients[0]
    base = short_tempdir("sdwm-watch-tor-")
    home, carried, pages = base / "home", base / "carried", base / "pages"
    home.mkdir()
    pages.mkdir()
    folder = home / ".config/securedrop-wm"
    # The local command: keeps each alert it is given in a file of its own.
    page_oncall = base / "page-oncall"
    page_oncall.write_text(f'#!/bin/sh\ncat > "$(mktemp -p {pages})"\n')
    page_oncall.chmod(0o755)
    # Carried to the transfer machine: the on-call's key, a status-only token, the password.
    token = create_token(drop, "watcher", status_only=True)
    carry_to_transfer_machine(carried, responders.team_public.read_bytes(), token, SMTP_PASSWORD)
    smtp_port = free_port()
    watch: subprocess.Popen[bytes] | None = None
    try:
        with webhook_receiver() as hook, connect_host(tor_network) as onion:
            service = onion.publish(data_dir / "onion" / "source", {80: live_server.port})
            hook_port = urlsplit(hook.url).port
            assert hook_port is not None
            hook_onion = onion.publish(base / "onion-webhook", {80: hook_port})
            mail_onion = onion.publish(base / "onion-mail", {587: smtp_port})

            # Section 5's setup block, as written, as the watcher's user.
            run_setup_block(carried, shell_env(home))
            # The team's mail server has a certificate for its onion name, its own CA,
            # which the watcher trusts through the docs' smtp_ca_file = "ca.pem".
            write_certificate(mail_onion.address, folder / "ca.pem", base / "mail-key.pem")
            config = folder / "transfer.toml"
            config.write_text(
                watch_settings(
                    {
                        "onion": f'"{transfer_onion.address}"',
                        "socks": f'"127.0.0.1:{laptop.socks_port}"',
                        "alert_key": f'"{responders.team_fingerprint}"',
                        "smtp_host": f'"{mail_onion.address}"',
                        "smtp_ca_file": '"ca.pem"',
                        "smtp_via_tor": "true",
                        "webhook_url": f'"http://{hook_onion.address}/drop-oncall"',
                        "webhook_via_tor": "true",
                        "alert_command": f'["{page_oncall}", "--quiet"]',
                    }
                )
            )
            # The unit's command line, with this checkout's program and this home.
            (exec_start,) = unit_directives(unit_block())["ExecStart"]
            program, *args = shlex.split(exec_start)
            assert args[-2:] == ["--config", "/home/sdwm/.config/securedrop-wm/transfer.toml"]
            args[-1] = str(config)
            args += ["--interval", str(INTERVAL), "--poll-interval", "5", "--poll-jitter", "1"]
            args += ["--retries", "2", "--retry-delay", "1"]

            with smtp_server(
                folder / "ca.pem",
                base / "mail-key.pem",
                "starttls",
                port=smtp_port,
                mailbox=Mailbox(SMTP_USER, SMTP_PASSWORD),
            ) as (_, mailbox):
                watch = subprocess.Popen(
                    [sys.executable, "-m", "securedrop_wm", *args],
                    cwd=base,
                    stderr=subprocess.PIPE,
                    env=shell_env(home),
                )
                # The watcher reaches the drop: its first digest says nothing waits, on
                # every channel (mail and webhook through their onions).
                (first,) = hook.wait(1, timeout=INTERVAL + 90)
                assert json.loads(first)["drop_reachable"]
                assert danger_pending(first) == 0
                mailbox.wait(1, timeout=60)
                assert mail_danger(mailbox, responders, base)[0] == 0
                assert mailbox.logins and set(mailbox.logins) == {SMTP_USER}
                deadline = time.monotonic() + 60
                while not paged(pages):
                    assert time.monotonic() < deadline, "the command was never run"
                    time.sleep(0.2)
                assert json.loads(paged(pages)[0])["kind"] == "digest"

                # A source in danger reports at the source onion, through Tor.
                fetch_until_ok(tor_network.clients[1].session(), service.url)
                source = tor_source(tor_network.clients[1], service.url)
                try:
                    source.new_codename()
                    source.get("/submit")
                    thanks = source.submit(
                        {"category": "threats", "urgency": "danger", "what_happened": "Help."},
                        "threat.txt",
                        b"They know where I live.\n",
                    )
                finally:
                    source.close()
                assert thanks.status_code == 200
                filed = time.monotonic()

                # The next digests say so, within one interval plus a minute, on every
                # channel.
                deadline = filed + INTERVAL + 60
                while not (
                    any(danger_pending(b) == 1 for b in hook.bodies)
                    and any(danger_pending(b) == 1 for b in paged(pages))
                    and 1 in mail_danger(mailbox, responders, base)
                ):
                    assert time.monotonic() < deadline, (hook.bodies, len(mailbox.messages))
                    time.sleep(0.5)
                print(f"danger report to on-call: {time.monotonic() - filed:.1f} s")
                told = json.loads(next(b for b in hook.bodies if danger_pending(b) == 1))
                assert told["kind"] == "digest"
                assert told["levels"]["danger"] == {"pending": 1, "arrived": 1, "new": 1}
                # Every message of a channel is one size.
                assert len({len(b) for b in hook.bodies}) == 1
                assert len({len(b) for b in paged(pages)}) == 1
                texts = [mail_text(m, responders, base) for m in list(mailbox.messages)]
                assert len({len(t.encode()) for t in texts}) == 1
                watch.send_signal(signal.SIGTERM)
                _, err = watch.communicate(timeout=60)
        assert watch.returncode == 0, err
        assert b"watching " in err
    finally:
        if watch is not None and watch.poll() is None:
            watch.kill()
            watch.wait(timeout=10)
        kill_agent(folder / "alert-gnupg")
        shutil.rmtree(base, ignore_errors=True)
