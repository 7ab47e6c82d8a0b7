"""securedrop_wm.onion against real tor processes on the private network."""

from __future__ import annotations

import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from privnet import (
    PAGE,
    SOCKS_ONION_AUTH_BAD,
    SOCKS_ONION_AUTH_MISSING,
    PortPicker,
    PrivateTorNetwork,
    fetch_until_ok,
    tor_pids_under,
    wait_for_socks_error,
)

from securedrop_wm.onion import (
    MIN_CLIENT_AUTH_VERSION,
    ClientKeyError,
    KeyFileError,
    Onion,
    PublicationTimeoutError,
    TorAuthenticationError,
    TorLaunchError,
    TorNotRunningError,
    TorTooOldError,
    add_authorized_client,
    generate_client_keypair,
    list_authorized_clients,
    require_tor_version,
    service_address,
)

pytestmark = pytest.mark.tor

Sessions = Callable[[int], requests.Session]


def connect_host(net: PrivateTorNetwork) -> Onion:
    assert net.onion_host is not None
    return Onion.connect(net.onion_host.control_port, password=net.onion_host.control_password)


@pytest.fixture
def onion(tor_network: PrivateTorNetwork) -> Iterator[Onion]:
    """An Onion on the network's onion host (password authentication)."""
    with connect_host(tor_network) as onion:
        yield onion


def test_published_onion_serves_the_page(
    onion: Onion, web_server: int, tor_session: Sessions, tmp_path: Path
) -> None:
    key_dir = tmp_path / "source"

    service = onion.publish(key_dir, {80: web_server})

    status = onion.status()
    assert status.bootstrapped
    assert service.service_id in status.published
    response = fetch_until_ok(tor_session(0), service.url)
    assert response.status_code == 200
    assert response.content == PAGE
    # The key is kept where only its owner can read it; the address is on record.
    key_file = key_dir / "hs_ed25519_secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_dir.stat().st_mode) == 0o700
    assert service_address(key_dir) == service.address


def test_address_survives_a_restart(
    tor_network: PrivateTorNetwork, web_server: int, tor_session: Sessions, tmp_path: Path
) -> None:
    key_dir = tmp_path / "source"
    with connect_host(tor_network) as first:
        address = first.publish(key_dir, {80: web_server}).address
        fetch_until_ok(tor_session(1), f"http://{address}/")

    # Given the service was stopped, when it is published again from its key dir,
    with connect_host(tor_network) as second:
        service = second.publish(key_dir, {80: web_server})
        # then it has the same address, and a client that knew it gets the page.
        assert service.address == address
        assert fetch_until_ok(tor_session(1), service.url).content == PAGE


def test_client_authorization(
    tor_network: PrivateTorNetwork,
    onion: Onion,
    web_server: int,
    tor_session: Sessions,
    tmp_path: Path,
) -> None:
    key_dir = tmp_path / "transfer"
    alice, bob = generate_client_keypair(), generate_client_keypair()
    add_authorized_client(key_dir, "alice", alice.public_key)
    service = onion.publish(key_dir, {80: web_server}, client_auth=True)
    first, second = tor_network.clients

    # A client without a key is refused by its own tor: SOCKS error 0xF4.
    wait_for_socks_error(tor_session(0), service.url, SOCKS_ONION_AUTH_MISSING)

    # Once alice's key is added to it, the same client gets the page.
    first.add_client_auth(service.service_id, alice.private_key)
    assert fetch_until_ok(tor_session(0), service.url).content == PAGE

    # A client authorized while the service runs gets in too, at the same address.
    service = onion.add_client(service, "bob", bob.public_key)
    assert [c.name for c in onion.list_clients(service)] == ["alice", "bob"]
    second.add_client_auth(service.service_id, bob.private_key)
    assert fetch_until_ok(tor_session(1), service.url).content == PAGE


def test_removed_client_is_locked_out_and_stays_removed(
    tor_network: PrivateTorNetwork, web_server: int, tor_session: Sessions, tmp_path: Path
) -> None:
    key_dir = tmp_path / "transfer"
    alice, bob = generate_client_keypair(), generate_client_keypair()
    add_authorized_client(key_dir, "alice", alice.public_key)
    add_authorized_client(key_dir, "bob", bob.public_key)
    alice_tor, bob_tor = tor_network.clients
    with connect_host(tor_network) as onion:
        service = onion.publish(key_dir, {80: web_server}, client_auth=True)
        alice_tor.add_client_auth(service.service_id, alice.private_key)
        bob_tor.add_client_auth(service.service_id, bob.private_key)
        assert fetch_until_ok(tor_session(1), service.url).content == PAGE

        # When bob is removed, his connected client is cut off and cannot decrypt
        # the new descriptor (SOCKS error 0xF5), while alice still gets in.
        service = onion.remove_client(service, "bob")
        wait_for_socks_error(tor_session(1), service.url, SOCKS_ONION_AUTH_BAD)
        assert fetch_until_ok(tor_session(0), service.url).content == PAGE

        # The last client cannot be removed: the service would become public.
        with pytest.raises(ClientKeyError, match="last authorized client"):
            onion.remove_client(service, "alice")

    # After a restart bob is still gone, and the address is the same.
    with connect_host(tor_network) as onion:
        again = onion.publish(key_dir, {80: web_server}, client_auth=True)
        assert again.address == service.address
        assert [c.name for c in onion.list_clients(again)] == ["alice"]
        wait_for_socks_error(tor_session(1), again.url, SOCKS_ONION_AUTH_BAD)


