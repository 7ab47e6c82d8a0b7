"""Workstation settings: one frozen dataclass made by one pure function from
``config.toml``, ``secrets.toml`` beside it, and ``SDWM_WS_*`` environment overrides."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import SettingsSource, data_dir_of, fingerprint, read_settings, secret
from ..errors import SettingsError
from ..files import write_atomically
from ..vocabulary import Urgency

ENV_PREFIX = "SDWM_WS_"
CONFIG_ENV = "SDWM_WS_CONFIG"
DEFAULT_DEADLINES: Mapping[str, int] = {Urgency.ROUTINE: 72, Urgency.URGENT: 24, Urgency.DANGER: 4}


@dataclass(frozen=True)
class WorkstationSettings:
    """Everything the workstation needs, validated at start-up.

    The three fingerprints are ``None`` until first-run setup has set them.
    """

    data_dir: Path
    config_path: Path
    database_url: str
    gpg_home: Path
    files_dir: Path
    outbox_dir: Path
    session_key: bytes = field(repr=False)
    team_fingerprint: str | None = None
    signing_fingerprint: str | None = None
    server_fingerprint: str | None = None
    deadline_hours: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    retention_days: int = 90
    session_minutes: int = 20
    max_login_failures: int = 5
    lockout_minutes: int = 5
    max_bundle_bytes: int = 2 * 1024 * 1024 * 1024
    # The UI asks for a backup when the last one is older than this (or there is none).
    backup_reminder_days: int = 7
    gpg_binary: str = "gpg"
    # How often `serve` runs the due purge (0: never; a systemd timer runs `purge`).
    purge_interval_minutes: int = 60
    # Published figures below this are shown as "<N" (stats.suppress).
    figures_min_count: int = 5


_INT_FIELDS = {
    "retention_days": (1, 36500),
    "session_minutes": (1, 24 * 60),
    "max_login_failures": (1, 100),
    # The longest wait of an account's login back-off: short, so that no one can hold a
    # responder out for long (accounts.authenticate).
    "lockout_minutes": (1, 60),
    "max_bundle_bytes": (1024, 1 << 40),
    "backup_reminder_days": (1, 365),
    "purge_interval_minutes": (0, 24 * 60),
    "figures_min_count": (2, 100),
}


#: Every key config.toml may hold (``None``: a value; ``()``: a table checked in _build).
SETTING_KEYS: dict[str, tuple[str, ...] | None] = {
    **dict.fromkeys(
        (
            "data_dir",
            "database_url",
            "gpg_home",
            "files_dir",
            "outbox_dir",
            "team_fingerprint",
            "signing_fingerprint",
            "server_fingerprint",
            "gpg_binary",
            *_INT_FIELDS,
        )
    ),
    "deadline_hours": tuple(DEFAULT_DEADLINES),
}


def load_workstation_settings(
    config_path: Path | str, environ: Mapping[str, str] | None = None
) -> WorkstationSettings:
    """Read ``config_path`` and ``secrets.toml`` beside it, apply ``SDWM_WS_*`` overrides.

    :raises SettingsError: naming the first setting that is missing, unknown or invalid.
    """
    path = Path(config_path)
    source = SettingsSource(
        what="workstation config file",
        env_prefix=ENV_PREFIX,
        keys=SETTING_KEYS,
        secrets="secrets.toml",
        missing_hint=f"make it with `securedrop-wm workstation init --data-dir "
        f"{data_dir_of(path)}`, or name another with --config or ${CONFIG_ENV}",
        missing_secrets_hint="`securedrop-wm workstation init` wrote it beside config.toml: "
        "restore it from a backup",
    )
    raw = read_settings(source, path, os.environ if environ is None else environ)
    return _build(raw.values, raw.secrets, path)


def _build(raw: dict[str, Any], secrets: dict[str, Any], config_path: Path) -> WorkstationSettings:
    base = config_path.parent

    def path_setting(name: str, default: Path) -> Path:
        value = raw.get(name)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise SettingsError(f"setting '{name}' must be a non-empty path string")
        p = Path(value)
        return p if p.is_absolute() else base / p

    def optional_fingerprint(name: str) -> str | None:
        value = raw.get(name, "")
        if not isinstance(value, str):
            raise SettingsError(f"setting '{name}' must be a fingerprint string")
        return fingerprint(value, name) if value else None

    data_dir = path_setting("data_dir", base)
    ints: dict[str, int] = {}
    for name, (low, high) in _INT_FIELDS.items():
        if name in raw:
            value = raw[name]
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise SettingsError(f"setting '{name}' must be an integer in [{low}, {high}]")
            ints[name] = value
    deadlines = dict(DEFAULT_DEADLINES)
    table = raw.get("deadline_hours", {})
    if not isinstance(table, dict):
        raise SettingsError("setting 'deadline_hours' must be a table of urgency = hours")
    for urgency, hours in table.items():
        if not Urgency.has(urgency):
            raise SettingsError(f"setting 'deadline_hours.{urgency}': unknown urgency")
        if not isinstance(hours, int) or isinstance(hours, bool) or not 1 <= hours <= 24 * 365:
            raise SettingsError(f"setting 'deadline_hours.{urgency}' must be hours in [1, 8760]")
        deadlines[urgency] = hours
    database_url = raw.get("database_url", f"sqlite:///{data_dir / 'cases.sqlite'}")
    if not isinstance(database_url, str) or ":" not in database_url:
        raise SettingsError("setting 'database_url' must be an SQLAlchemy URL")
    return WorkstationSettings(
        data_dir=data_dir,
        config_path=config_path,
        database_url=database_url,
        gpg_home=path_setting("gpg_home", data_dir / "gnupg"),
        files_dir=path_setting("files_dir", data_dir / "files"),
        outbox_dir=path_setting("outbox_dir", data_dir / "outbox"),
        session_key=secret(secrets, "session_key"),
        team_fingerprint=optional_fingerprint("team_fingerprint"),
        signing_fingerprint=optional_fingerprint("signing_fingerprint"),
        server_fingerprint=optional_fingerprint("server_fingerprint"),
        deadline_hours=deadlines,
        gpg_binary=str(raw.get("gpg_binary", "gpg")),
        **ints,
    )


def write_config(path: Path, values: Mapping[str, Any]) -> None:
    """Write ``config.toml`` atomically: strings, integers and one level of tables."""
    lines = ["# securedrop-wm responder workstation settings (docs/workstation.md)"]
    tables = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            tables.append(f"\n[{key}]")
            tables.extend(f"{k} = {_toml_value(v)}" for k, v in value.items())
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    write_atomically(path, "\n".join(lines + tables) + "\n")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    raise SettingsError(f"cannot write {type(value).__name__} to config.toml")


def read_config_values(path: Path) -> dict[str, Any]:
    """The raw values of ``config.toml``, to rewrite it with some changed."""
    with path.open("rb") as f:
        return tomllib.load(f)
