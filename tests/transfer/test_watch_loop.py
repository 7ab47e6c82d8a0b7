"""``transfer watch`` as a whole: the loop against the real transfer API under gunicorn
(read over loopback here; over the onion in tests/tor/test_watch_over_tor.py), the
command with tor not running, and its settings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from securedrop_wm.drop import Drop
from securedrop_wm.status_counts import TransferStatus
from securedrop_wm.transfer_client import (
    TransferConfigError,
    TransferInterruptedError,
    load_transfer_settings,
)
from securedrop_wm.transfer_client.alerts import AlertPolicy
from securedrop_wm.transfer_client.channels import WebhookChannel
from securedrop_wm.transfer_client.watch import Watcher
from securedrop_wm.transfer_client.watch_settings import WatchSettings
from tests.bundles.helpers import submit
from tests.live import LiveServer, free_port

from .conftest import bearer
from .receivers import webhook_receiver

ONION = "pg6mmjiyjmcrsslvykfwnntlaru7p5svn6y2ymmju6nubxndf4pscryd.onion"


def direct_status(url: str, token: str) -> Callable[[], TransferStatus]:
    """One poll of ``GET /status`` over loopback, failing as the client's polls do."""

    def poll() -> TransferStatus:
        try:
            with requests.get(f"{url}/status", headers=bearer(token), timeout=10) as r:
                return TransferStatus.from_json(r.json())
        except requests.RequestException as e:
            raise TransferInterruptedError(f"the connection broke: {e}") from None

    return poll


def test_a_danger_report_reaches_the_on_call_in_the_next_digest_then_unreachable(
    drop: Drop, token: str, tmp_path: Path
) -> None:
    settings = WatchSettings(
        policy=AlertPolicy(interval=2.0, unreachable_after=2, realert_after=600),
        poll_interval=0.4,
        poll_jitter=0.1,
    )
    config = drop.settings.data_dir / "config.toml"
    server = LiveServer.transfer_api(config, free_port(), tmp_path / "api.log").start()
    problems: list[str] = []
    with webhook_receiver() as hook:
        channel = WebhookChannel(hook.url, None)
        watcher = Watcher(
            settings, direct_status(server.url, token), [channel], report=problems.append
        )
        thread = threading.Thread(target=watcher.run)
        thread.start()
        try:
            (first,) = hook.wait(1, timeout=10)
            assert json.loads(first)["levels"]["danger"]["pending"] == 0
            submit(drop, urgency="danger")
            filed = time.monotonic()
            (_, second) = hook.wait(2, timeout=10)
            # Within one interval (plus the time to poll), and as a digest: no
            # message off the schedule says when the report came.
            assert time.monotonic() - filed < settings.policy.interval + 1
            body = json.loads(second)
            assert body["kind"] == "digest" and body["drop_reachable"]
            assert body["levels"]["danger"] == {"pending": 1, "arrived": 1, "new": 1}
            assert len(first) == len(second)
            # The drop goes away: after two failed polls, "unreachable".
            server.stop()
            end = time.monotonic() + 15
            while not any(json.loads(b)["kind"] == "unreachable" for b in hook.bodies):
                assert time.monotonic() < end, hook.bodies
                time.sleep(0.1)
        finally:
            watcher.stop.set()
            thread.join(timeout=30)
            channel.close()
            server.stop()
    assert not thread.is_alive()
    assert problems and all("could not be read" in p for p in problems)
    kinds = [json.loads(b)["kind"] for b in hook.bodies]
    assert kinds.count("unreachable") == 1 and set(kinds) == {"digest", "unreachable"}


def test_watch_with_tor_not_running_alerts_through_the_command_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("sdwm_" + "a" * 40 + "\n")
    token_file.chmod(0o600)
    alerts = tmp_path / "alerts"
    alerts.mkdir()
    script = (
        "import sys, uuid; "
        "open(sys.argv[1] + '/' + uuid.uuid4().hex, 'wb').write(sys.stdin.buffer.read())"
    )
    config = tmp_path / "transfer.toml"
    config.write_text(
        f'onion = "{ONION}"\nsocks = "127.0.0.1:{free_port()}"\ntoken_file = "token"\n'
        "retries = 0\nwatch_unreachable_after = 2\n"
        f"alert_command = {json.dumps([sys.executable, '-c', script, str(alerts)])}\n"
    )
    watch = subprocess.Popen(
        [sys.executable, "-m", "securedrop_wm", "transfer", "watch", "--config", str(config)]
        + ["--interval", "3600", "--poll-interval", "1", "--poll-jitter", "0.2"],
        stderr=subprocess.PIPE,
        env={k: v for k, v in os.environ.items() if not k.startswith("SDWM_")},
    )
    try:
        end = time.monotonic() + 30
        while not list(alerts.iterdir()):
            assert watch.poll() is None and time.monotonic() < end
            time.sleep(0.1)
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=30)
    finally:
        if watch.returncode is None:
            watch.kill()
            _, err = watch.communicate()
    assert watch.returncode == 0, err
    (sent,) = alerts.iterdir()
    body = json.loads(sent.read_bytes())
    assert (body["kind"], body["drop_reachable"], body["failed_polls"]) == ("unreachable", False, 2)
    assert b"watching " in err and b"tor is not running at 127.0.0.1" in err


def test_watch_settings_are_checked_and_a_channel_is_required(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("sdwm_" + "a" * 40 + "\n")
    token_file.chmod(0o600)
    base = f'onion = "{ONION}"\ntoken_file = "token"\n'
    config = tmp_path / "transfer.toml"
    for extra, message in (
        ('smtp_host = "mail.example"\nsmtp_from = "a@b"\nsmtp_to = "c@d"', "sent encrypted"),
        ("smtp_port = 25", "smtp_port is set but smtp_host is not"),
        ('webhook_url = "ftp://x"', "webhook_url must be an http"),
        ('alert_command = "notify-send"', "alert_command must be a list"),
        ("watch_poll_interval = 10\nwatch_poll_jitter = 10", "less than watch_poll_interval"),
        ("watch_interval = 0", "watch_interval must be a number from 1"),
        ('alert_key = "ABCD"', "alert_key"),
        ("watch_intervall = 60", "did you mean 'watch_interval'"),
    ):
        config.write_text(base + extra + "\n")
        with pytest.raises(TransferConfigError, match=message):
            load_transfer_settings(config, environ={})
    config.write_text(base)
    env = {"SDWM_TRANSFER_WATCH_INTERVAL": "60", "SDWM_TRANSFER_WEBHOOK_URL": '"http://x/"'}
    settings = load_transfer_settings(config, watch={"watch_poll_interval": 20}, environ=env)
    assert settings.watch.policy.interval == 60 and settings.watch.poll_interval == 20
    assert settings.watch.webhook_url == "http://x/" and not settings.watch.policy.immediate_danger
    none = subprocess.run(
        [sys.executable, "-m", "securedrop_wm", "transfer", "watch", "--config", str(config)],
        capture_output=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("SDWM_")},
        timeout=60,
    )
    assert none.returncode == 1 and b"no alert channel" in none.stderr
