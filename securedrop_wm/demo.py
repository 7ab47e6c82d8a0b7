"""``securedrop-wm demo``: the whole chain on one machine, with throwaway keys.

``demo up`` makes (once) and serves a demo drop (source UI) and a demo responder
workstation (journalist UI); ``demo sync`` carries bundles between their folders with
the real export, verification and import functions, as the transfer machine and the
removable disk would. Nothing here is a setting or a flag of the real apps: the DEMO
banner is added by this module to the apps it serves, and it only touches folders it
made itself (docs/demo.md).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
from markupsafe import escape
from sqlalchemy import select

from .bundles import export_bundle, import_reply_bundle
from .cli.server import _write_private
from .cli.server import init as drop_init
from .cli.tor import (
    _STOP_SIGNALS,
    _die_with_parent,
    _raise_stop,
    _require_free_port,
    _Stop,
    _wait_listening,
)
from .crypto import GnuPG, stop_agent
from .drop import Drop, clean_orphans, open_drop
from .models import Submission
from .settings import load_settings
from .workstation import keys
from .workstation.services import open_workstation
from .workstation.settings import load_workstation_settings, write_config

if TYPE_CHECKING:
    from flask import Flask, Response

MARKER = "THIS-IS-A-DEMO.txt"
_MARKER_TEXT = """\
Made by `securedrop-wm demo up`: a throwaway demo of securedrop-wm (docs/demo.md).
Every key in this folder is a throwaway: never use them, or this folder, for real reports.
Remove it with `securedrop-wm demo clean --data-dir <this folder>`.
"""
USERNAME = "responder"
# A source's codename costs two Argon2id derivations; production's parameters make that
# ~0.2 s each. The demo is no drop, so it takes cheap ones and says so on every page.
DEMO_KDF = {"kdf_memory_kib": 8192, "kdf_time_cost": 1}
_EXPORT = re.compile(r"^export-\d{6}\.tar$")
_BODY = re.compile(rb"<body[^>]*>")
# Fixed English: the demo is no part of the product's catalogs.
# English on every page, an Arabic or Persian one too: lang and dir keep its punctuation
# and the warning sign where an English reader expects them.
_BANNER = (
    '<p class="demo-banner" role="note" lang="en" dir="ltr"><strong>\u26a0 DEMO</strong> \u2014 '
)
_SOURCE_BANNER = (
    "a local demo with throwaway keys, not a real drop: never report anything real here. "
    'What you send is read on the demo workstation: <a href="{peer}">{peer}</a></p>'
)
_WORKSTATION_BANNER = (
    "a demo workstation with throwaway keys, wired to the demo drop by `securedrop-wm demo "
    'sync`. A real workstation is air-gapped. Demo source UI: <a href="{peer}">{peer}</a></p>'
)


class Demo:
    """Where the parts of a demo live, under one folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.drop_config = root / "drop" / "config.toml"
        self.workstation_config = root / "workstation" / "config.toml"
        self.inbox = root / "inbox"  # the workstation's "removable disk"
        self.login = root / "login.toml"  # written last: it also means "complete"


def claim(root: Path, *, create: bool) -> Demo:
    """The demo in ``root``, if this module made it (or may make it there).

    :raises click.ClickException: a folder the demo did not make, or no demo at all.
    """
    root = root.resolve()
    if root.exists() and not root.is_dir():
        raise click.ClickException(f"{root} is not a folder")
    marker = root / MARKER
    ours = marker.is_file() and marker.read_text().startswith(_MARKER_TEXT.splitlines()[0])
    if not ours and root.is_dir() and any(root.iterdir()):
        raise click.ClickException(
            f"{root} is not empty and was not made by `securedrop-wm demo up` (it has no "
            f"{MARKER}): the demo touches only folders it made. Choose another --data-dir."
        )
    if not ours and not create:
        raise click.ClickException(f"there is no demo in {root}: run `securedrop-wm demo up`")
    return Demo(root)


