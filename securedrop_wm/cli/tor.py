"""Publishing a gunicorn server as an onion service: ``serve --onion``, ``serve-transfer
--onion`` (docs/onion.md).

The server runs in a child process and tor is reached through :mod:`securedrop_wm.onion`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..onion import Onion, OnionError, load_defences
from ..settings import load_settings

_F = TypeVar("_F", bound=Callable[..., Any])
TOR_PASSWORD_ENV = "SDWM_TOR_CONTROL_PASSWORD"  # noqa: S105 (a variable's name)
# Options of a tor we launch that a --tor-config file may not change: they are how we
# control it, how it stops with us, and where it logs (in our memory, not on disk).
_OWN_TORRC_OPTIONS = {
    "Log",
    "DataDirectory",
    "ControlSocket",
    "ControlPort",
    "CookieAuthentication",
    "HashedControlPassword",
    "__OwningControllerProcess",
}


def tor_service_options(f: _F) -> _F:
    """The options that say which tor publishes an onion service."""
    options = [
        click.option(
            "--tor-control-port",
            type=click.IntRange(1, 65535),
            help="Use the tor whose ControlPort is this (on 127.0.0.1) instead of starting one.",
        ),
        click.option(
            "--tor-control-socket",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Use the tor whose ControlSocket is this (e.g. /run/tor/control).",
        ),
        click.option(
            "--tor-control-password",
            envvar=TOR_PASSWORD_ENV,
            help=f"Control port password (better given as ${TOR_PASSWORD_ENV}); "
            "without it, cookie authentication.",
        ),
        click.option(
            "--tor-config",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="File of extra torrc lines ('Option value') for the tor started here.",
        ),
        click.option(
            "--tor-timeout",
            type=click.FloatRange(10, 3600),
            default=180.0,
            show_default=True,
            help="Seconds to wait for tor to start and to publish the service.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


class _Stop(Exception):
    """SIGTERM or SIGHUP arrived: stop serving, cleanly."""


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def serve_behind_onion(
    config_path: Path,
    child_args: list[str],
    port: int,
    name: str,
    *,
    label: str,
    client_auth: bool,
    tor_options: dict[str, Any],
) -> None:
    """Run ``securedrop-wm <child_args>`` (a gunicorn server on 127.0.0.1:``port``) in a
    child process and publish it as the onion whose key is ``<data_dir>/onion/<name>``,
    with the defences of section ``name`` of ``onion_defences.ini``, until a signal or
    Ctrl-C; then unpublish it, stop the server and any tor started here.

    The server runs in a child so that gunicorn's forked workers never share the tor
    control connection (a worker that exits would otherwise take the service down).
    """
    settings = load_settings(config_path)
    key_dir = settings.data_dir / "onion" / name
    extra = _read_tor_config(tor_options["tor_config"]) if tor_options["tor_config"] else {}
    _require_free_port(port)
    handlers = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    child: subprocess.Popen[bytes] | None = None
    onion: Onion | None = None
    try:
        config = str(config_path)
        child = subprocess.Popen(
            [sys.executable, "-m", "securedrop_wm", "--config", config, *child_args],
            stdin=subprocess.DEVNULL,
            # The web app parses untrusted input: it must not learn how to control tor.
            env={k: v for k, v in os.environ.items() if k != TOR_PASSWORD_ENV},
            preexec_fn=_die_with_parent,  # safe: this process runs no thread yet
        )
        _wait_listening(child, port)
        onion = _open_tor(tor_options, settings.data_dir / "onion" / f"tor-{name}", extra)
        service = onion.publish(
            key_dir,
            {80: port},
            client_auth=client_auth,
            defences=load_defences(name),
            timeout=tor_options["tor_timeout"],
        )
        click.echo(f"{label} published at http://{service.address}/ (key in {key_dir})")
        _watch(child, onion)
    except (_Stop, KeyboardInterrupt):
        click.echo("Stopping", err=True)
    finally:
        # A second signal must not cut the clean-up short.
        for sig in handlers:
            signal.signal(sig, signal.SIG_IGN)
        if onion is not None:
            onion.close()
        if child is not None:
            _stop_child(child)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _read_tor_config(path: Path) -> dict[str, list[str]]:
    """``Option value`` lines (``#`` comments) as Onion.launch takes them."""
    options: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if not key.replace("_", "").isalnum() or not value.strip():
            raise click.ClickException(f"{path}:{number}: not an 'Option value' line")
        if key in _OWN_TORRC_OPTIONS:
            raise click.ClickException(f"{path}:{number}: {key} is set by securedrop-wm itself")
        options.setdefault(key, []).append(value.strip())
    return options


def _open_tor(options: dict[str, Any], data_dir: Path, extra: dict[str, list[str]]) -> Onion:
    password = options["tor_control_password"]
    if options["tor_control_socket"] is not None:
        return Onion.connect(socket_path=options["tor_control_socket"], password=password)
    if options["tor_control_port"] is not None:
        return Onion.connect(options["tor_control_port"], password=password)
    click.echo(f"Starting tor in {data_dir}", err=True)
    return Onion.launch(data_dir, config=extra, timeout=options["tor_timeout"])


def _require_free_port(port: int) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            # The onion would forward to whatever listens there already.
            raise click.ClickException(f"port {port} is in use on 127.0.0.1") from None


def _die_with_parent() -> None:
    """In the child: get SIGTERM if this process dies, so no server outlives it."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_listening(child: subprocess.Popen[bytes], port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise click.ClickException(f"the server exited at start (status {child.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise click.ClickException(f"the server did not listen on 127.0.0.1:{port} in time")


def _watch(child: subprocess.Popen[bytes], onion: Onion) -> None:
    """Serve until the server exits (an error) or tor goes away (an error too)."""
    while True:
        try:
            code = child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                onion.status()
            except OnionError as e:
                raise click.ClickException(f"tor went away, stopping: {e}") from None
            continue
        raise click.ClickException(f"the server exited (status {code})")


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


def check_tor_options(onion: bool, host: str, tor_options: dict[str, Any]) -> None:
    given = [k for k in ("tor_control_port", "tor_control_socket", "tor_config") if tor_options[k]]
    if not onion and given:
        flag = "--" + given[0].replace("_", "-")
        raise click.ClickException(f"{flag} is for --onion only")
    if onion and host not in ("127.0.0.1", "localhost"):
        raise click.ClickException("with --onion the server listens on 127.0.0.1 only")
