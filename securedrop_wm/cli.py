"""The ``securedrop-wm`` command: a Click group over core functions."""

from __future__ import annotations

import importlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .cli_keys import KEY_COMMANDS, accept_key_file, report_init
from .crypto import GnuPG
from .drop import Drop, clean_orphans, open_drop
from .errors import SecureDropError
from .settings import CONFIG_ENV, Settings, load_settings

if TYPE_CHECKING:
    from .onion import Onion

DEFAULT_CONFIG = Path("data") / "config.toml"


def _config_path(value: str | None) -> Path:
    return Path(value or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


config_option = click.option(
    "--config",
    "config",
    envvar=CONFIG_ENV,
    type=click.Path(dir_okay=False),
    help=f"Path of config.toml (default ${CONFIG_ENV} or {DEFAULT_CONFIG}).",
)


def _load(config: str | None) -> Settings:
    return load_settings(_config_path(config))


class _Context:
    def __init__(self, config: str | None) -> None:
        self.config = config
        self._drop: Drop | None = None

    def drop(self) -> Drop:
        if self._drop is None:
            self._drop = open_drop(_load(self.config))
        return self._drop

    def config_path(self) -> Path:
        return _config_path(self.config)

    def close(self) -> None:
        if self._drop is not None:
            self._drop.close()


# Commands of another machine, imported only when used: the drop server installs neither
# the workstation's extras (pyotp, Pillow, pypdf) nor the transfer client's.
_LAZY_COMMANDS = {
    "workstation": ("securedrop_wm.workstation.cli", "workstation", "workstation"),
    # The demo serves the journalist UI too, so it needs the workstation's packages.
    "demo": ("securedrop_wm.demo", "demo", "workstation"),
}


class _DropGroup(click.Group):
    """A group that shows any domain error as a one-line message and exit status 1, and
    loads the commands of the other machines lazily."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SecureDropError as e:
            raise click.ClickException(str(e)) from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in _LAZY_COMMANDS:
            return super().get_command(ctx, cmd_name)
        module_name, attribute, extra = _LAZY_COMMANDS[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            return _missing_extra(cmd_name, extra, e)
        command: click.Command = getattr(module, attribute)
        return command


def _missing_extra(name: str, extra: str, error: ImportError) -> click.Command:
    """A stand-in for a command whose machine's packages are not installed here."""
    message = (
        f"the {name} commands need packages this installation does not have "
        f"({error.name}): install requirements/{extra}.txt, or pip install "
        f"'securedrop-wm[{extra}]'"
    )

    def refuse() -> None:
        raise click.ClickException(message)

    return click.Command(
        name,
        callback=refuse,
        help=f"Not installed here: needs the {extra} packages.",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )


@click.group(cls=_DropGroup)
@config_option
@click.version_option(package_name="securedrop-wm")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """securedrop-wm: a secure drop for at-risk Wikimedia contributors."""
    # Every file the drop writes is for its own user only; restored when the command
    # ends, so a caller running commands in-process (tests, scripts) keeps its own umask.
    previous = os.umask(0o077)
    ctx.call_on_close(lambda: os.umask(previous))
    state = _Context(config)
    ctx.obj = state
    ctx.call_on_close(state.close)


# signing-key, team-key, responder-key, workstation-key (docs/server.md)
for _command in KEY_COMMANDS:
    main.add_command(_command)


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--responder-key",
    "responder_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Armored public key of a responder; the first is the team key. Repeatable.",
)
@click.option(
    "--workstation-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Armored public signing key of the responder workstation.",
)
@click.option("--kdf-memory-kib", type=int, default=None, hidden=True)
@click.option("--kdf-time-cost", type=int, default=None, hidden=True)
def init(
    data_dir: Path,
    responder_keys: tuple[Path, ...],
    workstation_key: Path | None,
    kdf_memory_kib: int | None,
    kdf_time_cost: int | None,
) -> None:
    """Create a data dir: config, peppers, GnuPG home, server signing key, responder keys."""
    config_path = data_dir / "config.toml"
    if config_path.exists():
        raise click.ClickException(f"{config_path} exists already; refusing to overwrite it")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    gpg = GnuPG(data_dir / "gnupg")
    try:
        # Refused here as on an installed server: a secret, expired or unfit key.
        keys = (accept_key_file(gpg, p, "encrypt") for p in responder_keys)
        fingerprints = list(dict.fromkeys(keys))
        workstation = accept_key_file(gpg, workstation_key, "sign") if workstation_key else ""
        signing = gpg.create_key("securedrop-wm server signing key", None)
    finally:
        gpg.close()
    kdf_lines = ""
    if kdf_memory_kib or kdf_time_cost:
        kdf_lines = "\n[kdf]\n" + "".join(
            f"{k} = {v}\n"
            for k, v in (("memory_kib", kdf_memory_kib), ("time_cost", kdf_time_cost))
            if v
        )
    fprs = ", ".join(f'"{f}"' for f in fingerprints)
    _write_private(
        config_path,
        "# securedrop-wm drop server settings (docs/configuration.md)\n"
        f'team_fingerprint = "{fingerprints[0] if fingerprints else ""}"\n'
        f"responder_fingerprints = [{fprs}]\n"
        f'signing_fingerprint = "{signing}"\n'
        f'workstation_fingerprint = "{workstation}"\n'
        "max_report_bytes = 524288000\n"
        "session_minutes = 30\n" + kdf_lines,
    )
    _write_private(
        data_dir / "secrets.toml",
        "# Server-side secrets. Losing them makes every codename useless.\n"
        + "".join(
            f'{name} = "{secrets.token_hex(32)}"\n'
            for name in ("kdf_salt", "lookup_pepper", "key_pepper", "session_key")
        ),
    )
    settings = load_settings(config_path, require_team_key=False)
    open_drop(settings).close()
    report_init(data_dir, config_path, DEFAULT_CONFIG, fingerprints, workstation, signing)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


