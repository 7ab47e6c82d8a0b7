"""The source UI as a source reaches it: at its onion address, through Tor.

A real drop server (gunicorn) is published on the private network's onion host, and
clients fetch it through their SOCKS ports; ``securedrop-wm serve --onion`` is run as an
admin runs it, with a tor of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from privnet import PrivateTorNetwork, TorClient, fetch_until_ok, tor_pids_under
from served import port_is_closed, served

from securedrop_wm.onion import Onion, service_address
from tests.conftest import Responders, store_files
from tests.live import LiveServer, free_port
from tests.security.source_http import HttpSource

pytestmark = pytest.mark.tor

OFF_ONION_WARNING = "you did not reach this page at its .onion address"
LANDING_TITLE = "Report an incident safely"


def connect_host(net: PrivateTorNetwork) -> Onion:
    assert net.onion_host is not None
    return Onion.connect(net.onion_host.control_port, password=net.onion_host.control_password)


def tor_source(client: TorClient, url: str) -> HttpSource:
    """A source whose every request goes through ``client``'s SOCKS port."""
    source = HttpSource(url.rstrip("/"), headers={})
    source.http.trust_env = False
    source.http.proxies = {"http": client.proxy_url, "https": client.proxy_url}
    return source


@pytest.fixture
def sources() -> Iterator[list[HttpSource]]:
    made: list[HttpSource] = []
    yield made
    for source in made:
        source.close()


def test_report_through_tor_and_the_same_address_after_a_restart(
    tor_network: PrivateTorNetwork,
    live_server: LiveServer,
    data_dir: Path,
    responders: Responders,
    sources: list[HttpSource],
) -> None:
    key_dir = data_dir / "onion" / "source"
    first, second = tor_network.clients
    with connect_host(tor_network) as onion:
        service = onion.publish(key_dir, {80: live_server.port})

        # Given a source who opens the onion address in a Tor client,
        landing = fetch_until_ok(first.session(), service.url)
        # then they get the landing page, without the warning shown off the onion.
        assert landing.status_code == 200
        assert LANDING_TITLE in landing.text
        assert OFF_ONION_WARNING not in landing.text
        assert OFF_ONION_WARNING in requests.get(live_server.url, timeout=10).text

        # When they get a codename and send a report with a file, all through Tor,
        source = tor_source(first, service.url)
        sources.append(source)
        codename = source.new_codename()
        evidence = b"\x89PNG\r\n\x1a\n" + b"screenshot of the doxxing post " * 4000
        source.get("/submit")
        what = "My address was posted on my user talk page."
        thanks = source.submit(
            {"category": "doxxing", "urgency": "urgent", "what_happened": what},
            "talk-page.png",
            evidence,
        )
        # then it is received, and the team can decrypt both what they wrote and the file.
        assert thanks.status_code == 200
        assert thanks.url == f"{service.url}thanks"
        assert "Your report was received" in thanks.text
        plaintexts = [responders.decrypt(data_dir / "store" / n) for n in store_files(data_dir)]
        assert evidence in plaintexts
        assert any(what.encode() in p for p in plaintexts)

    # Given the service is taken down and published again from its key dir (a restart),
    with connect_host(tor_network) as onion:
        again = onion.publish(key_dir, {80: live_server.port})
        # then its address is the same, and with their codename the source gets back in
        # (from another Tor client, which never saw the address before).
        assert again.address == service.address == service_address(key_dir)
        fetch_until_ok(second.session(), again.url)
        back = tor_source(second, again.url)
        sources.append(back)
        replies = back.login(codename)
        assert replies.status_code == 200
        assert replies.url == f"{again.url}replies"
        assert "There are no replies to show" in replies.text


def test_serve_onion_with_its_own_tor(
    tor_network: PrivateTorNetwork, data_dir: Path, tmp_path: Path
) -> None:
    torrc = tmp_path / "privnet.torrc"
    torrc.write_text(
        "".join(
            f"{key} {value}\n"
            for key, values in tor_network.launch_config().items()
            for value in ([values] if isinstance(values, str) else values)
        )
    )
    port = free_port()
    args = ["serve", "--onion", "--port", str(port), "--workers", "1", "--threads", "2"]
    args += ["--tor-config", str(torrc)]

    # Given `serve --onion` started as an admin starts it (here: with the torrc lines
    # that make its tor join the private network),
    with served(data_dir / "config.toml", args, port, tmp_path / "serve.out") as server:
        # then it prints the address its key dir holds, and a Tor client gets the page.
        assert server.address == service_address(data_dir / "onion" / "source")
        landing = fetch_until_ok(tor_network.clients[0].session(), f"http://{server.address}/")
        assert LANDING_TITLE in landing.text
        assert OFF_ONION_WARNING not in landing.text
        assert tor_pids_under(data_dir), "its tor runs in the data dir"

        # When it is stopped (SIGTERM),
        status = server.stop()

    # then it exits cleanly and leaves neither its tor nor its web server behind,
    assert status == 0, server.text()
    assert tor_pids_under(data_dir) == []
    assert port_is_closed(port)
    # and started again, it publishes the same address.
    with served(data_dir / "config.toml", args, port, tmp_path / "again.out") as again:
        assert again.address == server.address
        assert again.stop() == 0, again.text()
    assert tor_pids_under(data_dir) == []
