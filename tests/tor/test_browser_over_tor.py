"""Headless Chromium, JavaScript off, with a Tor client as its SOCKS proxy, opens the
source UI at its onion address: what a source with Tor Browser at "Safest" does.

A screenshot is kept in ``artifacts/tor/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Request, sync_playwright
from privnet import PrivateTorNetwork, fetch_until_ok

from securedrop_wm.onion import Onion
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.live import LiveServer

pytestmark = [pytest.mark.tor, pytest.mark.browser]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "tor"


def test_chromium_through_tor_opens_the_landing_page(
    tor_network: PrivateTorNetwork, live_server: LiveServer, data_dir: Path
) -> None:
    assert tor_network.onion_host is not None
    client = tor_network.clients[0]
    host = tor_network.onion_host
    with Onion.connect(host.control_port, password=host.control_password) as onion:
        service = onion.publish(data_dir / "onion" / "source", {80: live_server.port})
        # Wait until this Tor client can reach the fresh onion, so the browser's one
        # navigation does not race the descriptor's upload.
        fetch_until_ok(client.session(), service.url)
        requested: list[str] = []
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    *CHROMIUM_ARGS,
                    f"--proxy-server=socks5://127.0.0.1:{client.socks_port}",
                    # Every name is resolved by tor through the proxy, none locally.
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                ],
            )
            try:
                context = browser.new_context(java_script_enabled=False)
                page = context.new_page()

                def record(request: Request) -> None:
                    requested.append(request.url)

                page.on("request", record)
                response = page.goto(service.url, timeout=90_000, wait_until="load")
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=ARTIFACTS / "landing-over-tor.png", full_page=True)

                assert response is not None and response.status == 200
                assert page.url == service.url
                assert page.title().startswith("Report an incident safely")
                heading = page.get_by_role("heading", level=1)
                assert heading.inner_text() == "Report an incident safely"
                assert page.get_by_role("link", name="Make a report").is_visible()
                assert page.locator(".warning").count() == 0, "off-onion warning shown"
                context.close()
            finally:
                browser.close()
    # The page and its stylesheet came from the onion, and from nowhere else.
    assert requested and all(url.startswith(service.url) for url in requested)
    assert any(url.endswith(".css") for url in requested)
