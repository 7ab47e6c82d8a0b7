"""The drop server's commands: ``init``, ``serve``, ``serve-transfer``, ``export``,
``import-replies``, ``audit-heads``, ``purge``, ``maintain``, ``list-sources``,
``add-reply``, ``clean-orphans``, ``transfer-token`` and ``transfer-client``
(docs/server.md, docs/bundles.md, docs/transfer.md)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from ..bundles import export_bundle, import_reply_bundle, purge_acknowledged
from ..bundles.kept import kept_audit_heads
from ..crypto import GnuPG
from ..drop import clean_orphans, open_drop
from ..errors import SecureDropError
from ..files import write_exclusively
from ..logs import silence_libraries
from ..models import Source
from ..onion import (
    add_authorized_client,
    ensure_service_key,
    list_authorized_clients,
    remove_authorized_client,
)
from ..onion import generate_client_keypair as new_keypair
from ..retention import maintain
from ..server import run_gunicorn
from ..settings import load_settings
from ..signing_home import create_signing_key
from ..sources import add_reply
from ..transfer import create_token, list_tokens, revoke_token, rotate_token
from . import DEFAULT_CONFIG, _Context, _load, main
from .keys import accept_key_file, report_init
from .progress import ProgressBar
from .tor import check_tor_options, serve_behind_onion, tor_service_options


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
        signing = create_signing_key(data_dir / "signing", gpg)
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
    write_exclusively(path, text.encode())


@main.command("clean-orphans")
@click.pass_obj
def clean_orphans_command(state: _Context) -> None:
    """Remove unreferenced or half-written store files (run before the server starts)."""
    removed = clean_orphans(state.drop())
    click.echo(f"removed {len(removed)} orphaned file(s)")


@main.command("check-config")
@click.option(
    "--secrets",
    "secrets_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The secrets file, if not secrets.toml beside the config (Ansible checks a "
    "rendered config in a temporary folder).",
)
@click.pass_obj
def check_config(state: _Context, secrets_path: Path | None) -> None:
    """Load the settings as the server would and stop on the first wrong one: an unknown
    key or SDWM_* variable, a missing or invalid value. Changes nothing."""
    config = state.config_path()
    load_settings(config, secrets_path=secrets_path)
    click.echo(f"{config}: settings are valid")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=16, show_default=True, type=int)
@click.option(
    "--onion",
    is_flag=True,
    help="Also publish it as a v3 onion service through tor (key in <data dir>/onion/source, "
    "so the address stays the same) and print the address.",
)
@tor_service_options
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
    check_tor_options(onion, host, tor_options)
    if onion:
        args = ["--port", str(port), "--workers", str(workers), "--threads", str(threads)]
        serve_behind_onion(
            state.config_path().resolve(),
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
    run_gunicorn("source_ui.wsgi:app", state.config_path().resolve(), host, port, workers, threads)


_DESK_OPTION = click.option(
    "--desk",
    "desk",
    default=None,
    help="The desk's id (securedrop-wm desk list); needed when the drop has several.",
)


@main.command("add-reply")
@click.argument("designation")
@click.option("--message", "-m", help="Reply text (default: read standard input).")
@_DESK_OPTION
@click.pass_obj
def add_reply_command(
    state: _Context, designation: str, message: str | None, desk: str | None
) -> None:
    """Add a reply for the source DESIGNATION (until the workstation sends bundles),
    encrypted to the source and the replying desk's team key."""
    text = message if message is not None else sys.stdin.read()
    if not text.strip():
        raise click.ClickException("the reply is empty")
    uuid = add_reply(state.drop(), designation, text, desk)
    click.echo(uuid)


@main.command("list-sources")
@click.pass_obj
def list_sources(state: _Context) -> None:
    """List source designations with their report counts and reply counts."""
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
@_DESK_OPTION
@click.pass_obj
def export_command(state: _Context, output: Path, desk: str | None) -> None:
    """Write a signed export bundle of every submission the desk has not acknowledged."""
    if output.exists():
        raise click.ClickException(f"{output} exists already; refusing to overwrite it")
    bar = ProgressBar("export bundle")
    try:
        manifest = export_bundle(state.drop(), output, bar, desk)
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
@_DESK_OPTION
@click.pass_obj
def import_replies_command(state: _Context, bundle: Path, desk: str | None) -> None:
    """Verify a reply bundle from the desk's workstation, store its replies, purge what
    is due."""
    bar = ProgressBar("reply bundle")
    try:
        result = import_reply_bundle(state.drop(), bundle, progress=bar, desk=desk)
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
    if result.audit_head is not None:
        click.echo(
            f"workstation audit head kept for reply bundle {result.sequence}: {result.audit_head}"
        )
    else:
        click.echo("the bundle carried no audit head (an older workstation)")


