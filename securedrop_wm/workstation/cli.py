"""``securedrop-wm workstation ...``: set up and serve the responder workstation."""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from typing import IO

import click

from ..cli.options import top_level_config
from ..errors import SecureDropError
from ..files import write_exclusively
from . import audit, keys, retention
from .services import Workstation, open_workstation
from .settings import CONFIG_ENV, load_workstation_settings, write_config

DEFAULT_CONFIG = Path("workstation") / "config.toml"
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _open(config: str | None) -> Workstation:
    try:
        return open_workstation(load_workstation_settings(Path(config or DEFAULT_CONFIG)))
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None


config_option = click.option(
    "--config",
    "config",
    envvar=CONFIG_ENV,
    type=click.Path(dir_okay=False),
    callback=top_level_config,
    help=f"Path of the workstation's config.toml (default: securedrop-wm's own --config, "
    f"${CONFIG_ENV} or {DEFAULT_CONFIG}).",
)


@click.group()
@click.pass_context
def workstation(ctx: click.Context) -> None:
    """The air-gapped responder workstation (journalist UI, case database)."""
    # Private files while the command runs; the caller's umask comes back afterwards.
    previous = os.umask(0o077)
    ctx.call_on_close(lambda: os.umask(previous))


@workstation.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--team-key", type=click.File("r"), help="Armored SECRET team key to import.")
@click.option("--signing-key", type=click.File("r"), help="Armored SECRET workstation key.")
@click.option("--server-key", type=click.File("r"), help="Armored public server signing key.")
@click.option("--server-fingerprint", help="Fingerprint of the server signing key, to pin.")
@click.option("--admin", "admin", help="Name of the first admin (asks for the password).")
@click.option(
    "--admin-password", envvar="SDWM_WS_ADMIN_PASSWORD", hidden=True, help="For scripts only."
)
def init(
    data_dir: Path,
    team_key: IO[str] | None,
    signing_key: IO[str] | None,
    server_key: IO[str] | None,
    server_fingerprint: str | None,
    admin: str | None,
    admin_password: str | None,
) -> None:
    """Create a workstation data dir; finish setup here or in the web page (setup token).

    With --server-key, --server-fingerprint and --admin, setup is done at once: the team
    and signing keys are imported when given, created otherwise.
    """
    config_path = data_dir / "config.toml"
    if config_path.exists():
        raise click.ClickException(f"{config_path} exists already; refusing to overwrite it")
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    write_config(config_path, {"retention_days": 90, "session_minutes": 20})
    token = secrets.token_urlsafe(16)
    write_exclusively(
        data_dir / "secrets.toml",
        (
            "# Workstation secrets: keep them on this machine only.\n"
            f'session_key = "{secrets.token_hex(32)}"\nsetup_token = "{token}"\n'
        ).encode(),
    )
    ws = _open(str(config_path))
    try:
        if server_key is None or server_fingerprint is None or admin is None:
            serve = "securedrop-wm workstation serve" + _config_flag(config_path)
            click.echo(f"Initialized {data_dir}. Finish setup in the web page: run")
            click.echo(f"  {serve}")
            click.echo("open http://127.0.0.1:8081/setup and give it the setup token:")
            click.echo(f"  setup token: {token}")
            return
        password = admin_password or click.prompt(
            "Password of the first admin", hide_input=True, confirmation_prompt=True
        )
        result = keys.first_run(
            ws,
            token=token,
            expected_token=token,
            team=keys.KeyChoice(team_key.read() if team_key else None),
            signing=keys.KeyChoice(signing_key.read() if signing_key else None),
            server_public_key=server_key.read(),
            server_fingerprint=server_fingerprint,
            admin_username=admin,
            admin_password=password,
        )
        public = []
        for name, fingerprint in (
            ("team.asc", result.settings.team_fingerprint),
            ("workstation.asc", result.settings.signing_fingerprint),
        ):
            public.append(data_dir / name)
            public[-1].write_text(keys.public_key(ws, fingerprint or ""))
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None
    finally:
        ws.close()
    s = result.settings
    click.echo(f"Initialized {data_dir}: team key {s.team_fingerprint}, ")
    click.echo(f"workstation key {s.signing_fingerprint}, server key {s.server_fingerprint}")
    click.echo(f"TOTP secret of {result.admin.username} (add it to an authenticator now):")
    click.echo(f"  {result.admin.totp_secret}")
    click.echo(f"Public keys to carry to the drop server: {', '.join(map(str, public))}")
    click.echo("There, register them:")
    click.echo("  securedrop-wm team-key set team.asc")
    click.echo("  securedrop-wm workstation-key set workstation.asc")