@main.command("clean-orphans")
@click.pass_obj
def clean_orphans_command(state: _Context) -> None:
    """Remove unreferenced or half-written store files (run before the server starts)."""
    removed = clean_orphans(state.drop())
    click.echo(f"removed {len(removed)} orphaned file(s)")


# -- onion services: serve --onion, serve-transfer, transfer-client (docs/onion.md) -------

_F = TypeVar("_F", bound=Callable[..., Any])
TOR_PASSWORD_ENV = "SDWM_TOR_CONTROL_PASSWORD"  # noqa: S105 (a variable's name)
# Options of a tor we launch that a --tor-config file may not change: they are how we
# control it and how it stops with us.
_OWN_TORRC_OPTIONS = {
    "DataDirectory",
    "ControlSocket",
    "ControlPort",
    "CookieAuthentication",
    "HashedControlPassword",
    "__OwningControllerProcess",
}


def _tor_options(f: _F) -> _F:
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


def _serve_behind_onion(
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
    child process and publish it as the onion whose key is ``<data_dir>/onion/<name>``
    until a signal or Ctrl-C; then unpublish it, stop the server and any tor started here.

    The server runs in a child so that gunicorn's forked workers never share the tor
    control connection (a worker that exits would otherwise take the service down).
    """
    from .onion import OnionError

    settings = _load(str(config_path))
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
            key_dir, {80: port}, client_auth=client_auth, timeout=tor_options["tor_timeout"]
        )
        click.echo(f"{label} published at http://{service.address}/ (key in {key_dir})")
        _watch(child, onion)
    except OnionError as e:
        raise click.ClickException(str(e)) from None
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
    from .onion import Onion

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
    import ctypes

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
    from .onion import OnionError

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


def _check_tor_options(onion: bool, host: str, tor_options: dict[str, Any]) -> None:
    given = [k for k in ("tor_control_port", "tor_control_socket", "tor_config") if tor_options[k]]
    if not onion and given:
        flag = "--" + given[0].replace("_", "-")
        raise click.ClickException(f"{flag} is for --onion only")
    if onion and host not in ("127.0.0.1", "localhost"):
        raise click.ClickException("with --onion the server listens on 127.0.0.1 only")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
@click.option(
    "--onion",
    is_flag=True,
    help="Also publish it as a v3 onion service through tor (key in <data dir>/onion/source, "
    "so the address stays the same) and print the address.",
)
@_tor_options
@click.pass_obj
def serve(
    state: _Context,
    /,
    host: str,
    port: int,
    workers: int,
    threads: int,
    onion: bool,
    **tor_options: Any,
) -> None:
    """Serve the source UI with gunicorn on HOST:PORT (loopback by default), no access log."""
    from .server import run_gunicorn

    _check_tor_options(onion, host, tor_options)
    if onion:
        args = ["--port", str(port), "--workers", str(workers), "--threads", str(threads)]
        _serve_behind_onion(
            _config_path(state.config).resolve(),
            ["serve", "--host", "127.0.0.1", *args],
            port,
            "source",
            label="Source UI",
            client_auth=False,
            tor_options=tor_options,
        )
        return
    drop = state.drop()
    clean_orphans(drop)
    drop.close()
    click.echo(f"Source UI on http://{host}:{port}/ (no access log is kept)")
    run_gunicorn(
        "source_ui.wsgi:app", _config_path(state.config).resolve(), host, port, workers, threads
    )


@main.command("add-reply")
@click.argument("designation")
@click.option("--message", "-m", help="Reply text (default: read standard input).")
@click.pass_obj
def add_reply_command(state: _Context, designation: str, message: str | None) -> None:
    """Add a reply for the source DESIGNATION (until the workstation sends bundles)."""
    from .sources import add_reply

    text = message if message is not None else sys.stdin.read()
    if not text.strip():
        raise click.ClickException("the reply is empty")
    uuid = add_reply(state.drop(), designation, text)
    click.echo(uuid)


@main.command("list-sources")
@click.pass_obj
def list_sources(state: _Context) -> None:
    """List source designations with their report counts and reply counts."""
    from sqlalchemy import select

    from .models import Source

    with state.drop().sessions() as db:
        for source in db.scalars(select(Source).order_by(Source.id)):
            click.echo(
                f"{source.designation}\t{source.created_day}\t"
                f"{len(source.reports)} report(s)\t{len(source.replies)} reply(ies)"
            )


# -- transfer bundles and tokens (docs/bundles.md) ---------------------------------------


@main.command("export")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the export bundle (must not exist).",
)
@click.pass_obj
def export_command(state: _Context, output: Path) -> None:
    """Write a signed export bundle of every submission not yet acknowledged."""
    from .bundles import export_bundle

    if output.exists():
        raise click.ClickException(f"{output} exists already; refusing to overwrite it")
    bar = _ProgressBar("export bundle")
    try:
        manifest = export_bundle(state.drop(), output, bar)
    finally:
        bar.close()
    reports = {i.report_id for i in manifest.items}
    urgent = {i.report_id for i in manifest.items if i.urgent}
    click.echo(
        f"export bundle {manifest.sequence}: {len(manifest.items)} item(s) of "
        f"{len(reports)} report(s) ({len(urgent)} urgent) from {len(manifest.sources)} "
        f"source(s) -> {output}"
    )


@main.command("import-replies")
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def import_replies_command(state: _Context, bundle: Path) -> None:
    """Verify a reply bundle from the workstation, store its replies, purge what is due."""
    from .bundles import import_reply_bundle

    bar = _ProgressBar("reply bundle")
    try:
        result = import_reply_bundle(state.drop(), bundle, progress=bar)
    except SecureDropError as e:
        raise click.ClickException(f"refused, nothing imported: {e}") from None
    finally:
        bar.close()
    if result.already_imported:
        click.echo(f"reply bundle {result.sequence} was already imported; nothing changed")
        return
    click.echo(
        f"reply bundle {result.sequence}: {result.replies_stored} reply(ies) stored, "
        f"{result.replies_skipped} skipped (source gone or already stored), "
        f"{result.acknowledged} submission(s) acknowledged "
        f"({result.acknowledged_unknown} unknown or already purged), "
        f"{result.purged} ciphertext(s) purged"
    )


@main.command("purge")
@click.pass_obj
def purge_command(state: _Context) -> None:
    """Purge acknowledged submissions whose retention period has run out."""
    from .bundles import purge_acknowledged

    click.echo(f"purged {purge_acknowledged(state.drop())} acknowledged ciphertext(s)")


@main.group("transfer-token")
def transfer_token() -> None:
    """Responder tokens for the transfer API (kept only as hashes on the server)."""


@transfer_token.command("create")
@click.argument("name")
@click.pass_obj
def transfer_token_create(state: _Context, name: str) -> None:
    """Make a token for NAME and print it: it is shown this once."""
    from .transfer import create_token

    click.echo(create_token(state.drop(), name))


@transfer_token.command("rotate")
@click.argument("name")
@click.pass_obj
def transfer_token_rotate(state: _Context, name: str) -> None:
    """Replace NAME's token with a new one (printed once); the old one stops working."""
    from .transfer import rotate_token

    click.echo(rotate_token(state.drop(), name))


@transfer_token.command("revoke")
@click.argument("name")
@click.pass_obj
def transfer_token_revoke(state: _Context, name: str) -> None:
    """Delete NAME's token."""
    from .transfer import revoke_token

    revoke_token(state.drop(), name)
    click.echo(f"revoked the token {name}")


@transfer_token.command("list")
@click.pass_obj
def transfer_token_list(state: _Context) -> None:
    """List token names and the day each was made (the tokens themselves are not kept)."""
    from .transfer import list_tokens

    for info in list_tokens(state.drop()):
        click.echo(f"{info.name}\t{info.created_day}")


# -- the transfer API's onion: serve-transfer, transfer-client (docs/transfer.md) ---------


@main.command("serve-transfer")
@click.option("--port", default=8081, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
@click.option(
    "--onion",
    is_flag=True,
    help="Also publish it as a v3 onion with client authorization (key and authorized "
    "clients in <data dir>/onion/transfer) and print the address.",
)
@_tor_options
@click.pass_obj
def serve_transfer(
    state: _Context, /, port: int, workers: int, threads: int, onion: bool, **tor_options: Any
) -> None:
    """Serve the transfer API on 127.0.0.1:PORT with gunicorn, no access log."""
    from .drop import silence_libraries
    from .onion import OnionError, list_authorized_clients
    from .server import run_gunicorn

    _check_tor_options(onion, "127.0.0.1", tor_options)
    config = _config_path(state.config).resolve()
    args = ["--port", str(port), "--workers", str(workers), "--threads", str(threads)]
    if onion:
        try:
            clients = list_authorized_clients(_transfer_key_dir(state))
        except OnionError as e:
            raise click.ClickException(str(e)) from None
        if not clients:
            raise click.ClickException(
                "no transfer machine is authorized, and the transfer onion is never public: "
                "run `securedrop-wm transfer-client add NAME` first"
            )
        _serve_behind_onion(
            config,
            ["serve-transfer", *args],
            port,
            "transfer",
            label="Transfer API",
            client_auth=True,
            tor_options=tor_options,
        )
        return
    silence_libraries()
    click.echo(f"Transfer API on http://127.0.0.1:{port}/ (no access log is kept)")
    run_gunicorn("transfer_api.wsgi:app", config, "127.0.0.1", port, workers, threads)


def _transfer_key_dir(state: _Context) -> Path:
    return _load(state.config).data_dir / "onion" / "transfer"


@main.group("transfer-client")
def transfer_client() -> None:
    """Transfer machines allowed to reach the transfer onion (v3 client authorization)."""


@transfer_client.command("add")
@click.argument("name")
@click.pass_obj
def transfer_client_add(state: _Context, name: str) -> None:
    """Authorize a transfer machine NAME; print the key line for its tor (shown once)."""
    from .onion import OnionError, add_authorized_client, ensure_service_key
    from .onion import generate_client_keypair as new_keypair

    key_dir = _transfer_key_dir(state)
    pair = new_keypair()
    try:
        address = ensure_service_key(key_dir)
        add_authorized_client(key_dir, name, pair.public_key)
    except OnionError as e:
        raise click.ClickException(str(e)) from None
    click.echo(pair.auth_private_line(address), nl=False)
    click.echo(
        f"On the transfer machine, save the line above as <ClientOnionAuthDir>/{name}"
        ".auth_private (mode 600) and reload tor; it is a secret and is not kept here. "
        "A running `serve-transfer --onion` accepts it once restarted.",
        err=True,
    )


@transfer_client.command("list")
@click.pass_obj
def transfer_client_list(state: _Context) -> None:
    """List the authorized transfer machines and their public keys."""
    from .onion import OnionError, list_authorized_clients

    try:
        clients = list_authorized_clients(_transfer_key_dir(state))
    except OnionError as e:
        raise click.ClickException(str(e)) from None
    for client in clients:
        click.echo(f"{client.name}\t{client.public_key}")


@transfer_client.command("remove")
@click.argument("name")
@click.pass_obj
def transfer_client_remove(state: _Context, name: str) -> None:
    """Revoke NAME's authorization (a running `serve-transfer --onion`: restart it)."""
    from .onion import OnionError, remove_authorized_client

    try:
        remove_authorized_client(_transfer_key_dir(state), name)
    except OnionError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"removed the transfer client {name}; revoke its token too")


# -- the transfer machine: transfer status|pull|push (docs/transfer.md) ---------------------

TRANSFER_CONFIG_ENV = "SDWM_TRANSFER_CONFIG"


def _transfer_options(f: _F) -> _F:
    """Where the transfer API is and how to reach it; each overrides the config file."""
    options = [
        click.option(
            "--transfer-config",
            type=click.Path(dir_okay=False, path_type=Path),
            envvar=TRANSFER_CONFIG_ENV,
            help="TOML settings of the transfer machine [default: "
            "~/.config/securedrop-wm/transfer.toml if it exists].",
        ),
        click.option("--onion", help="The transfer onion's address (56 characters .onion)."),
        click.option("--socks", help="Tor's SocksPort as HOST:PORT [default: 127.0.0.1:9050]."),
        click.option(
            "--token-file",
            type=click.Path(dir_okay=False, path_type=Path),
            help="File holding the responder token (mode 600).",
        ),
        click.option(
            "--retries",
            type=click.IntRange(0, 20),
            help="Attempts after a failure that may pass on a new try [default: 3].",
        ),
        click.option("--retry-delay", type=click.FloatRange(0, 300), hidden=True),
        click.option(
            "--timeout",
            type=click.FloatRange(5, 3600),
            help="Seconds to wait for tor to connect and for each part of an answer "
            "[default: 300].",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _transfer_client(options: dict[str, Any], **more: Any) -> Any:
    """A TransferClient for the options given, which tells the user about retries."""
    try:
        from .transfer_client import TransferClient, TransferError, load_transfer_settings
    except ImportError as e:
        raise click.ClickException(
            f"the transfer commands need packages this installation does not have "
            f"({e.name}): install requirements/transfer.txt, or pip install "
            "'securedrop-wm[transfer]'"
        ) from None

    config = options.pop("transfer_config")
    if config is None:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        default = base / "securedrop-wm" / "transfer.toml"
        config = default if default.is_file() else None
    settings = load_transfer_settings(config, **options, **more)

    def on_retry(attempt: int, error: TransferError, delay: float) -> None:
        click.echo(f"attempt {attempt} failed: {error}; trying again in {delay:g} s", err=True)

    return TransferClient(settings, on_retry=on_retry)


class _ProgressBar:
    """A click progress bar on stderr, started again for each attempt; silent when stderr
    is not a terminal (scripts, cron, logs)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._bar: Any = None
        self._done = 0
        self.shown = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        if done == 0 or self._bar is None:
            self.close()
            self._bar = click.progressbar(
                length=max(total, 1),
                label=self.label,
                file=sys.stderr,
                show_pos=False,
                item_show_func=lambda n: None if n is None else f"{n / (1 << 20):.1f} MiB",
            )
            self._bar.__enter__()
            self._done = 0
        self._bar.update(done - self._done, done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@main.group()
def transfer() -> None:
    """On the transfer machine: reach the drop's transfer API through Tor."""


@transfer.command("status")
@_transfer_options
def transfer_status_command(**options: Any) -> None:
    """How many reports wait for the workstation, and how many are urgent."""
    with _transfer_client(options) as client:
        status = client.status()
    click.echo(f"{status.pending} report(s) waiting, {status.urgent_pending} urgent")


@transfer.command("pull")
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the export bundle (e.g. the removable disk).",
)
@_transfer_options
def transfer_pull(output_dir: Path | None, **options: Any) -> None:
    """Download the next export bundle (everything not yet acknowledged)."""
    with _transfer_client(options, output_dir=output_dir) as client:
        folder = client.settings.output_dir
        if folder is None:
            raise click.ClickException("give --output-dir, or output_dir in the config")
        bar = _ProgressBar("export bundle")
        try:
            bundle = client.pull(folder, bar)
        finally:
            bar.close()
    click.echo(
        f"export bundle {bundle.sequence}: {bundle.items} item(s), "
        f"{bundle.size / (1 << 20):.1f} MiB, SHA-256 {bundle.sha256} -> {bundle.path}"
    )


@transfer.command("push")
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@_transfer_options
def transfer_push(bundle: Path, **options: Any) -> None:
    """Upload the reply bundle BUNDLE made on the workstation."""
    with _transfer_client(options) as client:
        bar = _ProgressBar("reply bundle")
        try:
            result = client.push(bundle, bar)
        finally:
            bar.close()
    if result.already_imported:
        click.echo(f"reply bundle {result.sequence} was already imported; nothing changed")
        return
    click.echo(
        f"reply bundle {result.sequence}: {result.replies_stored} reply(ies) stored, "
        f"{result.replies_skipped} skipped, {result.acknowledged} submission(s) acknowledged, "
        f"{result.purged} ciphertext(s) purged"
    )


def run(*args: Any) -> None:
    """Entry point for ``python -m securedrop_wm``."""
    main(*args)
