"""Tor's onion-service defences: proof-of-work, stream limits, intro-point limits.

Their values are set in one file, :data:`DEFENCES_FILE` (``onion_defences.ini``, torrc
options, one section a service), read here for ``securedrop-wm serve --onion`` and by
the Ansible role sdwm_tor for production's torrc. :func:`load_defences` reads a
service's section; :func:`add_onion_arguments` turns it into what ``ADD_ONION`` takes.
Nothing here talks to tor; that is :mod:`securedrop_wm.onion`, which re-exports
:func:`load_defences` and :data:`DEFENCES_FILE`. See docs/onion.md, "Defences against
floods".
"""

from __future__ import annotations

import configparser
from collections.abc import Mapping
from pathlib import Path

from .errors import OnionError

__all__ = ["DEFENCES_FILE", "add_onion_arguments", "load_defences"]

#: Tor's onion-service defences of the source and transfer onions (torrc options, one
#: section a service): read here and by the Ansible role sdwm_tor. See docs/onion.md.
DEFENCES_FILE = Path(__file__).with_name("onion_defences.ini")
# The defences that ADD_ONION takes, by torrc option: the keyword drops "HiddenService".
_ADD_ONION_KEYWORDS = {
    "HiddenServicePoWDefensesEnabled",
    "HiddenServicePoWQueueRate",
    "HiddenServicePoWQueueBurst",
    "HiddenServiceMaxStreams",
}
_ADD_ONION_FLAGS = {"HiddenServiceMaxStreamsCloseCircuit"}
# torrc only: ADD_ONION has no keyword for the intro-point DoS defence (tor 0.4.9.11).
_TORRC_ONLY = {
    "HiddenServiceEnableIntroDoSDefense",
    "HiddenServiceEnableIntroDoSRatePerSec",
    "HiddenServiceEnableIntroDoSBurstPerSec",
}


def load_defences(service: str, path: Path = DEFENCES_FILE) -> dict[str, int]:
    """The onion-service defences of ``service`` (``"source"`` or ``"transfer"``) as
    ``{torrc option: value}``, from :data:`DEFENCES_FILE`.

    :raises OnionError: no such section, an unknown option or a value that is not a
        whole number.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the case
    try:
        with path.open(encoding="utf-8") as file:
            parser.read_file(file)
        section = parser[service]
    except (OSError, configparser.Error, KeyError) as exc:
        raise OnionError(f"no onion defences for {service!r} in {path}: {exc}") from exc
    defences = {}
    for option, value in section.items():
        if option not in _ADD_ONION_KEYWORDS | _ADD_ONION_FLAGS | _TORRC_ONLY:
            raise OnionError(f"{path}: unknown onion defence {option}")
        if not value.isdigit():
            raise OnionError(f"{path}: {option} must be a whole number, not {value!r}")
        defences[option] = int(value)
    return defences


def add_onion_arguments(defences: Mapping[str, int]) -> tuple[list[str], list[str]]:
    """``(flags, keyword arguments)`` of ADD_ONION for ``defences``; the torrc-only
    ones have no ADD_ONION form and are left out."""
    flags = [o.removeprefix("HiddenService") for o in _ADD_ONION_FLAGS if defences.get(o)]
    keywords = [
        f"{o.removeprefix('HiddenService')}={v}"
        for o, v in defences.items()
        if o in _ADD_ONION_KEYWORDS
    ]
    return flags, keywords
