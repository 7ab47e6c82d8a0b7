"""Tor's onion-service defences (docs/onion.md, "Defences against floods"): on the
private network, ``securedrop-wm serve --onion`` publishes the source onion with
proof-of-work and a stream limit, and a source still files a report during a small
flood of new sources over Tor; the Ansible torrc carries every defence and tor
accepts it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from privnet import PortPicker, PrivateTorNetwork, fetch_until_ok, poll
from served import (
    POW_METRICS,
    TorFlood,
    descriptor_inner_layer,
    metrics,
    open_streams,
    privnet_torrc,
    served,
    still_open,
)
from test_source_over_tor import LANDING_TITLE, tor_source

from securedrop_wm.onion_defences import DEFENCES_FILE, load_defences
from tests.conftest import Responders, store_files
from tests.live import free_port

pytestmark = pytest.mark.tor

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "ansible" / "roles"
DEFENCE_LINE = re.compile(r"(HiddenService(?:PoW|MaxStreams|EnableIntroDoS)\w*) (\d+)")
SOURCE = load_defences("source")
TRANSFER = load_defences("transfer")


def test_source_onion_has_pow_and_a_stream_limit_and_a_source_still_reports(
    tor_network: PrivateTorNetwork, data_dir: Path, responders: Responders, tmp_path: Path
) -> None:
    metrics_port = PortPicker().pick()
    torrc = privnet_torrc(tor_network, tmp_path / "privnet.torrc", metrics_port)
    port = free_port()
    args = ["serve", "--onion", "--port", str(port), "--workers", "1", "--threads", "4"]
    args += ["--tor-config", str(torrc)]
    first, second = tor_network.clients

    # Given the source onion published by `serve --onion`, as an admin runs it,
    with served(data_dir / "config.toml", args, port, tmp_path / "serve.out") as server:
        service_id = server.address.removesuffix(".onion")
        url = f"http://{server.address}/"
        landing = fetch_until_ok(first.session(), url)
        assert LANDING_TITLE in landing.text

        # then its descriptor offers the proof-of-work puzzle (in its encrypted layer),
        inner = descriptor_inner_layer(first, server.address)
        assert re.search(r"^pow-params v1 \S+ \d+ \S+", inner, re.MULTILINE), inner
        # and its tor keeps the defence's figures (priority queue, suggested effort).
        figures = metrics(metrics_port)
        for name in POW_METRICS:
            assert f'{name}{{onion="{service_id}"}} ' in figures, figures

        # When 3 attackers flood it with new sources over Tor (a new circuit, so a new
        # introduction through the proof-of-work queue, every 2 sources) for 20 s,
        with TorFlood(second, url, threads=3, seconds=20) as flood:
            assert poll(lambda: flood.served["created"] >= 3, timeout=60), flood.served
            # then a source still gets a codename and files a report with a file, over Tor,
            started = time.monotonic()
            source = tor_source(first, url)
            try:
                source.new_codename()
                source.get("/submit")
                what = "Someone keeps threatening me on my talk page."
                evidence = b"%PDF-1.4 threats " * 2000
                thanks = source.submit(
                    {"category": "threats", "urgency": "urgent", "what_happened": what},
                    "threats.pdf",
                    evidence,
                )
            finally:
                source.close()
            filed = time.monotonic()
            flood.wait()
        assert thanks.status_code == 200
        assert "Your report was received" in thanks.text
        # while the flood was on (attackers made sources before and after it),
        assert flood.created_between(0, started) >= 3, flood.served
        assert flood.created_between(filed, time.monotonic()) > 0, flood.served
        assert flood.circuits > 3, flood.served
        # and the report is stored: the team decrypts the file.
        plaintexts = [responders.decrypt(data_dir / "store" / n) for n in store_files(data_dir)]
        assert evidence in plaintexts

        # When one visitor opens more streams on its circuit than the limit,
        limit = SOURCE["HiddenServiceMaxStreams"]
        fetch_until_ok(second.session(), url)  # descriptor and circuit ready
        streams = open_streams(second, server.address, limit + 1)
        try:
            # then the service closes that circuit: the streams it had die with it.
            assert len(streams) >= limit, f"only {len(streams)} streams opened"
            time.sleep(2)
            assert not any(still_open(s) for s in streams[:3])
        finally:
            for s in streams:
                s.close()
        assert server.stop() == 0, server.text()


def render_ansible_torrc(tmp_path: Path) -> str:
    """The role's torrc template, rendered by Ansible itself (its lookups included), on
    this machine: no container, no service touched."""
    ansible = Path(sys.executable).parent / "ansible"
    dest = tmp_path / "torrc"
    proc = subprocess.run(
        [
            str(ansible),
            "localhost",
            "--connection=local",
            "--inventory=localhost,",
            f"--playbook-dir={REPO / 'ansible'}",
            "--module-name=ansible.builtin.template",
            f"--args=src={ROLES / 'sdwm_tor/templates/etc/tor/torrc.j2'} dest={dest}",
            f"--extra-vars=@{ROLES / 'sdwm_common/defaults/main.yml'}",
            f"--extra-vars=@{ROLES / 'sdwm_tor/defaults/main.yml'}",
            f"--extra-vars=sdwm_common_source_hs_dir={tmp_path / 'source'}",
            f"--extra-vars=sdwm_common_transfer_hs_dir={tmp_path / 'transfer'}",
        ],
        cwd=REPO / "ansible",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return dest.read_text()


def service_options(torrc: str) -> dict[str, dict[str, int]]:
    """``{HiddenServiceDir's last part: {option: value}}`` of a torrc's defences."""
    services: dict[str, dict[str, int]] = {}
    current: dict[str, int] = {}
    for line in torrc.splitlines():
        if match := re.fullmatch(r"HiddenServiceDir .*/(\w+)", line):
            current = services.setdefault(match.group(1), {})
        elif match := re.fullmatch(
            r"(HiddenService(?:PoW|MaxStreams|EnableIntroDoS)\w*) (\d+)", line
        ):
            current[match.group(1)] = int(match.group(2))
    return services


def test_ansible_torrc_has_the_defences_and_tor_accepts_it(tmp_path: Path) -> None:
    # Given the torrc the Ansible role writes,
    torrc = render_ansible_torrc(tmp_path)

    # then the source onion has every defence, with the values of the one defences
    # file, and the transfer onion its stream limit,
    options = service_options(torrc)
    assert options == {"source": SOURCE, "transfer": TRANSFER}
    assert SOURCE["HiddenServicePoWDefensesEnabled"] == 1
    assert SOURCE["HiddenServiceEnableIntroDoSDefense"] == 1
    assert SOURCE["HiddenServiceMaxStreamsCloseCircuit"] == 1
    assert TRANSFER["HiddenServiceMaxStreams"] > 0
    assert "defences" in DEFENCES_FILE.read_text().lower()

    # and the real tor accepts it, as the role's own `validate` runs it.
    verify = subprocess.run(
        [
            "tor",
            "--verify-config",
            "--defaults-torrc",
            "/usr/share/tor/tor-service-defaults-torrc",
            "-f",
            str(tmp_path / "torrc"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "Configuration was valid" in verify.stdout
