"""The transfer machine's settings: a TOML file, ``SDWM_TRANSFER_*`` variables and the
command's options over them, validated into :class:`TransferSettings`."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import SettingsSource, read_settings
from ..errors import SettingsError
from .errors import TransferConfigError
from .watch_settings import WATCH_KEYS, WATCH_PATH_KEYS, WatchSettings, parse_watch_settings
from .watch_settings import number as _number

DEFAULT_SOCKS = "127.0.0.1:9050"
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")
_ONION = re.compile(r"(?:https?://)?([a-z2-7]{56})\.onion/?")


@dataclass(frozen=True)
class TransferSettings:
    """Where the transfer API is and how to reach it, validated."""

    #: ``<56 base32 characters>.onion``
    onion: str
    socks_host: str
    socks_port: int
    token: str = field(repr=False)
    #: Attempts after the first one, for failures that trying again may fix.
    retries: int = 3
    #: Seconds before the first retry; doubled for each later one (30 at most).
    retry_delay: float = 2.0
    #: Seconds to wait for tor to connect, and for each piece of an answer.
    timeout: float = 300.0
    #: Where ``pull`` writes bundles when not told otherwise.
    output_dir: Path | None = None
    #: What ``transfer watch`` polls, sends and where (docs/transfer.md).
    watch: WatchSettings = field(default_factory=WatchSettings)

    @property
    def base_url(self) -> str:
        return f"http://{self.onion}"

    @property
    def proxy_url(self) -> str:
        host = f"[{self.socks_host}]" if ":" in self.socks_host else self.socks_host
        return f"socks5h://{host}:{self.socks_port}"


ENV_PREFIX = "SDWM_TRANSFER_"
CONFIG_ENV = "SDWM_TRANSFER_CONFIG"
#: Every key the transfer machine's TOML file may hold (all values, no tables).
SETTING_KEYS: dict[str, None] = dict.fromkeys(
    ("onion", "socks", "token_file", "output_dir", "retries", "retry_delay", "timeout", *WATCH_KEYS)
)
_SOURCE = SettingsSource(
    what="transfer config file",
    env_prefix=ENV_PREFIX,
    keys=SETTING_KEYS,
    missing_hint=f"give another with --config or ${CONFIG_ENV}",
)


def load_transfer_settings(
    config_path: Path | None,
    *,
    onion: str | None = None,
    socks: str | None = None,
    token_file: Path | None = None,
    output_dir: Path | None = None,
    retries: int | None = None,
    retry_delay: float | None = None,
    timeout: float | None = None,
    watch: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> TransferSettings:
    """Read the transfer machine's TOML config (if given), apply ``SDWM_TRANSFER_*``
    variables over it and the values passed here over both; read the token from its file.

    :param watch: ``watch`` settings given on the command line, by setting name.

    Relative paths in the config file are relative to its folder; those given in the
    environment or here, to the current folder.

    :raises TransferConfigError: naming the first value that is missing, unknown or
        invalid.
    """
    try:
        raw = read_settings(_SOURCE, config_path, os.environ if environ is None else environ)
    except SettingsError as e:
        raise TransferConfigError(str(e)) from None
    base = Path.cwd() if config_path is None else config_path.parent
    # Paths from the environment are the caller's, not the config file's.
    env_paths: dict[str, Path] = {
        k: Path(str(raw.values[k]))
        for k in ("token_file", "output_dir", *WATCH_PATH_KEYS)
        if k in raw.from_env
    }
    given: dict[str, Any] = {
        "onion": onion,
        "socks": socks,
        "token_file": token_file,
        "output_dir": output_dir,
        "retries": retries,
        "retry_delay": retry_delay,
        "timeout": timeout,
    }
    values: dict[str, Any] = {**raw.values, **env_paths}
    values.update((k, v) for k, v in given.items() if v is not None)
    values.update((k, v) for k, v in (watch or {}).items() if v is not None)

    def path(name: str) -> Path | None:
        value = values.get(name)
        if value is None:
            return None
        if not isinstance(value, str | Path) or not str(value):
            raise TransferConfigError(f"{name} must be a path")
        return value if isinstance(value, Path) else base / Path(value).expanduser()

    if "onion" not in values:
        raise TransferConfigError("no onion address: give --onion or 'onion' in the config")
    token_path = path("token_file")
    if token_path is None:
        raise TransferConfigError("no token file: give --token-file or 'token_file'")
    host, port = parse_socks_address(str(values.get("socks", DEFAULT_SOCKS)))
    return TransferSettings(
        onion=parse_onion_address(str(values["onion"])),
        socks_host=host,
        socks_port=port,
        token=read_token_file(token_path),
        retries=int(_number(values, "retries", 3, 0, 20)),
        retry_delay=_number(values, "retry_delay", 2.0, 0.0, 300.0),
        timeout=_number(values, "timeout", 300.0, 5.0, 3600.0),
        output_dir=path("output_dir"),
        watch=parse_watch_settings(values, path),
    )


def parse_onion_address(text: str) -> str:
    """Check a v3 onion address (with its checksum) and return it as ``<id>.onion``.

    ``http://`` and a trailing ``/`` are accepted. Anything else is refused: the token
    must never travel to a clearnet host.

    :raises TransferConfigError: not a well-formed v3 onion address.
    """
    match = _ONION.fullmatch(text.strip().lower())
    if match is None:
        raise TransferConfigError(
            f"{text.strip()[:80]!r} is not a v3 onion address (56 letters and digits, then .onion)"
        )
    service_id = match.group(1)
    raw = base64.b32decode(service_id.upper())
    public_key, checksum, version = raw[:32], raw[32:34], raw[34:]
    expected = hashlib.sha3_256(b".onion checksum" + public_key + version).digest()[:2]
    if version != b"\x03" or checksum != expected:
        raise TransferConfigError(f"{service_id}.onion has a wrong checksum: is it mistyped?")
    return f"{service_id}.onion"


def parse_socks_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) of tor's SOCKS port.

    :raises TransferConfigError: not of that form.
    """
    match = re.fullmatch(
        r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9.\-]+):(\d{1,5})", text.strip()
    )
    port = int((match.group(2) or match.group(4)) if match else 0)
    if match is None or not 0 < port < 65536:
        raise TransferConfigError(
            f"{text!r} is not a SOCKS address HOST:PORT, e.g. {DEFAULT_SOCKS}"
        )
    return match.group(1) or match.group(3), port


def read_token_file(path: Path) -> str:
    """The responder token in ``path``: a file only its owner may read.

    :raises TransferConfigError: missing, unreadable, readable by others, or holding
        no token.
    """
    token = read_private_file(path, "token file", "have the token rotated")
    if not _TOKEN.fullmatch(token):
        raise TransferConfigError(
            f"{path} holds no token (one line, as `securedrop-wm transfer-token create` printed)"
        )
    return token


def read_private_file(path: Path, what: str, if_exposed: str) -> str:
    """The text of ``path`` (a secret: a file only its owner may read), stripped.

    :param what: what the file is, for the messages; ``if_exposed``: what to do if
        others could read it.
    :raises TransferConfigError: missing, unreadable, not a file, readable by others.
    """
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = f.read(1024)
    except OSError as e:
        raise TransferConfigError(f"cannot read the {what} {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        raise TransferConfigError(f"the {what} {path} is not a regular file")
    if mode & 0o077:
        raise TransferConfigError(
            f"the {what} {path} can be read by other users: chmod 600 it "
            f"(and {if_exposed} if others could read it)"
        )
    return data.decode("utf-8", "replace").strip()
