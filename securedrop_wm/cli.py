"""The ``securedrop-wm`` command: a Click group over core functions."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import click

from .crypto import GnuPG
from .drop import Drop, clean_orphans, open_drop
from .errors import SecureDropError
from .settings import CONFIG_ENV, Settings, load_settings

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
    try:
        return load_settings(_config_path(config))
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None


class _Context:
    def __init__(self, config: str | None) -> None:
        self.config = config
        self._drop: Drop | None = None

    def drop(self) -> Drop:
        if self._drop is None:
            self._drop = open_drop(_load(self.config))
        return self._drop

    def close(self) -> None:
        if self._drop is not None:
            self._drop.close()


@click.group()
@config_option
@click.version_option(package_name="securedrop-wm")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """securedrop-wm: a secure drop for at-risk Wikimedia contributors."""
    os.umask(0o077)  # every file the drop writes is for its own user only
    state = _Context(config)
    ctx.obj = state
    ctx.call_on_close(state.close)


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
@click.option(
    "--demo-keys",
    is_flag=True,
    help="No responder keys given: create throwaway ones (for a local demo only).",
)
@click.option("--kdf-memory-kib", type=int, default=None, hidden=True)
@click.option("--kdf-time-cost", type=int, default=None, hidden=True)
def init(
    data_dir: Path,
    responder_keys: tuple[Path, ...],
    workstation_key: Path | None,
    demo_keys: bool,
    kdf_memory_kib: int | None,
    kdf_time_cost: int | None,
) -> None:
    """Create a data dir: config, peppers, GnuPG home, server signing key, responder keys."""
    config_path = data_dir / "config.toml"
    if config_path.exists():
        raise click.ClickException(f"{config_path} exists already; refusing to overwrite it")
    if not responder_keys and not demo_keys:
        raise click.ClickException("give at least one --responder-key, or --demo-keys")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    gpg = GnuPG(data_dir / "gnupg")
    try:
        armored = [p.read_text() for p in responder_keys]
        if demo_keys and not armored:
            armored = [_create_demo_responder(data_dir)]
        fingerprints = []
        for text in armored:
            imported = gpg.import_keys(text)
            fingerprints.append(imported[0])
        gpg.require_encryption_keys(fingerprints)
        workstation = gpg.import_keys(workstation_key.read_text())[0] if workstation_key else ""
        signing = gpg.create_key("securedrop-wm server signing key", None)
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None
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
        f'team_fingerprint = "{fingerprints[0]}"\n'
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
    settings = load_settings(config_path)
    open_drop(settings).close()
    click.echo(f"Initialized {data_dir}: team key {fingerprints[0]}, signing key {signing}")


def _create_demo_responder(data_dir: Path) -> str:
    """A throwaway responder key whose secret part lives outside the server's GnuPG home."""
    home = data_dir / "demo-responder-gnupg"
    demo = GnuPG(home)
    try:
        fpr = demo.create_key("securedrop-wm demo responder (THROWAWAY)", None)
        click.echo(
            f"Created a throwaway responder key in {home}: for a local demo only. "
            f"Decrypt with: gpg --homedir {home} --decrypt FILE",
            err=True,
        )
        return demo.export_public_key(fpr)
    finally:
        demo.close()


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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--threads", default=4, show_default=True, type=int)
@click.pass_obj
def serve(state: _Context, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the source UI with gunicorn on HOST:PORT (loopback by default), no access log."""
    from .server import run_gunicorn

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
    try:
        uuid = add_reply(state.drop(), designation, text)
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None
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
    try:
        manifest = export_bundle(state.drop(), output)
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None
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

    try:
        result = import_reply_bundle(state.drop(), bundle)
    except SecureDropError as e:
        raise click.ClickException(f"refused, nothing imported: {e}") from None
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

    try:
        click.echo(create_token(state.drop(), name))
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None


@transfer_token.command("rotate")
@click.argument("name")
@click.pass_obj
def transfer_token_rotate(state: _Context, name: str) -> None:
    """Replace NAME's token with a new one (printed once); the old one stops working."""
    from .transfer import rotate_token

    try:
        click.echo(rotate_token(state.drop(), name))
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None


@transfer_token.command("revoke")
@click.argument("name")
@click.pass_obj
def transfer_token_revoke(state: _Context, name: str) -> None:
    """Delete NAME's token."""
    from .transfer import revoke_token

    try:
        revoke_token(state.drop(), name)
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"revoked the token {name}")


@transfer_token.command("list")
@click.pass_obj
def transfer_token_list(state: _Context) -> None:
    """List token names and the day each was made (the tokens themselves are not kept)."""
    from .transfer import list_tokens

    for info in list_tokens(state.drop()):
        click.echo(f"{info.name}\t{info.created_day}")


def _register_workstation() -> None:
    # The workstation's commands live with its core; registered here so one console
    # script serves both machines.
    from .workstation.cli import workstation

    main.add_command(workstation)


_register_workstation()


def run(*args: Any) -> None:
    """Entry point for ``python -m securedrop_wm``."""
    main(*args)