def create(demo: Demo) -> None:
    """Make a demo drop and a demo workstation wired to each other, as a deployment
    would: keys made on the workstation, only public keys carried to the drop."""
    root = demo.root
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    (root / MARKER).write_text(_MARKER_TEXT)
    ws_dir = demo.workstation_config.parent
    ws_dir.mkdir(mode=0o700)
    # What `securedrop-wm workstation init` writes (its setup is done below, at once).
    write_config(demo.workstation_config, {"retention_days": 90, "session_minutes": 20})
    token = secrets.token_urlsafe(16)
    _write_private(
        ws_dir / "secrets.toml",
        "# Demo workstation secrets.\n"
        f'session_key = "{secrets.token_hex(32)}"\nsetup_token = "{token}"\n',
    )
    ws = open_workstation(load_workstation_settings(demo.workstation_config, environ={}))
    try:
        click.echo("Making the throwaway team and workstation keys on the demo workstation")
        team = ws.gpg.create_key("securedrop-wm DEMO team key (throwaway)", None)
        signing = ws.gpg.create_key("securedrop-wm DEMO workstation key (throwaway)", None)
        public = root / "public-keys"
        public.mkdir(mode=0o700)
        (public / "team.asc").write_text(ws.gpg.export_public_key(team))
        (public / "workstation.asc").write_text(ws.gpg.export_public_key(signing))
        # The real `securedrop-wm init`, given public keys only: the drop never holds a
        # responder's secret key, in the demo too. Its advice is for a real server: muted.
        click.echo("Making the demo drop from their public keys")
        with contextlib.redirect_stdout(io.StringIO()):
            click.get_current_context().invoke(
                drop_init,
                data_dir=demo.drop_config.parent,
                responder_keys=(public / "team.asc",),
                workstation_key=public / "workstation.asc",
                **DEMO_KDF,
            )
        drop_settings = load_settings(demo.drop_config, environ={})
        drop_gpg = GnuPG(drop_settings.gpg_home, drop_settings.gpg_binary)
        try:
            server_key = drop_gpg.export_public_key(drop_settings.signing_fingerprint)
        finally:
            drop_gpg.close()
        password = secrets.token_urlsafe(12)
        # First-run setup as the setup page does it, with the keys made above (gpg
        # re-imports them in place: the secret parts never leave this keyring's folder).
        result = keys.first_run(
            ws,
            token=token,
            expected_token=token,
            team=keys.KeyChoice(_secret_key(ws.gpg, team)),
            signing=keys.KeyChoice(_secret_key(ws.gpg, signing)),
            server_public_key=server_key,
            server_fingerprint=drop_settings.signing_fingerprint,
            admin_username=USERNAME,
            admin_password=password,
        )
    finally:
        ws.close()
    demo.inbox.mkdir(mode=0o700)
    _write_private(
        demo.login,
        "# The demo responder's login (throwaway).\n"
        f'username = "{USERNAME}"\npassword = "{password}"\n'
        f'totp_secret = "{result.admin.totp_secret}"\n',
    )


def _secret_key(gpg: GnuPG, fingerprint: str) -> str:
    """The armored secret key, in memory only (an unprotected demo key: no passphrase)."""
    return gpg.export_secret_key(fingerprint)


def read_login(demo: Demo) -> dict[str, str]:
    """Username, password and TOTP secret of the demo responder."""
    with demo.login.open("rb") as f:
        return {k: str(v) for k, v in tomllib.load(f).items()}


# -- moving bundles: local folders only --------------------------------------------------


def sync(demo: Demo) -> None:
    """Carry every new reply bundle from the workstation's outbox to the drop, then the
    drop's unacknowledged submissions to the workstation's inbox as an export bundle.

    Replies go first: their acknowledgements keep what the workstation already has out
    of the export. Local files only, through the same functions the transfer API uses.
    """
    outbox = load_workstation_settings(demo.workstation_config, environ={}).outbox_dir
    drop = open_drop(load_settings(demo.drop_config, environ={}))
    try:
        replies = 0
        for path in sorted(outbox.glob("replies-*.tar")):
            result = import_reply_bundle(drop, path)
            if result.already_imported:
                continue
            replies += 1
            click.echo(
                f"workstation \u2192 drop: reply bundle {result.sequence}: "
                f"{result.replies_stored} reply(ies) stored, {result.acknowledged} "
                "submission(s) acknowledged"
            )
        if not replies:
            click.echo("workstation \u2192 drop: no new reply bundle in the outbox")
        with drop.sessions() as db:
            pending = set(
                db.scalars(select(Submission.uuid).where(Submission.acknowledged_day.is_(None)))
            )
        _export(demo, drop, pending)
    finally:
        drop.close()


def _export(demo: Demo, drop: Drop, pending: set[str]) -> None:
    state_file = demo.root / "sync-state.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else {}
    last = demo.inbox / str(state.get("bundle", "-"))
    if pending and pending <= set(state.get("items", ())) and last.is_file():
        click.echo(f"drop \u2192 workstation: nothing new; {last} still holds every report")
        return
    bundle = None
    if pending:
        temp = demo.inbox / f".export-{secrets.token_hex(8)}.tar"
        manifest = export_bundle(drop, temp)
        bundle = demo.inbox / f"export-{manifest.sequence:06d}.tar"
        os.replace(temp, bundle)
        state = {"bundle": bundle.name, "items": sorted(i.id for i in manifest.items)}
        state_file.write_text(json.dumps(state))
        reports = len({i.report_id for i in manifest.items})
        click.echo(
            f"drop \u2192 workstation: export bundle {manifest.sequence} "
            f"({reports} report(s), {len(manifest.items)} item(s)) written to\n    {bundle}\n"
            "  On the workstation: Import \u2192 choose that file \u2192 Verify \u2192 "
            "Decrypt and import"
        )
    else:
        click.echo("drop \u2192 workstation: no report waiting")
    # A newer bundle repeats everything not yet acknowledged, and the workstation refuses
    # an older one after it: keep only the newest, so there is one file to choose.
    for old in demo.inbox.iterdir():
        if _EXPORT.match(old.name) and old != bundle:
            old.unlink()


