"""The settings of ``transfer watch`` and its alert channels, validated from the values
the transfer machine's one loader (:func:`.settings.load_transfer_settings`) read."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import fingerprint
from ..errors import SettingsError
from .alerts import AlertPolicy
from .errors import TransferConfigError

#: The keys of the transfer machine's TOML file that belong to ``watch``.
WATCH_KEYS: tuple[str, ...] = (
    "watch_interval",
    "watch_poll_interval",
    "watch_poll_jitter",
    "watch_immediate_danger",
    "watch_realert_after",
    "watch_unreachable_after",
    "alert_gnupg_home",
    "alert_key",
    "smtp_host",
    "smtp_port",
    "smtp_tls",
    "smtp_user",
    "smtp_password_file",
    "smtp_from",
    "smtp_to",
    "smtp_ca_file",
    "smtp_via_tor",
    "webhook_url",
    "webhook_via_tor",
    "alert_command",
)
#: Those of them that are paths (relative to the config file, or to the current
#: folder when given in the environment).
WATCH_PATH_KEYS: tuple[str, ...] = ("alert_gnupg_home", "smtp_password_file", "smtp_ca_file")
SMTP_TLS_MODES = ("starttls", "implicit")


@dataclass(frozen=True)
class SmtpSettings:
    """A mail server reached with TLS and (if a user is given) authentication."""

    host: str
    port: int
    tls: str  # one of SMTP_TLS_MODES
    sender: str
    recipient: str
    user: str | None = None
    password_file: Path | None = None
    #: CA certificates to trust instead of the system's (a self-hosted server).
    ca_file: Path | None = None
    via_tor: bool = False


@dataclass(frozen=True)
class WatchSettings:
    """How often to poll, what to send when, and where to."""

    policy: AlertPolicy = field(default_factory=AlertPolicy)
    poll_interval: float = 300.0
    #: Each wait between polls is ``poll_interval`` plus or minus up to this.
    poll_jitter: float = 60.0
    #: A GnuPG home holding the on-call's public key, and that key's fingerprint.
    gnupg_home: Path | None = None
    key: str | None = None
    smtp: SmtpSettings | None = None
    webhook_url: str | None = None
    webhook_via_tor: bool = False
    #: A program and its arguments (no shell); the alert comes on its stdin as JSON.
    command: tuple[str, ...] = ()

    @property
    def has_channel(self) -> bool:
        return bool(self.smtp or self.webhook_url or self.command)


def parse_watch_settings(
    values: Mapping[str, Any], path: Callable[[str], Path | None]
) -> WatchSettings:
    """Validate the ``watch_*``, ``alert_*``, ``smtp_*`` and ``webhook_*`` values.

    :param path: turns a setting's value into a path (relative to where it came from).
    :raises TransferConfigError: naming the first invalid value.
    """
    interval = number(values, "watch_interval", 900.0, 1.0, 86400.0)
    policy = AlertPolicy(
        interval=interval,
        immediate_danger=_flag(values, "watch_immediate_danger"),
        realert_after=number(values, "watch_realert_after", 3600.0, 1.0, 7 * 86400.0),
        unreachable_after=int(number(values, "watch_unreachable_after", 3, 1, 1000)),
    )
    poll = number(values, "watch_poll_interval", min(300.0, interval), 1.0, 86400.0)
    jitter = number(values, "watch_poll_jitter", poll / 5, 0.0, 86400.0)
    if jitter >= poll:
        raise TransferConfigError("watch_poll_jitter must be less than watch_poll_interval")
    key = _text(values, "alert_key")
    try:
        key = None if key is None else fingerprint(key, "alert_key")
    except SettingsError as e:
        raise TransferConfigError(str(e)) from None
    home = path("alert_gnupg_home")
    if (key is None) != (home is None):
        raise TransferConfigError("give both alert_key and alert_gnupg_home, or neither")
    smtp = _smtp(values, path)
    if smtp is not None and key is None:
        raise TransferConfigError(
            "mail alerts are sent encrypted: give alert_key (the on-call's key) and "
            "alert_gnupg_home (a GnuPG home holding it)"
        )
    url = _text(values, "webhook_url")
    if url is not None and not url.startswith(("https://", "http://")):
        raise TransferConfigError("webhook_url must be an http:// or https:// URL")
    command = values.get("alert_command", [])
    if not isinstance(command, list) or not all(isinstance(a, str) and a for a in command):
        raise TransferConfigError('alert_command must be a list of strings: ["program", "arg"]')
    return WatchSettings(
        policy=policy,
        poll_interval=poll,
        poll_jitter=jitter,
        gnupg_home=home,
        key=key,
        smtp=smtp,
        webhook_url=url,
        webhook_via_tor=_flag(values, "webhook_via_tor"),
        command=tuple(command),
    )


def _smtp(values: Mapping[str, Any], path: Callable[[str], Path | None]) -> SmtpSettings | None:
    host = _text(values, "smtp_host")
    if host is None:
        given = [k for k in WATCH_KEYS if k.startswith("smtp_") and k in values]
        if given:
            raise TransferConfigError(f"{given[0]} is set but smtp_host is not")
        return None
    tls = _text(values, "smtp_tls") or "starttls"
    if tls not in SMTP_TLS_MODES:
        raise TransferConfigError(f"smtp_tls must be one of {', '.join(SMTP_TLS_MODES)}")
    sender, recipient = _text(values, "smtp_from"), _text(values, "smtp_to")
    if sender is None or recipient is None:
        raise TransferConfigError("mail alerts need smtp_from and smtp_to")
    user, password_file = _text(values, "smtp_user"), path("smtp_password_file")
    if (user is None) != (password_file is None):
        raise TransferConfigError("give both smtp_user and smtp_password_file, or neither")
    default_port = 465 if tls == "implicit" else 587
    return SmtpSettings(
        host=host,
        port=int(number(values, "smtp_port", default_port, 1, 65535)),
        tls=tls,
        sender=sender,
        recipient=recipient,
        user=user,
        password_file=password_file,
        ca_file=path("smtp_ca_file"),
        via_tor=_flag(values, "smtp_via_tor"),
    )


def number(values: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    """The number ``values[name]`` (``default`` if absent), within ``low`` to ``high``."""
    value = values.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise TransferConfigError(f"{name} must be a number from {low:g} to {high:g}")
    return float(value)


def _flag(values: Mapping[str, Any], name: str) -> bool:
    value = values.get(name, False)
    if not isinstance(value, bool):
        raise TransferConfigError(f"{name} must be true or false")
    return value


def _text(values: Mapping[str, Any], name: str) -> str | None:
    value = values.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\n" in value or "\r" in value:
        raise TransferConfigError(f"{name} must be a non-empty line of text")
    return value.strip()
