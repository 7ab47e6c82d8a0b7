"""What the three machines' settings loaders share: one way to read settings.

Each machine (the drop server, the responder workstation, the transfer machine) declares
a :class:`SettingsSource` once: its environment prefix, the keys its TOML file may hold
(and the keys of its tables), and where its secrets live. :func:`read_settings` reads
the file, the secrets beside it and the environment under that prefix, refuses any key
it does not know with the nearest valid one, and hands the raw values to the machine's
own validation, which makes its frozen dataclass (``settings``,
``workstation.settings``, ``transfer_settings``).
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SettingsError

#: Environment variables that start like a settings prefix but are no setting: the
#: config-file pointers, the passwords and folders the scripts, the CI and the tests
#: use. Every other ``SDWM_*`` variable must name a setting (docs/configuration.md).
RESERVED_ENV: frozenset[str] = frozenset(
    {
        # where each machine's config file is
        "SDWM_CONFIG",
        "SDWM_WS_CONFIG",
        "SDWM_TRANSFER_CONFIG",
        # passwords given to commands, never settings
        "SDWM_WS_ADMIN_PASSWORD",
        "SDWM_BACKUP_PASSPHRASE",
        "SDWM_TOR_CONTROL_PASSWORD",
        # scripts/ (run-local.sh, demo, install checks)
        "SDWM_DATA",
        "SDWM_VENV",
        "SDWM_PYTHON",
        "SDWM_TOOLS_VENV",
        "SDWM_DEMO_DIR",
        # tests/, .ci/ and fuzz/
        "SDWM_DEPLOY_CACHE",
        "SDWM_DEPLOY_SOURCE",
        "SDWM_TOR_KEY_CACHE",
        "SDWM_TOR_INFO_LOG",
        "SDWM_FUZZ_SECONDS",
    }
)


@dataclass(frozen=True)
class SettingsSource:
    """Where one machine's settings come from, and which keys they may have.

    :param keys: each top-level key, with ``None`` for a value or the keys a table of
        that name may hold (an empty collection: any key, checked by the machine).
    :param other_prefixes: longer prefixes that belong to another machine, so that the
        server's ``SDWM_`` leaves ``SDWM_WS_*`` and ``SDWM_TRANSFER_*`` alone.
    """

    what: str
    env_prefix: str
    keys: Mapping[str, Collection[str] | None]
    other_prefixes: tuple[str, ...] = ()
    secrets: str | None = None
    missing_hint: str = ""
    missing_secrets_hint: str = ""


@dataclass(frozen=True)
class RawSettings:
    """The values read, not yet validated: the file's with the environment's over them."""

    values: dict[str, Any]
    secrets: dict[str, Any]
    #: The keys of ``values`` that the environment gave (its paths are not the file's).
    from_env: frozenset[str] = frozenset()


def read_settings(
    source: SettingsSource,
    config_path: Path | None,
    environ: Mapping[str, str],
    *,
    secrets_path: Path | None = None,
) -> RawSettings:
    """Read ``config_path`` (if any), the secrets file beside it (or at ``secrets_path``)
    and the variables of ``environ`` under ``source.env_prefix``.

    :raises SettingsError: a file is missing or not TOML, or a key or variable names no
        setting (the message names it and the nearest one that exists).
    """
    values: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    if config_path is not None:
        values = read_toml(config_path, source.what, source.missing_hint)
        check_keys(values, source.keys, str(config_path))
        if source.secrets is not None:
            secrets = read_toml(
                secrets_path or config_path.with_name(source.secrets),
                source.what.replace("config", "secrets"),
                source.missing_secrets_hint,
            )
    from_env = env_overrides(source, environ)
    check_keys(from_env, source.keys, "the environment", source.env_prefix)
    return RawSettings({**values, **from_env}, secrets, frozenset(from_env))


def read_toml(path: Path, what: str, missing_hint: str = "") -> dict[str, Any]:
    """The TOML document in ``path``.

    :raises SettingsError: missing (with ``missing_hint``), unreadable, or not TOML.
    """
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        hint = f" ({missing_hint})" if missing_hint else ""
        raise SettingsError(f"{what} not found: {path}{hint}") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{what} {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise SettingsError(f"{what} {path} cannot be read: {e.strerror}") from None


def env_overrides(source: SettingsSource, environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings given as ``PREFIX_NAME=value`` (a TOML value, else a string).

    Reserved names (:data:`RESERVED_ENV`) and other machines' prefixes are skipped.
    """
    found: dict[str, Any] = {}
    for key, value in environ.items():
        if (
            not key.startswith(source.env_prefix)
            or key in RESERVED_ENV
            or key.startswith(source.other_prefixes)
        ):
            continue
        found[key[len(source.env_prefix) :].lower()] = _parse_env_value(value)
    return found


def check_keys(
    values: Mapping[str, Any],
    keys: Mapping[str, Collection[str] | None],
    where: str,
    env_prefix: str | None = None,
) -> None:
    """Refuse a key of ``values`` (or of one of its tables) that ``keys`` does not name,
    naming the nearest one that exists.

    :param env_prefix: the values came from the environment: name the variables.
    """
    for name, value in values.items():
        if name not in keys:
            if env_prefix is None:
                raise SettingsError(
                    _unknown("setting", f"'{name}'", [f"'{k}'" for k in keys], where)
                )
            raise SettingsError(
                _unknown(
                    "environment variable",
                    env_prefix + name.upper(),
                    [env_prefix + k.upper() for k in keys],
                    where,
                )
                + " (names reserved for scripts and tests: docs/configuration.md)"
            )
        table = keys[name]
        if not table:
            continue
        # A table, or an array of tables (``[[desks]]``): each one's keys are checked.
        tables = [value] if isinstance(value, Mapping) else value if isinstance(value, list) else []
        for one in tables:
            if not isinstance(one, Mapping):
                continue
            for sub in one:
                if sub not in table:
                    known = [f"'{name}.{k}'" for k in table]
                    raise SettingsError(_unknown("setting", f"'{name}.{sub}'", known, where))


def _unknown(kind: str, name: str, known: Iterable[str], where: str) -> str:
    """``unknown setting 'x' in WHERE; did you mean 'y'?``"""
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return f"unknown {kind} {name} in {where}{hint}"


def _parse_env_value(value: str) -> Any:
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def data_dir_of(config_path: Path) -> str:
    """What to give ``init --data-dir`` so that it writes ``config_path``."""
    return str(config_path.parent) if config_path.name == "config.toml" else "DIR"


def fingerprint(value: str, name: str) -> str:
    """An OpenPGP fingerprint as 40 upper-case hex digits (spaces dropped).

    :raises SettingsError: naming the setting ``name``.
    """
    fpr = value.replace(" ", "").upper()
    if len(fpr) != 40 or any(c not in "0123456789ABCDEF" for c in fpr):
        raise SettingsError(f"setting '{name}': {value!r} is not a 40-hex-digit fingerprint")
    return fpr


def secret(secrets: Mapping[str, Any], name: str) -> bytes:
    """The secret ``name`` of a secrets file: at least 32 bytes, written as hex.

    :raises SettingsError: missing, not hex, or too short.
    """
    value = secrets.get(name)
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) < 32:
        raise SettingsError(f"secret '{name}' must be at least 32 bytes of hex in secrets.toml")
    return raw