# -- serving both apps from one process --------------------------------------------------


def wsgi_app(kind: str, config: str, peer_url: str) -> Flask:
    """The real source UI or journalist UI with the DEMO banner on its pages (gunicorn's
    app factory for ``demo up``'s servers)."""
    # Imported by name: the core is type-checked strictly, the web apps are not.
    if kind == "source":
        ui = importlib.import_module("source_ui")
        app: Flask = ui.create_app(load_settings(config, environ={}))
        banner = _SOURCE_BANNER
    else:
        ui = importlib.import_module("journalist_ui")
        app = ui.create_app(load_workstation_settings(config, environ={}))
        banner = _WORKSTATION_BANNER
    html = (_BANNER + banner).format(peer=escape(peer_url)).encode("utf-8")
    app.after_request(functools.partial(_add_banner, html))
    return app


def _add_banner(html: bytes, response: Response) -> Response:
    """Put the banner first in an HTML page's body (a class, no inline style: the CSP)."""
    if response.mimetype != "text/html" or response.direct_passthrough or response.is_streamed:
        return response
    page = response.get_data()
    body = _BODY.search(page)
    if body is not None:
        response.set_data(page[: body.end()] + html + page[body.end() :])
    return response


@click.command("serve-one", hidden=True)
@click.argument("kind", type=click.Choice(["source", "workstation"]))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--port", type=click.IntRange(1, 65535), required=True)
@click.option("--peer-port", type=click.IntRange(1, 65535), required=True)
def serve_one(kind: str, data_dir: Path, port: int, peer_port: int) -> None:
    """One of the two servers `demo up` runs."""
    from .server import run_gunicorn

    demo = claim(data_dir, create=False)
    if kind == "source":
        config = demo.drop_config
        drop = open_drop(load_settings(config, environ={}))
        clean_orphans(drop)
        drop.close()
    else:
        config = demo.workstation_config
        open_workstation(load_workstation_settings(config, environ={})).close()
    peer = f"http://127.0.0.1:{peer_port}/"
    uri = f"securedrop_wm.demo:wsgi_app({kind!r}, {str(config)!r}, {peer!r})"
    # One process for the workstation: its audit chain is ordered by an in-process lock.
    run_gunicorn(uri, config, "127.0.0.1", port, workers=1, threads=4)


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise _Stop as Ctrl-C raises KeyboardInterrupt; the caller's
    handlers come back afterwards."""
    handlers = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def serve(demo: Demo, port: int, workstation_port: int) -> None:
    """Run both servers as children until Ctrl-C or SIGTERM, then stop both (call it
    within ``_stop_signals``)."""
    children: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        for kind, own, peer in (
            ("source", port, workstation_port),
            ("workstation", workstation_port, port),
        ):
            args = ["--data-dir", str(demo.root), "--port", str(own), "--peer-port", str(peer)]
            child = subprocess.Popen(
                [sys.executable, "-m", "securedrop_wm", "demo", "serve-one", kind, *args],
                stdin=subprocess.DEVNULL,
                # Its own session: Ctrl-C reaches this process only, which stops both.
                start_new_session=True,
                preexec_fn=_die_with_parent,  # safe: no thread of this process is running
            )
            children.append((kind, child))
        for (_, child), own in zip(children, (port, workstation_port), strict=True):
            _wait_listening(child, own)
        click.echo(_instructions(demo, port, workstation_port))
        while True:
            for kind, child in children:
                if child.poll() is not None:
                    raise click.ClickException(
                        f"the demo {kind} server exited (status {child.returncode})"
                    )
            time.sleep(0.5)
    except (_Stop, KeyboardInterrupt):
        click.echo("Stopping the demo", err=True)
    finally:
        # A second signal must not cut the clean-up short.
        for sig in _STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        _stop([child for _, child in children])
        _kill_agents(demo)
    click.echo(f"Stopped. The demo stays in {demo.root}: `demo up` serves it again.")


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    """Stop the servers and their workers, together: SIGINT is gunicorn's quick shutdown
    (SIGTERM would wait for a browser's idle keep-alive connections)."""
    for sig, wait in ((signal.SIGINT, 15.0), (signal.SIGKILL, 10.0)):
        running = [c for c in children if c.poll() is None]
        for child in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, sig)
        deadline = time.monotonic() + wait
        for child in running:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))


