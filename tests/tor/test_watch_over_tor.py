"""``transfer watch`` over real Tor: a danger report filed at the source onion reaches
the on-call within one interval plus a minute, as the default digest.

The source UI is published on the private network's onion host, the transfer API with
client authorization (the ``transfer_onion`` fixture of test_transfer_over_tor.py);
the watcher polls through client 0's SOCKS port and posts to a webhook on loopback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from privnet import PrivateTorNetwork, fetch_until_ok
from test_source_over_tor import connect_host, tor_source
from test_transfer_over_tor import TransferOnion, transfer_onion  # noqa: F401 - a fixture

from tests.live import LiveServer
from tests.transfer.receivers import webhook_receiver

pytestmark = pytest.mark.tor

INTERVAL = 20.0


def danger_pending(body: bytes) -> int:
    return int(json.loads(body)["levels"]["danger"]["pending"])


def test_a_danger_report_at_the_onion_reaches_the_on_call_within_one_interval(
    tor_network: PrivateTorNetwork,
    transfer_onion: TransferOnion,  # noqa: F811 - the fixture imported above
    live_server: LiveServer,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    laptop = tor_network.clients[0]
    with webhook_receiver() as hook, connect_host(tor_network) as onion:
        service = onion.publish(data_dir / "onion" / "source", {80: live_server.port})
        config = tmp_path / "transfer.toml"
        config.write_text(
            f'onion = "{transfer_onion.address}"\n'
            f'socks = "127.0.0.1:{laptop.socks_port}"\n'
            f'token_file = "{transfer_onion.token_file}"\n'
            f'webhook_url = "{hook.url}"\n'
            f"watch_interval = {INTERVAL}\nwatch_poll_interval = 5\nwatch_poll_jitter = 1\n"
            "retries = 2\nretry_delay = 1\n"
        )
        watch = subprocess.Popen(
            [sys.executable, "-m", "securedrop_wm", "transfer", "watch", "--config", str(config)],
            stderr=subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("SDWM_")},
        )
        try:
            # The watcher reaches the drop: its first digest says nothing waits.
            (first,) = hook.wait(1, timeout=INTERVAL + 90)
            assert json.loads(first)["drop_reachable"]
            assert json.loads(first)["levels"]["danger"]["pending"] == 0

            # A source in danger reports at the source onion, through Tor.
            fetch_until_ok(tor_network.clients[1].session(), service.url)
            source = tor_source(tor_network.clients[1], service.url)
            try:
                source.new_codename()
                source.get("/submit")
                thanks = source.submit(
                    {"category": "threats", "urgency": "danger", "what_happened": "Help now."},
                    "threat.txt",
                    b"They know where I live.\n",
                )
            finally:
                source.close()
            assert thanks.status_code == 200
            filed = time.monotonic()

            # The next digests say so, within one interval plus a minute.
            deadline = filed + INTERVAL + 60
            while not any(danger_pending(b) == 1 for b in hook.bodies):
                assert time.monotonic() < deadline, hook.bodies
                time.sleep(0.2)
            print(f"danger report to on-call: {time.monotonic() - filed:.1f} s")
            told = json.loads(next(b for b in hook.bodies if danger_pending(b) == 1))
            assert told["kind"] == "digest"
            assert told["levels"]["danger"] == {"pending": 1, "arrived": 1, "new": 1}
            assert len({len(b) for b in hook.bodies}) == 1  # every message one size
        finally:
            watch.send_signal(signal.SIGTERM)
            _, err = watch.communicate(timeout=60)
    assert watch.returncode == 0, err
    assert b"watching " in err
