"""The README's first command, `bash scripts/run-local.sh`, as a newcomer runs it: both
UIs come up on loopback with the DEMO banner, and Ctrl-C (SIGINT) stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import short_tempdir
from tests.live import free_port, is_listening

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_run_local_brings_up_the_drop_and_the_workstation() -> None:
    # Given a clone whose virtualenv exists (the suite's own: the script reinstalls the
    # locked set into it, which changes nothing), and a folder for the demo
    folder = short_tempdir("sdwm-runlocal-")
    port, ws_port = free_port(), free_port()
    while ws_port == port:
        ws_port = free_port()
    env = dict(os.environ, SDWM_VENV=sys.prefix, SDWM_DEMO_DIR=str(folder / "demo"))
    script = subprocess.Popen(
        ["bash", "scripts/run-local.sh", "--port", str(port), "--workstation-port", str(ws_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        # When it has set up and started (pip finds everything installed already)
        deadline = time.monotonic() + 240
        while not (is_listening(port) and is_listening(ws_port)):
            assert script.poll() is None, script.stdout.read() if script.stdout else ""
            assert time.monotonic() < deadline, "run-local.sh did not bring both UIs up"
            time.sleep(0.5)
        # Then the source UI and the responder workstation answer, both marked DEMO
        source = requests.get(f"http://127.0.0.1:{port}/", timeout=30)
        workstation = requests.get(f"http://127.0.0.1:{ws_port}/login", timeout=30)
        for page in (source, workstation):
            assert page.status_code == 200
            assert 'class="demo-banner"' in page.text
        assert "Report an incident safely" in source.text
        assert 'name="totp"' in workstation.text or "authenticator" in workstation.text
    finally:
        # And Ctrl-C stops both servers
        os.killpg(script.pid, signal.SIGINT)
        output, _ = script.communicate(timeout=60)
        subprocess.run(["rm", "-rf", str(folder)], check=False)
    assert not is_listening(port) and not is_listening(ws_port)
    # and it told the newcomer where to go and how to log in
    assert f"http://127.0.0.1:{port}/" in output and f"http://127.0.0.1:{ws_port}/" in output
    assert "username" in output and "demo totp" in output
