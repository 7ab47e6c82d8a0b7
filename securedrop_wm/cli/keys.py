"""``securedrop-wm signing-key | team-key | responder-key | workstation-key``: the keys
an installed drop server trusts (docs/server.md). The work is done in :mod:`.keys_admin`;
these commands read files and say what happened."""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import click

from ..crypto import GnuPG, KeyInfo
from ..errors import SecureDropError
from ..keys_admin import (
    MAX_KEY_FILE_BYTES,
    RESPONDERS,
    TEAM,
    WORKSTATION,
    Change,
    Purpose,
    ServerKeys,
    accept_public_key,
    group_fingerprint,
    open_server_keys,
)
from ..settings import CONFIG_ENV


class _State(Protocol):
    """What the ``securedrop-wm`` group hands its commands."""

    def config_path(self) -> Path: ...


@contextmanager
def _server_keys(state: _State) -> Iterator[ServerKeys]:
    with open_server_keys(state.config_path()) as keys:
        yield keys


def _read_key_file(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read(MAX_KEY_FILE_BYTES + 1)
    return data


def accept_key_file(gpg: GnuPG, path: Path, purpose: Purpose) -> str:
    """Import the public key in ``path`` if it is fit for ``purpose`` (``init``)."""
    try:
        return accept_public_key(gpg, _read_key_file(path), purpose)
    except SecureDropError as e:
        raise _refused(path, e) from None


def report_init(
    data_dir: Path,
    config_path: Path,
    default_config: Path,
    responders: list[str],
    workstation: str,
    signing: str,
) -> None:
    """What ``init`` made, and the commands to run next, with ``--config`` when needed."""
    command = "securedrop-wm"
    named = os.environ.get(CONFIG_ENV)
    if Path(named or default_config).resolve() != config_path.resolve():
        command += f" --config {shlex.quote(str(config_path))}"
    click.echo(f"Initialized {data_dir}.")
    click.echo(f"Server signing key fingerprint: {group_fingerprint(signing)}")
    for n, fingerprint in enumerate(responders):
        role = "Team key" if n == 0 else "Responder key"
        click.echo(f"{role}: {group_fingerprint(fingerprint)}")
    if workstation:
        click.echo(f"Workstation key: {group_fingerprint(workstation)}")
    click.echo("Next, write the public signing key to carry to the workstation:")
    click.echo(f"  {command} signing-key export --output server.asc")
    if not responders or not workstation:
        click.echo("and register the public keys the workstation's setup gives you:")
    if not responders:
        click.echo(f"  {command} team-key set team.asc")
    if not workstation:
        click.echo(f"  {command} workstation-key set workstation.asc")


def _refused(path: Path, error: SecureDropError) -> click.ClickException:
    return click.ClickException(f"{path}: refused, nothing changed: {error}")


def _after_change(keys: ServerKeys, settings: tuple[str, ...]) -> None:
    """What a changed key means for what is running, and for Ansible."""
    click.echo(
        "A running `securedrop-wm serve` or `serve-transfer` reads the keys when it starts: "
        "restart it."
    )
    text = keys.config_path.read_text()
    if "Ansible managed" in text or "Rendered by Ansible" in text:
        click.echo(
            "Warning: Ansible renders this config.toml; set the keys in the playbook's "
            "variables too (docs/deploy.md), or its next run undoes this.",
            err=True,
        )
    for setting in settings:
        if keys.overridden(setting):
            click.echo(
                f"Warning: $SDWM_{setting.upper()} overrides {setting} in this environment.",
                err=True,
            )


# -- the server's own signing key ---------------------------------------------------------


@click.group("signing-key")
def signing_key() -> None:
    """The server's own signing key, which the workstation pins."""


@signing_key.command("export")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Where to write the armored public key (must not exist); - for standard output.",
)
@click.pass_obj
def signing_key_export(state: _State, output: Path) -> None:
    """Write the server's public signing key and print its fingerprint, to carry both to
    the workstation."""
    with _server_keys(state) as keys:
        fingerprint, armored = keys.signing_key()
    grouped = group_fingerprint(fingerprint)
    if str(output) == "-":
        click.echo(armored, nl=False)
        click.echo(f"Server signing key fingerprint: {grouped}", err=True)
        return
    try:
        with output.open("x") as f:
            f.write(armored)
    except FileExistsError:
        raise click.ClickException(f"{output} exists already; refusing to overwrite it") from None
    except OSError as e:
        raise click.ClickException(f"cannot write {output}: {e.strerror}") from None
    click.echo(f"Wrote the server's public signing key to {output}.")
    click.echo(f"Server signing key fingerprint: {grouped}")
    click.echo(
        "Carry the file to the workstation and give it, with this fingerprint, to its setup; "
        "compare the fingerprint there with the one above."
    )


# -- the workstation's signing key --------------------------------------------------------


