"""The ``securedrop-wm`` command: a Click group over core functions."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import click

from ..drop import Drop, open_drop
from ..errors import SecureDropError
from ..settings import CONFIG_ENV, Settings, load_settings
from .desks import DESK_COMMANDS
from .keys import KEY_COMMANDS
from .tor import TOR_PASSWORD_ENV

__all__ = ["TOR_PASSWORD_ENV", "main", "run"]

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

    def settings(self) -> Settings:
        """The settings, read now (without opening the database)."""
        return self._drop.settings if self._drop is not None else _load(self.config)

    def close(self) -> None:
        if self._drop is not None:
            self._drop.close()


# Commands of another machine, imported only when used: the drop server installs neither
# the workstation's extras (pyotp, Pillow, pypdf) nor the transfer client's.
_LAZY_COMMANDS = {
    "workstation": ("securedrop_wm.workstation.cli", "workstation", "workstation"),
    # The demo serves the journalist UI too, so it needs the workstation's packages.
    "demo": ("securedrop_wm.demo", "demo", "workstation"),
    # The transfer machine's client of the transfer API (requests over Tor's SOCKS port).
    "transfer": ("securedrop_wm.cli.transfer", "transfer", "transfer"),
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
# desk add | list | show | set-key | remove (docs/server.md, "Desks")
for _command in DESK_COMMANDS:
    main.add_command(_command)


# The drop server's commands (init, serve, export, ...) register themselves on main, which
# they need defined first.
from . import server  # noqa: E402, F401


def run(*args: Any) -> None:
    """Entry point for ``python -m securedrop_wm``."""
    main(*args)