def test_launched_tor_publishes_and_stops(
    tor_network: PrivateTorNetwork, web_server: int, tor_session: Sessions, tmp_path: Path
) -> None:
    data_dir = tmp_path / "tor"
    started = time.monotonic()
    with Onion.launch(data_dir, config=tor_network.launch_config(), timeout=120) as onion:
        assert onion.status().bootstrap_percent == 100
        service = onion.publish(tmp_path / "source", {80: web_server})
        assert fetch_until_ok(tor_session(0), service.url).content == PAGE
        assert tor_pids_under(data_dir)
    assert tor_pids_under(data_dir) == []
    assert time.monotonic() - started < 120


def test_publication_timeout_leaves_nothing_published(
    tor_network: PrivateTorNetwork, tmp_path: Path
) -> None:
    config = {**tor_network.launch_config(), "DisableNetwork": "1"}
    with Onion.launch(tmp_path / "tor", config=config, wait_for_bootstrap=False) as onion:
        with pytest.raises(PublicationTimeoutError, match="not published within"):
            onion.publish(tmp_path / "source", {80: 8080}, timeout=2)
        assert onion.services == []
    assert tor_pids_under(tmp_path) == []


def test_tor_that_will_not_start(tmp_path: Path) -> None:
    with pytest.raises(TorLaunchError, match="exited at start"):
        Onion.launch(tmp_path / "tor", config={"SocksPort": "not-a-port"}, timeout=30)
    with pytest.raises(TorLaunchError, match="cannot run"):
        Onion.launch(tmp_path / "tor2", tor_cmd=str(tmp_path / "no-such-tor"))
    assert tor_pids_under(tmp_path) == []


def test_nothing_listening_raises_tor_not_running() -> None:
    closed_port = PortPicker().pick()
    with pytest.raises(TorNotRunningError):
        Onion.connect(closed_port)


def test_wrong_or_missing_password_is_refused(tor_network: PrivateTorNetwork) -> None:
    assert tor_network.onion_host is not None
    port = tor_network.onion_host.control_port
    with pytest.raises(TorAuthenticationError):
        Onion.connect(port, password="not the password")
    with pytest.raises(TorAuthenticationError):
        Onion.connect(port)


def test_cookie_authentication(tor_network: PrivateTorNetwork) -> None:
    with Onion.connect(tor_network.clients[0].control_port) as onion:
        assert onion.status().bootstrapped


def test_corrupt_or_exposed_key_is_refused(onion: Onion, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir(mode=0o700)
    (corrupt / "hs_ed25519_secret_key").write_bytes(b"not a key")
    (corrupt / "hs_ed25519_secret_key").chmod(0o600)
    with pytest.raises(KeyFileError, match="corrupt"):
        onion.publish(corrupt, {80: 8080}, await_publication=False)

    exposed = tmp_path / "exposed"
    onion.unpublish(onion.publish(exposed, {80: 8080}, await_publication=False))
    (exposed / "hs_ed25519_secret_key").chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by other users"):
        onion.publish(exposed, {80: 8080}, await_publication=False)

    # A key swapped for another: refused rather than publishing a new address.
    swapped = tmp_path / "swapped"
    onion.unpublish(onion.publish(swapped, {80: 8080}, await_publication=False))
    other = tmp_path / "other"
    onion.unpublish(onion.publish(other, {80: 8080}, await_publication=False))
    (swapped / "hs_ed25519_secret_key").unlink()
    (other / "hs_ed25519_secret_key").rename(swapped / "hs_ed25519_secret_key")
    with pytest.raises(KeyFileError, match="hostname"):
        onion.publish(swapped, {80: 8080}, await_publication=False)
    assert onion.services == []


def test_client_auth_mistakes_are_refused(onion: Onion, tmp_path: Path) -> None:
    key_dir = tmp_path / "transfer"
    with pytest.raises(ClientKeyError, match="would be public"):
        onion.publish(key_dir, {80: 8080}, client_auth=True)
    with pytest.raises(ClientKeyError):
        add_authorized_client(key_dir, "alice", "not-base32-at-all")
    with pytest.raises(ClientKeyError):
        add_authorized_client(key_dir, "../escape", generate_client_keypair().public_key)
    add_authorized_client(key_dir, "alice", generate_client_keypair().public_key)
    with pytest.raises(ClientKeyError, match="already authorized"):
        add_authorized_client(key_dir, "alice", generate_client_keypair().public_key)
    # A transfer key dir is never published without client authorization.
    with pytest.raises(ClientKeyError, match="client_auth=True"):
        onion.publish(key_dir, {80: 8080})
    assert [c.name for c in list_authorized_clients(key_dir)] == ["alice"]


def test_tor_too_old(onion: Onion) -> None:
    require_tor_version(onion.tor_version, MIN_CLIENT_AUTH_VERSION)
    with pytest.raises(TorTooOldError, match="v3 onion services"):
        require_tor_version("0.3.4.11")
    with pytest.raises(TorTooOldError, match="client authorization"):
        require_tor_version("0.4.5.16", MIN_CLIENT_AUTH_VERSION, "client authorization")
