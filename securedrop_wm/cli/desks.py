"""``securedrop-wm desk add | list | show | set-key | remove``: the response desks of an
installed drop (docs/server.md, "Desks"). The work is done in :mod:`..desks_admin`."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import click

from ..desks import BUILTIN_ID, Desk
from ..desks_admin import DeskSpec, add_desk, remove_desk, set_desk_key
from ..drop import Drop
from ..errors import SecureDropError
from ..keys_admin import MAX_KEY_FILE_BYTES, group_fingerprint, open_server_keys
from ..settings import Settings


class _State(Protocol):
    """What the ``securedrop-wm`` group hands its commands."""

    def config_path(self) -> Path: ...

    def settings(self) -> Settings: ...

    def drop(self) -> Drop: ...


def _key(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(MAX_KEY_FILE_BYTES + 1)


def _texts(values: tuple[str, ...], option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        language, sep, text = value.partition("=")
        if not sep or not language.strip():
            raise click.BadParameter(
                f"give LANGUAGE=TEXT, e.g. en=..., not {value!r}", param_hint=option
            )
        out[language.strip()] = text
    return out


_KEY_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("desk")
def desk() -> None:
    """The response desks: who reads which reports, with their own keys (docs/server.md)."""


@desk.command("list")
@click.pass_obj
def desk_list(state: _State) -> None:
    """One line per desk: id, central or not, English name, workstation key set or not."""
    for d in state.settings().desks:
        central = "central" if d.central else "-"
        station = "workstation key set" if d.workstation_fingerprint else "no workstation key"
        click.echo(f"{d.id}\t{central}\t{d.text('name', 'en')}\t{station}")


@desk.command("show")
@click.argument("desk_id")
@click.pass_obj
def desk_show(state: _State, desk_id: str) -> None:
    """Everything the configuration says of the desk DESK_ID."""
    found = [d for d in state.settings().desks if d.id == desk_id]
    if not found:
        raise click.ClickException(f"no desk is named {desk_id!r} (see `securedrop-wm desk list`)")
    _show(found[0])


def _show(d: Desk) -> None:
    click.echo(
        f"id: {d.id}" + ("  (the built-in desk of a drop with one team)" if d.is_builtin else "")
    )
    click.echo(f"central: {'yes' if d.central else 'no'}")
    for label, texts in (("name", d.names), ("description", d.descriptions), ("serves", d.serves)):
        for language, text in texts.items():
            click.echo(f"{label} [{language}]: {text}")
    click.echo(f"languages: {', '.join(d.languages) or '(not said)'}")
    for n, fpr in enumerate(d.responder_fingerprints):
        role = "team key" if n == 0 else "responder key"
        click.echo(f"{role}: {group_fingerprint(fpr)}")
    station = d.workstation_fingerprint
    click.echo(f"workstation key: {group_fingerprint(station) if station else '(none yet)'}")


@desk.command("add")
@click.argument("desk_id")
@click.option("--name", "names", multiple=True, required=True, help="LANG=TEXT; en= is required.")
@click.option("--description", "descriptions", multiple=True, help="LANG=TEXT (optional).")
@click.option("--serves", "serves", multiple=True, help="LANG=TEXT: who and where (optional).")
@click.option("--language", "languages", multiple=True, help="A language the desk reads.")
@click.option("--central", is_flag=True, help="Sources may also send to this desk.")
@click.option("--team-key", type=_KEY_FILE, required=True, help="The desk's team public key.")
@click.option("--responder-key", "responder_keys", type=_KEY_FILE, multiple=True)
@click.option("--workstation-key", type=_KEY_FILE, help="The desk's workstation signing key.")
@click.pass_obj
def desk_add(
    state: _State,
    desk_id: str,
    names: tuple[str, ...],
    descriptions: tuple[str, ...],
    serves: tuple[str, ...],
    languages: tuple[str, ...],
    central: bool,
    team_key: Path,
    responder_keys: tuple[Path, ...],
    workstation_key: Path | None,
) -> None:
    """Add the desk DESK_ID. On a drop with one team, that team becomes the desk
    "default" first (its reports, tokens and counts stay its own)."""
    spec = DeskSpec(
        id=desk_id,
        names=_texts(names, "--name"),
        team_key=_key(team_key),
        descriptions=_texts(descriptions, "--description"),
        serves=_texts(serves, "--serves"),
        languages=list(languages),
        central=central,
        responder_keys=[_key(p) for p in responder_keys],
        workstation_key=_key(workstation_key) if workstation_key else None,
    )
    try:
        with open_server_keys(state.config_path()) as keys:
            added = add_desk(keys, spec)
    except SecureDropError as e:
        raise click.ClickException(f"refused, nothing changed: {e}") from None
    _show(added)
    click.echo(
        f"Restart the services to use it; give its workstation a transfer token with "
        f"`securedrop-wm transfer-token create NAME --desk {added.id}`."
    )


@desk.command("set-key")
@click.argument("desk_id")
@click.argument(
    "role", type=click.Choice(["team", "workstation", "add-responder", "remove-responder"])
)
@click.argument("key")
@click.pass_obj
def desk_set_key(state: _State, desk_id: str, role: str, key: str) -> None:
    """Set the desk's team or workstation key (KEY: a public key file), add a responder
    key (a file) or remove one (KEY: its fingerprint)."""
    data: bytes | str = key if role == "remove-responder" else _key(Path(key))
    try:
        with open_server_keys(state.config_path()) as keys:
            fpr = set_desk_key(keys, desk_id, role, data)
    except (OSError, SecureDropError) as e:
        raise click.ClickException(f"refused, nothing changed: {e}") from None
    click.echo(f"desk {desk_id}: {role} {group_fingerprint(fpr)}; restart the services to use it")


@desk.command("remove")
@click.argument("desk_id")
@click.pass_obj
def desk_remove(state: _State, desk_id: str) -> None:
    """Remove the desk DESK_ID once nothing waits for it; its transfer tokens are revoked."""
    if desk_id == BUILTIN_ID and len(state.settings().desks) == 1:
        raise click.ClickException("a drop keeps at least one desk")
    try:
        with open_server_keys(state.config_path()) as keys:
            revoked = remove_desk(keys, state.drop(), desk_id)
    except SecureDropError as e:
        raise click.ClickException(f"refused, nothing changed: {e}") from None
    click.echo(f"removed desk {desk_id}; {revoked} transfer token(s) revoked; restart the services")


DESK_COMMANDS = [desk]
