"""Chromium (headless, Debian's) drives the responder flow against the real server
(``securedrop-wm workstation serve``, gunicorn): login with TOTP, import, triage, reply,
statistics. Screenshots go to artifacts/journalist/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from securedrop_wm.drop import Drop
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.live import free_port
from tests.workstation.fixtures import ADMIN, ADMIN_PASSWORD, Station, export, source_reports

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "journalist"


@pytest.fixture
def ws_server(station: Station) -> Iterator[str]:
    """The workstation's real server on a loopback port."""
    port = free_port()
    log = (station.path / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "securedrop_wm.workstation", "serve"]
        + ["--config", str(station.ws.settings.config_path), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, (station.path / "serve.log").read_text()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    os.killpg(process.pid, 15)
    process.wait(timeout=10)


def test_responder_flow_in_chromium(
    ws_server: str, station: Station, drop: Drop, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    source_reports(drop, "Someone is following my edits.", urgency="urgent", category="threats")
    bundle = export(drop, tmp_path)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # The pages must work without JavaScript.
            page = browser.new_context(java_script_enabled=False).new_page()
            external = []
            page.on(
                "request",
                lambda r: external.append(r.url) if not r.url.startswith(ws_server) else None,
            )
            page.goto(ws_server + "/login")
            page.fill("input[name=username]", ADMIN)
            page.fill("input[name=password]", ADMIN_PASSWORD)
            page.fill("input[name=code]", station.code())
            page.screenshot(path=str(ARTIFACTS / "01-login.png"))
            page.click("button[type=submit]:has-text('Log in')")
            assert page.url.rstrip("/") == ws_server
            # Import
            page.click("text=Import")
            page.set_input_files("input[name=bundle]", str(bundle))
            page.click("button:has-text('Verify')")
            assert "Urgent reports: 1" in page.inner_text("#preview")
            page.screenshot(path=str(ARTIFACTS / "02-import-preview.png"))
            page.click("button:has-text('Decrypt and import')")
            assert "1 new case(s)" in page.inner_text("main")
            page.screenshot(path=str(ARTIFACTS / "03-cases.png"))
            # Triage and reply
            page.click("td.designation a")
            assert "Someone is following my edits." in page.inner_text("main")
            page.select_option("select[name=status]", "triaged")
            page.click("button:has-text('Set status')")
            assert "Status set." in page.inner_text("main")
            page.fill("textarea[name=text] >> nth=0", "We hear you; we will write again soon.")
            page.click("button:has-text('Encrypt and queue reply')")
            assert "queued for the next reply bundle" in page.inner_text("main")
            page.screenshot(path=str(ARTIFACTS / "04-case.png"), full_page=True)
            # Statistics
            page.click("text=Statistics")
            # A queued reply has not left: no first response yet (issue 14).
            assert "1 case(s); 0 with a reply sent." in page.inner_text("#summary")
            page.screenshot(path=str(ARTIFACTS / "05-statistics.png"), full_page=True)
            assert external == []
        finally:
            browser.close()