def _program() -> str:
    """How to run this command again from the current folder."""
    exe = Path(sys.argv[0])
    if exe.name != "securedrop-wm":
        return f"{_short(Path(sys.executable))} -m securedrop_wm"
    found = shutil.which("securedrop-wm")
    return "securedrop-wm" if found and Path(found).samefile(exe) else _short(exe)


def _short(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _instructions(demo: Demo, port: int, workstation_port: int) -> str:
    login = read_login(demo)
    folder = "" if demo.root == Path("demo").resolve() else f" --data-dir {_short(demo.root)}"
    cmd = f"{_program()} demo"
    inbox = demo.inbox  # absolute: it is typed into a browser's file chooser too
    rule = "=" * 78
    return f"""
{rule}
 securedrop-wm DEMO: throwaway keys, on this machine only. Not a real drop.
{rule}
 Source UI (the drop)          http://127.0.0.1:{port}/
 Responder workstation         http://127.0.0.1:{workstation_port}/
   username                    {login["username"]}
   password                    {login["password"]}
   code (TOTP)                 {cmd} totp{folder}

 Follow a report there and back (commands: another terminal, in {Path.cwd()}):
  1. Source UI: Make a report, keep the codename, write what happened, Send report.
  2. {cmd} sync{folder}
       drop -> workstation: writes the export bundle into {inbox}/
  3. Workstation: log in, Import, choose {inbox}/export-NNNNNN.tar, Verify,
       Decrypt and import.
  4. Cases: open the case, read the report, write a reply, Encrypt and queue reply.
  5. Reply bundle: Export reply bundle.
  6. {cmd} sync{folder}
       workstation -> drop: the drop verifies and stores the reply
  7. Source UI: I have a codename, type it, read the reply.

 The team's secret key is only in {_short(demo.root / "workstation")}/; the drop holds
 public keys. Ctrl-C stops both servers. What this is and is not: docs/demo.md
{rule}"""


# -- the command group -------------------------------------------------------------------

data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("demo"),
    show_default=True,
    help="The demo's folder: made by `demo up`, never one it did not make.",
)


@click.group()
def demo() -> None:
    """A throwaway demo of the whole chain on this machine (docs/demo.md)."""


@demo.command()
@data_dir_option
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workstation-port",
    type=click.IntRange(1, 65535),
    help="Port of the demo workstation [default: the source UI's port + 1].",
)
def up(data_dir: Path, port: int, workstation_port: int | None) -> None:
    """Make the demo (first time) and serve its source UI and workstation on loopback."""
    ws_port = workstation_port or port + 1
    if ws_port in (port, 65536):
        raise click.ClickException("give the workstation a port of its own: --workstation-port")
    found = claim(data_dir, create=True)
    _require_free_port(port)
    _require_free_port(ws_port)
    if (found.root / MARKER).is_file() and not found.login.is_file():
        # Ours, but left half-made (stopped while being made): nothing in it matters.
        click.echo(f"{found.root} is an unfinished demo: making it again", err=True)
        _kill_agents(found)
        shutil.rmtree(found.root)
    with _stop_signals():
        if not found.login.is_file():
            started = time.monotonic()
            click.echo(f"Making a demo in {found.root} (throwaway keys)")
            try:
                create(found)
            except (_Stop, KeyboardInterrupt):
                _kill_agents(found)
                raise click.ClickException("stopped; `demo up` makes the demo again") from None
            click.echo(f"Made in {time.monotonic() - started:.1f} s")
        serve(found, port, ws_port)


@demo.command("sync")
@data_dir_option
def sync_command(data_dir: Path) -> None:
    """Move bundles both ways: replies to the drop, new reports to the workstation."""
    sync(claim(data_dir, create=False))


@demo.command()
@data_dir_option
def totp(data_dir: Path) -> None:
    """Print the demo responder's current TOTP code (and, on stderr, the rest)."""
    import pyotp

    login = read_login(claim(data_dir, create=False))
    click.echo(pyotp.TOTP(login["totp_secret"]).now())
    left = 30 - int(time.time()) % 30
    click.echo(
        f"valid {left} s more; a code works once. Username {login['username']}, password "
        f"{login['password']}; TOTP secret for an authenticator app: {login['totp_secret']}",
        err=True,
    )


@demo.command()
@data_dir_option
def clean(data_dir: Path) -> None:
    """Delete the demo folder (stop `demo up` first)."""
    found = claim(data_dir, create=False)
    _kill_agents(found)
    shutil.rmtree(found.root)
    click.echo(f"removed {found.root}")


def _kill_agents(demo: Demo) -> None:
    for home in (demo.root / "drop" / "gnupg", demo.root / "workstation" / "gnupg"):
        stop_agent(home)


demo.add_command(serve_one)