def _config_flag(config_path: Path) -> str:
    """`` --config PATH``, unless ``serve`` would find that config by itself."""
    named = os.environ.get(CONFIG_ENV)
    if Path(named or DEFAULT_CONFIG).resolve() == config_path.resolve():
        return ""
    return f" --config {shlex.quote(str(config_path))}"


@workstation.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=int)
def serve(config: str | None, host: str, port: int) -> None:
    """Serve the journalist UI on this machine's loopback only."""
    from ..server import run_gunicorn

    if host not in LOOPBACK:
        raise click.ClickException("the workstation serves on the loopback interface only")
    path = Path(config or DEFAULT_CONFIG).resolve()
    _open(str(path)).close()
    os.environ[CONFIG_ENV] = str(path)
    click.echo(f"Journalist UI on http://{host}:{port}/")
    # One process: the audit log's hash chain is kept in order by an in-process lock.
    run_gunicorn("journalist_ui.wsgi:app", path, host, port, workers=1, threads=4)


@workstation.command("verify-audit")
@config_option
def verify_audit(config: str | None) -> None:
    """Check the audit log's hash chain, its append-only triggers, and that it holds
    every head of it the drop server holds."""
    ws = _open(config)
    try:
        with ws.sessions() as db:
            count = audit.verify_log(db)
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None
    finally:
        ws.close()
    click.echo(f"audit log intact: {count} event(s)")


@workstation.command()
@config_option
@click.option("--dry-run", is_flag=True, help="Only list what is due.")
def purge(config: str | None, dry_run: bool) -> None:
    """Purge closed cases whose retention period is over."""
    ws = _open(config)
    try:
        if dry_run:
            for due in retention.retention_schedule(ws, horizon_days=0):
                held = " (held: replies or acknowledgements not exported)" if due.held else ""
                click.echo(f"{due.designation}\tclosed {due.closed_at:%Y-%m-%d}{held}")
            return
        purged = retention.purge_due(ws, "cli")
    finally:
        ws.close()
    click.echo(f"purged {len(purged)} case(s)")


@workstation.command("export-case")
@config_option
@click.option("--case", "case_id", type=int, required=True, help="The case's number.")
@click.option("--by", "actor", required=True, help="Your account (named in the audit log).")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The package to write (default: a neutral name in the current folder).",
)
@click.option(
    "--recipient-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The recipient's OpenPGP public key file: encrypt the package to it.",
)
@click.option("--ask-passphrase", is_flag=True, help="The workstation key has a passphrase.")
def export_case(
    config: str | None,
    case_id: int,
    actor: str,
    output: Path | None,
    recipient_key: Path | None,
    ask_passphrase: bool,
) -> None:
    """Export a case as a signed package for a lawyer (docs/case-export.md)."""
    from . import case_export

    ws = _open(config)
    try:
        recipient = None
        if recipient_key is not None:
            data = recipient_key.read_bytes()
            recipient = case_export.check_recipient(data, ws.settings.gpg_binary)
        if output is None:
            output = Path(case_export.download_name(ws.now(), recipient is not None))
        if output.exists():
            raise click.ClickException(f"{output} exists already; refusing to overwrite it")
        passphrase = None
        if ask_passphrase:
            passphrase = click.prompt("Workstation key passphrase", hide_input=True)
        made = case_export.export_case(
            ws, actor, case_id, output, recipient=recipient, passphrase=passphrase
        )
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None
    finally:
        ws.close()
    to = f"encrypted to {made.recipient}" if made.recipient else "NOT encrypted"
    click.echo(f"wrote {made.path} ({to})")
    click.echo(f"signed by the workstation key {made.signing_fingerprint}")


def _add_backup_commands() -> None:
    """Backup, restore and the team key's export: their own module (it uses the above)."""
    from .cli_backup import backup, export_team_key, restore

    for command in (backup, restore, export_team_key):
        workstation.add_command(command)


_add_backup_commands()
