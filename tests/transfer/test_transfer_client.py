"""The transfer and onion commands where no Tor network is needed: settings, token
files, mistakes refused before anything is sent, and a SOCKS port with no tor behind it.

What happens over real Tor is in tests/tor/test_transfer_over_tor.py.
"""

from __future__ import annotations

import base64
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from securedrop_wm.bundles import export_bundle
from securedrop_wm.cli import main as cli
from securedrop_wm.config import RESERVED_ENV
from securedrop_wm.drop import Drop
from securedrop_wm.errors import SettingsError
from securedrop_wm.onion import ensure_service_key, list_authorized_clients, service_address
from securedrop_wm.transfer_client import (
    TransferConfigError,
    load_transfer_settings,
    parse_onion_address,
)
from tests.live import free_port

ONION_SHAPE = "a" * 56 + ".onion"


@pytest.fixture
def onion(tmp_path: Path) -> str:
    """A real v3 address (with a valid checksum), from a fresh key."""
    return ensure_service_key(tmp_path / "key")


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("sdwm_" + "x" * 43 + "\n")
    path.chmod(0o600)
    return path


def transfer(*args: str) -> Result:
    return CliRunner().invoke(cli, ["transfer", *args])


def test_only_a_well_formed_v3_onion_address_is_accepted(onion: str) -> None:
    assert parse_onion_address(onion) == onion
    assert parse_onion_address(f"  http://{onion.upper()}/ ") == onion
    # One character mistyped: the checksum catches it.
    mistyped = ("b" if onion[0] != "b" else "c") + onion[1:]
    with pytest.raises(TransferConfigError, match="wrong checksum"):
        parse_onion_address(mistyped)
    with pytest.raises(TransferConfigError, match="wrong checksum"):
        parse_onion_address(ONION_SHAPE)
    # The token must never go to a clearnet host, nor to a v2 address.
    for other in ("transfer.example.org", "expyuzz4wqqyqhjn.onion", "127.0.0.1", ""):
        with pytest.raises(TransferConfigError, match="not a v3 onion address"):
            parse_onion_address(other)


def test_token_file_must_be_private_and_hold_a_token(
    onion: str, token_file: Path, tmp_path: Path
) -> None:
    assert load_transfer_settings(None, onion=onion, token_file=token_file).token == (
        "sdwm_" + "x" * 43
    )
    with pytest.raises(TransferConfigError, match="cannot read the token file"):
        load_transfer_settings(None, onion=onion, token_file=tmp_path / "missing")
    token_file.chmod(0o644)
    with pytest.raises(TransferConfigError, match="can be read by other users: chmod 600"):
        load_transfer_settings(None, onion=onion, token_file=token_file)
    token_file.chmod(0o600)
    token_file.write_text("\n")
    with pytest.raises(TransferConfigError, match="holds no token"):
        load_transfer_settings(None, onion=onion, token_file=token_file)
    # The token is not shown with the settings.
    token_file.write_text("sdwm_" + "y" * 43)
    assert "yyyy" not in repr(load_transfer_settings(None, onion=onion, token_file=token_file))


def test_config_file_with_options_over_it(onion: str, token_file: Path, tmp_path: Path) -> None:
    config = tmp_path / "transfer.toml"
    config.write_text(
        f'onion = "{onion}"\nsocks = "127.0.0.1:9150"\ntoken_file = "token"\n'
        'output_dir = "usb"\nretries = 5\n'
    )
    settings = load_transfer_settings(config)
    assert (settings.onion, settings.socks_host, settings.socks_port) == (onion, "127.0.0.1", 9150)
    assert settings.output_dir == tmp_path / "usb"  # relative to the config file
    assert settings.retries == 5
    assert settings.proxy_url == "socks5h://127.0.0.1:9150"
    assert load_transfer_settings(config, socks="[::1]:9050").proxy_url == "socks5h://[::1]:9050"

    for text, complaint in (
        (f'onion = "{onion}"\ntoken_file = "token"\nsocks = "9050"', "not a SOCKS address"),
        (f'onion = "{onion}"\ntoken_file = "token"\nretries = 99', "retries must be"),
        (f'onion = "{onion}"\ntoken_file = "token"\nproxy = "x"', "unknown setting"),
        ('token_file = "token"', "no onion address"),
        (f'onion = "{onion}"', "no token file"),
        ("onion = ", "not valid TOML"),
    ):
        config.write_text(text)
        with pytest.raises(TransferConfigError, match=complaint):
            load_transfer_settings(config)