@main.command("audit-heads")
@click.pass_obj
def audit_heads_command(state: _Context) -> None:
    """List the heads of the workstations' audit logs received in reply bundles."""
    heads = kept_audit_heads(state.drop())
    if not heads:
        click.echo("no audit head received yet")
    for h in heads:
        click.echo(f"{h.workstation_id}\t{h.sequence}\t{h.day.isoformat()}\t{h.head}")


@main.command("purge")
@click.pass_obj
def purge_command(state: _Context) -> None:
    """Purge acknowledged submissions whose retention period has run out."""
    click.echo(f"purged {purge_acknowledged(state.drop())} acknowledged ciphertext(s)")


@main.command("maintain")
@click.pass_obj
def maintain_command(state: _Context) -> None:
    """Run the due retention: purge acknowledged ciphertext, remove expired replies and
    report rows, sources that never reported or have nothing left (with their keys),
    and expired tombstones (docs/configuration.md). Run daily by a systemd timer."""
    for line in maintain(state.drop()).lines():
        click.echo(line)


@main.group("transfer-token")
def transfer_token() -> None:
    """Responder tokens for the transfer API (kept only as hashes on the server)."""


@transfer_token.command("create")
@click.argument("name")
@click.option(
    "--status-only",
    is_flag=True,
    help="The token may read the counts (GET /status) and nothing else: for a watcher "
    "that alerts, which never needs to pull or push bundles.",
)
@_DESK_OPTION
@click.pass_obj
def transfer_token_create(state: _Context, name: str, status_only: bool, desk: str | None) -> None:
    """Make a token for NAME and print it: it is shown this once. The token reaches its
    desk's items only (--desk; the only desk by default)."""
    click.echo(create_token(state.drop(), name, status_only=status_only, desk=desk))


@transfer_token.command("rotate")
@click.argument("name")
@click.pass_obj
def transfer_token_rotate(state: _Context, name: str) -> None:
    """Replace NAME's token with a new one (printed once); the old one stops working."""
    click.echo(rotate_token(state.drop(), name))


@transfer_token.command("revoke")
@click.argument("name")
@click.pass_obj
def transfer_token_revoke(state: _Context, name: str) -> None:
    """Delete NAME's token."""
    revoke_token(state.drop(), name)
    click.echo(f"revoked the token {name}")


@transfer_token.command("list")
@click.pass_obj
def transfer_token_list(state: _Context) -> None:
    """List token names, the day each was made, what it may do ("full": status, pull
    and push; "status-only") and, on a drop with several desks, its desk; the tokens
    themselves are not kept."""
    drop = state.drop()
    several = len(drop.settings.desks) > 1
    for info in list_tokens(drop):
        scope = "status-only" if info.status_only else "full"
        desk = f"\t{info.desk or '(desk no longer configured)'}" if several else ""
        click.echo(f"{info.name}\t{info.created_day}\t{scope}{desk}")


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
@tor_service_options
@click.pass_obj
def serve_transfer(
    state: _Context, /, port: int, workers: int, threads: int, onion: bool, **tor_options: Any
) -> None:
    """Serve the transfer API on 127.0.0.1:PORT with gunicorn, no access log."""
    check_tor_options(onion, "127.0.0.1", tor_options)
    config = state.config_path().resolve()
    args = ["--port", str(port), "--workers", str(workers), "--threads", str(threads)]
    if onion:
        clients = list_authorized_clients(_transfer_key_dir(state))
        if not clients:
            raise click.ClickException(
                "no transfer machine is authorized, and the transfer onion is never public: "
                "run `securedrop-wm transfer-client add NAME` first"
            )
        serve_behind_onion(
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
    key_dir = _transfer_key_dir(state)
    pair = new_keypair()
    address = ensure_service_key(key_dir)
    add_authorized_client(key_dir, name, pair.public_key)
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
    clients = list_authorized_clients(_transfer_key_dir(state))
    for client in clients:
        click.echo(f"{client.name}\t{client.public_key}")


@transfer_client.command("remove")
@click.argument("name")
@click.pass_obj
def transfer_client_remove(state: _Context, name: str) -> None:
    """Revoke NAME's authorization (a running `serve-transfer --onion`: restart it)."""
    remove_authorized_client(_transfer_key_dir(state), name)
    click.echo(f"removed the transfer client {name}; revoke its token too")
