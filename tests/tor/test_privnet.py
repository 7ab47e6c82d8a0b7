"""The test network itself: usable once started, and no tor outlives its teardown."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest
from privnet import PrivateTorNetwork, TorNode, tor_pids_under

pytestmark = pytest.mark.tor


def test_network_is_bootstrapped_and_on_loopback_only(tor_network: PrivateTorNetwork) -> None:
    assert len(tor_network.pids()) == 8
    for node in tor_network.nodes:
        assert node.is_running(), node.last_words()
        for line in (node.directory / "torrc").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key in ("ControlPort", "ORPort", "DirPort", "SocksPort") and value != "0":
                assert value.startswith("127.0.0.1:"), f"{node.nick}: {line}"
    for client in tor_network.clients:
        assert client.node.controller is not None
        phase = client.node.controller.get_info("status/bootstrap-phase")
        assert "PROGRESS=100" in phase


def test_stop_kills_a_tor_that_ignores_signals(tmp_path: Path) -> None:
    # Given a tor that is stopped (SIGSTOP), so it can neither see its control
    # connection close nor handle SIGTERM,
    node_dir = tmp_path / "stuck"
    node_dir.mkdir(mode=0o700)
    torrc = node_dir / "torrc"
    torrc.write_text(
        f"DataDirectory {node_dir}\nDisableNetwork 1\nSocksPort 0\n"
        f"Log notice file {node_dir}/notice.log\n"
    )
    proc = subprocess.Popen(
        ["tor", "-f", str(torrc)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    net = PrivateTorNetwork(tmp_path)
    net.nodes = [TorNode("stuck", "client", node_dir, control_port=0, proc=proc)]
    os.kill(proc.pid, signal.SIGSTOP)

    # when the network is stopped,
    report = net.stop()

    # then it was killed by pid, and nothing is left.
    assert "SIGKILL stuck" in report.signalled
    assert report.leftover_pids == []
    assert proc.poll() is not None
    assert tor_pids_under(tmp_path) == []