def test_unknown_setting_or_variable_is_named_with_the_nearest(
    onion: str, token_file: Path, tmp_path: Path
) -> None:
    config = tmp_path / "transfer.toml"
    config.write_text(f'onion = "{onion}"\ntoken_file = "token"\nretry_dealy = 5\n')
    with pytest.raises(SettingsError, match="unknown setting 'retry_dealy'") as e:
        load_transfer_settings(config, environ={})
    assert "did you mean 'retry_delay'?" in str(e.value)
    config.write_text(f'onion = "{onion}"\ntoken_file = "token"\n')
    with pytest.raises(TransferConfigError, match="SDWM_TRANSFER_TIMEOT") as e:
        load_transfer_settings(config, environ={"SDWM_TRANSFER_TIMEOT": "60"})
    assert "did you mean SDWM_TRANSFER_TIMEOUT?" in str(e.value)
    # The reserved names and the other machines' variables pass; its own apply.
    environ = {name: "x" for name in RESERVED_ENV} | {
        "SDWM_SESSION_MINUTES": "5",
        "SDWM_WS_RETENTION_DAYS": "7",
        "SDWM_TRANSFER_TIMEOUT": "60",
        "SDWM_TRANSFER_OUTPUT_DIR": "usb",
    }
    settings = load_transfer_settings(config, environ=environ)
    assert settings.timeout == 60
    assert settings.output_dir == Path("usb")  # the caller's, not the config's folder


def test_the_top_level_config_reaches_transfer_commands(
    onion: str, token_file: Path, tmp_path: Path
) -> None:
    config = tmp_path / "transfer.toml"
    config.write_text(f'onion = "{onion}"\ntoken_file = "token"\nsocks = "9050"\n')
    env = {"SDWM_TRANSFER_CONFIG": None, "SDWM_CONFIG": None}
    for args in (
        ["--config", str(config), "transfer", "status"],
        ["transfer", "status", "--config", str(config)],
        ["transfer", "status", "--transfer-config", str(config)],
        ["--config", str(tmp_path / "other.toml"), "transfer", "status", "--config", str(config)],
    ):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 1
        assert "not a SOCKS address" in result.output, args


def test_tor_not_running_is_told_as_such(onion: str, token_file: Path) -> None:
    closed = free_port()
    result = transfer(
        "status",
        "--onion",
        onion,
        "--socks",
        f"127.0.0.1:{closed}",
        "--token-file",
        str(token_file),
    )
    assert result.exit_code == 1
    assert f"tor is not running at 127.0.0.1:{closed}" in result.output
    assert "Traceback" not in result.output


