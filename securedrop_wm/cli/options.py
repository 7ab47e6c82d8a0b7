"""Options shared by the commands of every machine."""

from __future__ import annotations

import click
from click.core import ParameterSource


def top_level_config(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A callback for a subcommand's ``--config``: the subcommand's own if given there,
    else ``securedrop-wm --config PATH ...``'s, else the environment's or the default.

    So ``securedrop-wm --config FILE workstation serve`` and ``securedrop-wm --config FILE
    transfer pull`` read FILE, as ``securedrop-wm --config FILE serve`` does.
    """
    if ctx.get_parameter_source(param.name or "") is ParameterSource.COMMANDLINE:
        return value
    root = ctx.find_root()
    if root.get_parameter_source("config") is ParameterSource.COMMANDLINE:
        top: str = root.params["config"]
        return top
    return value