@click.group("workstation-key")
def workstation_key() -> None:
    """The workstation's signing key: reply bundles must carry its signature."""


@workstation_key.command("set")
@click.argument("key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def workstation_key_set(state: _State, key_file: Path) -> None:
    """Pin KEY_FILE (the workstation's public key) in place of any earlier one."""
    _replace_key(
        state,
        key_file,
        lambda keys, armored: keys.set_workstation(armored),
        "the workstation key",
        "Reply bundles signed by any other key are refused from now on.",
        (WORKSTATION,),
    )


@workstation_key.command("show")
@click.pass_obj
def workstation_key_show(state: _State) -> None:
    """Print the pinned workstation key's fingerprint."""
    with _server_keys(state) as keys:
        fingerprint = keys.workstation()
    if fingerprint is None:
        raise click.ClickException(
            "no workstation key is registered: run `securedrop-wm workstation-key set FILE`"
        )
    click.echo(group_fingerprint(fingerprint))


# -- the team key and the other responders' keys ------------------------------------------


@click.group("team-key")
def team_key() -> None:
    """The team key: every report and every reply is encrypted to it."""


@team_key.command("set")
@click.argument("key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def team_key_set(state: _State, key_file: Path) -> None:
    """Make KEY_FILE (a public key) the team key, in place of the current one."""
    _replace_key(
        state,
        key_file,
        lambda keys, armored: keys.set_team(armored),
        "the team key",
        "New reports are encrypted to it from now on.",
        (TEAM, RESPONDERS),
    )


def _replace_key(
    state: _State,
    key_file: Path,
    put: Callable[[ServerKeys, bytes], Change],
    what: str,
    consequence: str,
    roles: tuple[str, ...],
) -> None:
    """Put KEY_FILE in the role named ``what`` (the team or the workstation key) with
    ``put``, then say so and what follows; nothing changes if it holds that role already."""
    with _server_keys(state) as keys:
        try:
            change = put(keys, _read_key_file(key_file))
        except SecureDropError as e:
            raise _refused(key_file, e) from None
        _report(change, what)
        if change.changed:
            click.echo(consequence)
            _after_change(keys, roles)


@click.group("responder-key")
def responder_key() -> None:
    """Responders' keys: every new report is encrypted to each of them and the team key."""


@responder_key.command("add")
@click.argument("key_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def responder_key_add(state: _State, key_file: Path) -> None:
    """Encrypt new reports to KEY_FILE (a responder's public key) too."""
    with _server_keys(state) as keys:
        try:
            change = keys.add_responder(_read_key_file(key_file))
        except SecureDropError as e:
            raise _refused(key_file, e) from None
        if change.changed:
            click.echo(f"Added the responder key {group_fingerprint(change.fingerprint)}.")
            _after_change(keys, (RESPONDERS,))
        else:
            click.echo(
                f"The key {group_fingerprint(change.fingerprint)} is registered already; "
                "nothing changed."
            )


@responder_key.command("remove")
@click.argument("fingerprint")
@click.pass_obj
def responder_key_remove(state: _State, fingerprint: str) -> None:
    """Stop encrypting new reports to the key FINGERPRINT (spaces allowed)."""
    with _server_keys(state) as keys:
        change = keys.remove_responder(fingerprint)
        grouped = group_fingerprint(change.fingerprint)
        if change.changed:
            click.echo(f"Removed the responder key {grouped}.")
            _after_change(keys, (RESPONDERS,))
        else:
            click.echo(f"No responder key {grouped} is registered; nothing changed.")


@responder_key.command("list")
@click.pass_obj
def responder_key_list(state: _State) -> None:
    """List the registered keys (responders, team first, and the workstation's)."""
    with _server_keys(state) as keys:
        registered = keys.registered()
    if not registered:
        click.echo("No key is registered: run `securedrop-wm team-key set FILE`.")
    for key in registered:
        click.echo(f"{key.role}\t{group_fingerprint(key.fingerprint)}\t{_describe(key.info)}")


def _describe(info: KeyInfo | None) -> str:
    if info is None:
        return "MISSING from the keyring"
    text = info.uids[0] if info.uids else ""
    if info.revoked:
        text += " (REVOKED)"
    elif info.expires is not None and info.expires <= time.time():
        text += f" (EXPIRED on {time.strftime('%Y-%m-%d', time.gmtime(info.expires))})"
    return text


def _report(change: Change, what: str) -> None:
    grouped = group_fingerprint(change.fingerprint)
    if not change.changed:
        click.echo(f"{grouped} is {what} already; nothing changed.")
        return
    replaced = f" (it replaces {group_fingerprint(change.replaced)})" if change.replaced else ""
    click.echo(f"{grouped} is {what} now{replaced}.")


KEY_COMMANDS = (signing_key, team_key, responder_key, workstation_key)