@pytest.fixture
def not_socks() -> Iterator[int]:
    """A loopback port where a web server, not tor, answers."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    done = threading.Event()

    def answer() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    done.set()
    thread.join(5)
    server.close()


def test_a_port_that_is_not_tor_is_told_as_such(
    onion: str, token_file: Path, not_socks: int, tmp_path: Path
) -> None:
    usb = tmp_path / "usb"
    usb.mkdir()
    result = transfer(
        "pull",
        "--output-dir",
        str(usb),
        "--onion",
        onion,
        "--socks",
        f"127.0.0.1:{not_socks}",
        "--token-file",
        str(token_file),
    )
    assert result.exit_code == 1
    assert "does not answer as a SOCKS5 proxy: is it tor's SocksPort?" in result.output
    assert list(usb.iterdir()) == []


def test_what_is_not_a_reply_bundle_is_not_sent(
    onion: str, token_file: Path, drop: Drop, tmp_path: Path
) -> None:
    # The SOCKS port is closed: had anything been sent, the error would say tor is down.
    options = ["--onion", onion, "--socks", f"127.0.0.1:{free_port()}"]
    options += ["--token-file", str(token_file)]
    export = tmp_path / "export.tar"
    export_bundle(drop, export)
    result = transfer("push", str(export), *options)
    assert result.exit_code == 1
    assert "is an export bundle from the server, not a reply bundle; nothing was sent" in (
        result.output
    )
    junk = tmp_path / "replies.tar"
    junk.write_bytes(b"\0" * 4096)
    result = transfer("push", str(junk), *options)
    assert "is not a reply bundle (made by the workstation); nothing was sent" in result.output
    result = transfer("push", str(tmp_path / "gone.tar"), *options)
    assert "gone.tar does not exist" in result.output
    result = transfer("pull", "--output-dir", str(tmp_path / "no-usb"), *options)
    assert "the output folder" in result.output and "does not exist" in result.output
    result = transfer("pull", *options)
    assert "give --output-dir" in result.output


def test_transfer_clients_are_added_listed_and_removed(data_dir: Path) -> None:
    config = ["--config", str(data_dir / "config.toml")]
    key_dir = data_dir / "onion" / "transfer"

    added = CliRunner().invoke(cli, [*config, "transfer-client", "add", "laptop"])

    # The line for the transfer machine's tor: the address, then its private key,
    assert added.exit_code == 0, added.output
    service_id, auth, kind, private_b32 = added.stdout.strip().split(":")
    assert f"{service_id}.onion" == service_address(key_dir)
    assert (auth, kind) == ("descriptor", "x25519")
    assert "ClientOnionAuthDir" in added.stderr
    # whose public half, and only that, is what the server keeps.
    private = base64.b32decode(private_b32 + "=" * (-len(private_b32) % 8))
    public = (
        X25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    (client,) = list_authorized_clients(key_dir)
    assert base64.b32decode(client.public_key + "====") == public
    kept = b"".join(p.read_bytes() for p in key_dir.rglob("*") if p.is_file())
    assert private_b32.encode() not in kept

    listed = CliRunner().invoke(cli, [*config, "transfer-client", "list"])
    assert listed.stdout == f"laptop\t{client.public_key}\n"
    again = CliRunner().invoke(cli, [*config, "transfer-client", "add", "laptop"])
    assert again.exit_code == 1 and "already authorized" in again.output
    removed = CliRunner().invoke(cli, [*config, "transfer-client", "remove", "laptop"])
    assert removed.exit_code == 0
    assert list_authorized_clients(key_dir) == []


def test_serve_refuses_unsafe_onion_options(data_dir: Path, tmp_path: Path) -> None:
    config = ["--config", str(data_dir / "config.toml")]

    def serve(*args: str) -> Result:
        return CliRunner().invoke(cli, [*config, *args])

    result = serve("serve", "--tor-control-port", "9051")
    assert result.exit_code == 1 and "--tor-control-port is for --onion only" in result.output
    result = serve("serve", "--onion", "--host", "0.0.0.0")  # noqa: S104 (refused)
    assert "with --onion the server listens on 127.0.0.1 only" in result.output
    # The transfer onion is never published without an authorized client.
    result = serve("serve-transfer", "--onion")
    assert result.exit_code == 1 and "no transfer machine is authorized" in result.output
    torrc = tmp_path / "extra.torrc"
    torrc.write_text("# ours\nDataDirectory /tmp/elsewhere\n")
    result = serve("serve", "--onion", "--port", str(free_port()), "--tor-config", str(torrc))
    assert result.exit_code == 1 and "DataDirectory is set by securedrop-wm itself" in result.output
    # Nor may it put tor's log back on disk.
    torrc.write_text("Log notice file /tmp/tor-notices.log\n")  # noqa: S108 (refused)
    result = serve("serve", "--onion", "--port", str(free_port()), "--tor-config", str(torrc))
    assert result.exit_code == 1 and "Log is set by securedrop-wm itself" in result.output
