"""``securedrop-wm workstation backup | restore | export-team-key`` (docs/workstation.md,
"Backup and restore"); registered on the ``workstation`` group by :mod:`.cli`."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path

import click

from ..errors import SecureDropError
from . import backup as core
from .cli import _open, config_option
from .services import Workstation

BY_DEFAULT = "the login name of whoever runs the command"


def _actor(by: str | None) -> str:
    if by:
        return by[:64]
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):
        return "cli"


def _protection(key_file: Path | None, fingerprint: str | None) -> core.Protection:
    if (key_file is None) != (fingerprint is None):
        raise click.UsageError("--to-key and --fingerprint go together")
    if key_file is None or fingerprint is None:
        return core.generated_passphrase()
    try:
        return core.to_backup_key(key_file.read_bytes(), fingerprint)
    except OSError as e:
        raise click.ClickException(f"cannot read {key_file}: {e.strerror}") from None


def _write(what: str, written: core.Written) -> None:
    click.echo(f"Wrote {written.path} ({written.size} bytes): {what}.")
    if written.protection.passphrase is None:
        click.echo(f"Encrypted to the backup key {written.protection.fingerprint}.")
        return
    click.echo("Encrypted under this passphrase, shown only now. Write it on paper and keep")
    click.echo("the paper apart from the backup and from this workstation:")
    click.echo(f"  {written.protection.passphrase}")


key_options = [
    click.option(
        "--to-key",
        "key_file",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="A backup PUBLIC key file to encrypt to (else: a passphrase is generated).",
    ),
    click.option("--fingerprint", help="The backup key's fingerprint (with --to-key)."),
    click.option("--by", help=f"Who makes it, for the audit log (default: {BY_DEFAULT})."),
]


def _with_key_options(f: click.decorators.FC) -> click.decorators.FC:
    for option in reversed(key_options):
        f = option(f)
    return f


def _write_protected(
    what: str,
    make: Callable[[Workstation, Path, str, core.Protection], core.Written],
    config: str | None,
    output: Path,
    key_file: Path | None,
    fingerprint: str | None,
    by: str | None,
) -> None:
    """Open the workstation, write ``what`` with ``make``, and say where it went."""
    protection = _protection(key_file, fingerprint)
    ws = _open(config)
    try:
        written = make(ws, output, _actor(by), protection)
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None
    finally:
        ws.close()
    _write(what, written)


def _output_option(help_text: str) -> Callable[[click.decorators.FC], click.decorators.FC]:
    return click.option(
        "--output",
        type=click.Path(dir_okay=False, path_type=Path),
        required=True,
        help=help_text,
    )


@click.command()
@config_option
@_output_option("The archive to write (a new file, e.g. on the backup USB drive).")
@_with_key_options
def backup(
    config: str | None,
    output: Path,
    key_file: Path | None,
    fingerprint: str | None,
    by: str | None,
) -> None:
    """Write one encrypted archive of the cases, files, keys, audit log and settings."""
    _write_protected(
        "backup of this workstation", core.create_backup, config, output, key_file, fingerprint, by
    )


@click.command("export-team-key")
@config_option
@_output_option("The file to write (a new file).")
@_with_key_options
@click.option(
    "--ask-key-passphrase",
    is_flag=True,
    help="The team key has a passphrase: ask for it (gpg needs it to export the key).",
)
def export_team_key(
    config: str | None,
    output: Path,
    key_file: Path | None,
    fingerprint: str | None,
    by: str | None,
    ask_key_passphrase: bool,
) -> None:
    """Export the team's secret key, encrypted, for safekeeping (it keeps its passphrase)."""
    key_passphrase = None
    if ask_key_passphrase:
        key_passphrase = click.prompt("Team key passphrase", hide_input=True)

    def make(ws: Workstation, out: Path, actor: str, protection: core.Protection) -> core.Written:
        return core.export_team_key(ws, out, actor, protection, key_passphrase)

    _write_protected("the team's secret key", make, config, output, key_file, fingerprint, by)


@click.command()
@click.argument("archive", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The new workstation data dir (missing or empty).",
)
@click.option(
    "--key",
    "key_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The backup SECRET key file, when the archive was encrypted to a backup key.",
)
@click.option(
    "--passphrase",
    envvar="SDWM_BACKUP_PASSPHRASE",
    hidden=True,
    help="For scripts only: the generated passphrase (asked otherwise).",
)
def restore(archive: Path, data_dir: Path, key_file: Path | None, passphrase: str | None) -> None:
    """Restore a backup archive into a new, empty data dir."""
    secret_key = key_passphrase = None
    if key_file is not None:
        try:
            secret_key = key_file.read_bytes()
        except OSError as e:
            raise click.ClickException(f"cannot read {key_file}: {e.strerror}") from None
        asked = click.prompt(
            "Passphrase of the backup secret key (empty if it has none)",
            hide_input=True,
            default="",
            show_default=False,
        )
        key_passphrase = asked or None
    elif passphrase is None:
        passphrase = click.prompt("Backup passphrase (as printed)", hide_input=True)
    try:
        restored = core.restore_backup(
            archive,
            data_dir,
            passphrase=passphrase,
            secret_key=secret_key,
            key_passphrase=key_passphrase,
        )
        core.record_restore(restored.config_path, archive, _actor(None))
    except SecureDropError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"Restored {archive} into {data_dir}: audit log intact, {restored.events} event(s).")
    click.echo(f"Serve it with: securedrop-wm workstation serve --config {restored.config_path}")
