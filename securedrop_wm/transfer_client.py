"""The transfer machine's side of the transfer API, reached only through Tor.

The responders' networked transfer machine asks the drop server's transfer API (on a
v3 onion with client authorization, see ``transfer_api`` and docs/transfer.md) how many
reports wait, downloads the next export bundle and uploads a reply bundle. Every request
goes through Tor's SOCKS port as ``socks5h`` (tor resolves the onion name, nothing is
looked up locally), ignores the environment's proxy settings and carries a responder
token.

A download is written to a hidden ``.part`` file in the output folder and gets its
final name only once every announced byte has arrived: a broken transfer leaves no
bundle behind, and a retry starts from scratch. (The bundle's integrity end to end is
its signed manifest, checked on the workstation.) Usage::

    settings = load_transfer_settings(None, onion="...onion", token_file=Path("token"))
    with TransferClient(settings) as client:
        print(client.status().pending)
        bundle = client.pull(Path("/media/usb"))
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import stat
import tarfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeVar

import requests

from .bundles import EXPORT_FORMAT, REPLIES_FORMAT, REPLY_LIMITS
from .errors import SecureDropError

__all__ = [
    "DEFAULT_SOCKS",
    "ClientAuthorizationError",
    "OnionUnreachableError",
    "OutputError",
    "Progress",
    "PulledBundle",
    "PushResult",
    "ReplayRefusedError",
    "BundleRefusedError",
    "ServerError",
    "ServerStatus",
    "TokenRejectedError",
    "TorUnavailableError",
    "TransferClient",
    "TransferConfigError",
    "TransferError",
    "TransferInterruptedError",
    "TransferProtocolError",
    "TransferRefusedError",
    "TransferSettings",
    "load_transfer_settings",
    "parse_onion_address",
    "parse_socks_address",
    "read_token_file",
]

DEFAULT_SOCKS = "127.0.0.1:9050"
#: ``(bytes done, bytes in all)``: called with 0 when an attempt starts, then per chunk.
Progress = Callable[[int, int], None]

_CHUNK = 256 * 1024
_MAX_JSON = 64 * 1024
_MAX_MESSAGE = 500
_MAX_DELAY = 30.0
_GREETING_TIMEOUT = 10.0
_TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]{16,256}")
_ONION = re.compile(r"(?:https?://)?([a-z2-7]{56})\.onion/?")
_SEQUENCE = re.compile(r"[0-9]{1,18}")
_T = TypeVar("_T")


# -- errors ---------------------------------------------------------------------------


class TransferError(SecureDropError):
    """Base class of the transfer client's errors; ``retryable`` says whether trying
    again later may help."""

    retryable = False


class TransferConfigError(TransferError):
    """A setting is missing or invalid: the onion or SOCKS address, the token file, the
    output folder, the config file."""


class TorUnavailableError(TransferError):
    """Nothing that speaks SOCKS5 answers at the SOCKS address: tor is not running
    there, or that port is not its ``SocksPort``."""


class OnionUnreachableError(TransferError):
    """Tor could not reach the onion service: not published, introduction or
    rendezvous failed, timed out. ``socks_code`` is tor's SOCKS5 reply, if any."""

    retryable = True

    def __init__(self, message: str, socks_code: int | None = None) -> None:
        super().__init__(message)
        self.socks_code = socks_code


class ClientAuthorizationError(OnionUnreachableError):
    """The onion requires client authorization and this machine's tor holds no key
    for it (SOCKS 0xF4), or one the service no longer accepts (0xF5)."""

    retryable = False


class TokenRejectedError(TransferError):
    """The transfer API wanted a token (401) or refused the one sent (403)."""


class TransferRefusedError(TransferError):
    """The transfer API refused a request; ``kind`` and ``server_message`` say why,
    as the server put it. Nothing was changed on the server."""

    def __init__(self, message: str, status: int, kind: str, server_message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.server_message = status, kind, server_message


class ReplayRefusedError(TransferRefusedError):
    """The server refused a reply bundle as a replay (409): its sequence number is not
    newer than one it imported, and it is not that same bundle."""


class BundleRefusedError(TransferRefusedError):
    """The server refused a reply bundle (422, 413, 400), or it was refused here before
    sending: not a reply bundle, empty, too large."""


class ServerError(TransferError):
    """The server could not answer (5xx); it says nothing was changed."""

    retryable = True


class TransferProtocolError(TransferError):
    """The answer is not one a securedrop-wm transfer API gives (wrong onion, e.g.
    the source one)."""


class TransferInterruptedError(TransferError):
    """The connection broke, or a download ended before every announced byte came.
    Nothing was kept."""

    retryable = True


class OutputError(TransferError):
    """A bundle cannot be read or written here: no such folder, no permission, the
    disk is full, another pull is writing into the same folder."""


# -- settings -------------------------------------------------------------------------


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

    @property
    def base_url(self) -> str:
        return f"http://{self.onion}"

    @property
    def proxy_url(self) -> str:
        host = f"[{self.socks_host}]" if ":" in self.socks_host else self.socks_host
        return f"socks5h://{host}:{self.socks_port}"


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
) -> TransferSettings:
    """Read the transfer machine's TOML config (if given) and apply the values passed
    here over it; read the token from its file.

    Relative paths in the config file are relative to its folder.

    :raises TransferConfigError: naming the first value that is missing or invalid.
    """
    raw: dict[str, Any] = {}
    base = Path.cwd()
    if config_path is not None:
        raw = _read_config(config_path)
        base = config_path.parent
    given: dict[str, Any] = {
        "onion": onion,
        "socks": socks,
        "token_file": token_file,
        "output_dir": output_dir,
        "retries": retries,
        "retry_delay": retry_delay,
        "timeout": timeout,
    }
    values = {**raw, **{k: v for k, v in given.items() if v is not None}}

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
    )


def _read_config(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = tomllib.load(f)
    except OSError as e:
        raise TransferConfigError(f"cannot read the config {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise TransferConfigError(f"{path} is not valid TOML: {e}") from None
    known = {"onion", "socks", "token_file", "output_dir", "retries", "retry_delay", "timeout"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise TransferConfigError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    return raw


def _number(values: Mapping[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = values.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise TransferConfigError(f"{name} must be a number from {low:g} to {high:g}")
    return float(value)


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
    try:
        with path.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = f.read(1024)
    except OSError as e:
        raise TransferConfigError(f"cannot read the token file {path}: {e.strerror}") from None
    if not stat.S_ISREG(mode):
        raise TransferConfigError(f"the token file {path} is not a regular file")
    if mode & 0o077:
        raise TransferConfigError(
            f"the token file {path} can be read by other users: chmod 600 it "
            "(and have the token rotated if others could read it)"
        )
    token = data.decode("ascii", "replace").strip()
    if not _TOKEN.fullmatch(token):
        raise TransferConfigError(
            f"{path} holds no token (one line, as `securedrop-wm transfer-token create` printed)"
        )
    return token


# -- results --------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerStatus:
    """What ``GET /status`` says: reports waiting for the workstation."""

    pending: int
    urgent_pending: int


@dataclass(frozen=True)
class PulledBundle:
    """An export bundle written completely to ``path``."""

    path: Path
    sequence: int
    items: int
    size: int
    sha256: str


@dataclass(frozen=True)
class PushResult:
    """What the server did with a reply bundle."""

    sequence: int
    already_imported: bool
    replies_stored: int
    replies_skipped: int
    acknowledged: int
    acknowledged_unknown: int
    purged: int


# -- the client -----------------------------------------------------------------------


class TransferClient:
    """Talks to one transfer API through tor; retries what may succeed later.

    :param on_retry: called as ``on_retry(attempt, error, delay)`` before each retry.
    :param sleep: how to wait between attempts (a test may pass its own).
    """

    def __init__(
        self,
        settings: TransferSettings,
        *,
        on_retry: Callable[[int, TransferError, float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._on_retry = on_retry
        self._sleep = sleep
        self._http = requests.Session()
        # No proxy, .netrc or CA settings from the environment: nothing may bypass tor.
        self._http.trust_env = False
        self._http.proxies = {"http": settings.proxy_url, "https": settings.proxy_url}
        self._http.headers.update(
            {
                "Authorization": f"Bearer {settings.token}",
                "User-Agent": "securedrop-wm-transfer",
                "Accept-Encoding": "identity",
            }
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> TransferClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def status(self) -> ServerStatus:
        """How many reports wait for the workstation, and how many are urgent."""
        return self._retrying(self._status_once)

    def pull(self, output_dir: Path, progress: Progress | None = None) -> PulledBundle:
        """Download the next export bundle into ``output_dir`` as ``export-<seq>.tar``.

        :raises OutputError: the folder is missing, not writable, too full, or another
            pull writes into it.
        :raises TransferInterruptedError: the download broke (after the retries);
            nothing is left in ``output_dir``.
        """
        folder = Path(output_dir)
        with _locked_folder(folder):
            # Left by a pull that was killed: never a bundle, only a fragment of one.
            for stale in folder.glob(".export-*.part"):
                stale.unlink(missing_ok=True)
            return self._retrying(lambda: self._pull_once(folder, progress))

    def push(self, bundle: Path, progress: Progress | None = None) -> PushResult:
        """Upload a reply bundle; the server verifies and imports it all or nothing.

        Sending the same bundle twice is safe: the second time it is "already imported".

        :raises BundleRefusedError: refused here (not a reply bundle, empty, too large)
            or by the server, with its reason.
        :raises ReplayRefusedError: the server has imported a newer bundle.
        """
        size = _check_reply_bundle(Path(bundle))
        return self._retrying(lambda: self._push_once(Path(bundle), size, progress))

    # -- one attempt each ----------------------------------------------------------

    def _status_once(self) -> ServerStatus:
        with self._request("GET", "/status") as response:
            body = _json_body(response)
        try:
            return ServerStatus(_count(body, "pending"), _count(body, "urgent_pending"))
        except (KeyError, ValueError):
            raise TransferProtocolError("the status answer lacks its counts") from None

    def _pull_once(self, folder: Path, progress: Progress | None) -> PulledBundle:
        with self._request("GET", "/export", stream=True) as response:
            length = _header_int(response, "Content-Length")
            sequence = response.headers.get("X-SDWM-Sequence", "")
            if length is None or not _SEQUENCE.fullmatch(sequence):
                raise TransferProtocolError(
                    "the export answer has no length or sequence number: is this the transfer API?"
                )
            items = _header_int(response, "X-SDWM-Items") or 0
            _check_free_space(folder, length)
            part = folder / f".export-{sequence}-{secrets.token_hex(8)}.part"
            try:
                digest = _receive(response, part, length, progress)
                final = _name_final(part, folder, f"export-{sequence}")
            finally:
                part.unlink(missing_ok=True)
        return PulledBundle(final, int(sequence), items, length, digest)

    def _push_once(self, bundle: Path, size: int, progress: Progress | None) -> PushResult:
        try:
            f = bundle.open("rb")
        except OSError as e:
            raise OutputError(f"cannot read {bundle}: {e.strerror}") from None
        with (
            f,
            self._request(
                "POST",
                "/replies",
                data=_ProgressReader(f, size, progress),
                headers={"Content-Type": "application/x-tar", "Content-Length": str(size)},
            ) as response,
        ):
            body = _json_body(response)
        try:
            return PushResult(
                sequence=_count(body, "sequence"),
                already_imported=bool(body["already_imported"]),
                replies_stored=_count(body, "replies_stored"),
                replies_skipped=_count(body, "replies_skipped"),
                acknowledged=_count(body, "acknowledged"),
                acknowledged_unknown=_count(body, "acknowledged_unknown"),
                purged=_count(body, "purged"),
            )
        except (KeyError, ValueError):
            raise TransferProtocolError("the reply upload's answer lacks its counts") from None

    # -- plumbing ------------------------------------------------------------------

    def _retrying(self, attempt: Callable[[], _T]) -> _T:
        for n in range(self.settings.retries + 1):
            try:
                return attempt()
            except TransferError as e:
                if not e.retryable or n == self.settings.retries:
                    raise
                delay = min(self.settings.retry_delay * 2**n, _MAX_DELAY)
                if self._on_retry is not None:
                    self._on_retry(n + 1, e, delay)
                self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def _request(self, method: str, path: str, **kwargs: Any) -> Iterator[requests.Response]:
        timeout = self.settings.timeout
        self._check_socks()
        try:
            response = self._http.request(
                method,
                self.settings.base_url + path,
                timeout=(timeout, timeout),
                allow_redirects=False,
                **kwargs,
            )
        except requests.RequestException as e:
            raise self._network_error(e) from None
        with response:
            if response.status_code != 200:
                raise _http_error(response, self.settings.onion)
            yield response

    @property
    def _socks(self) -> str:
        return f"{self.settings.socks_host}:{self.settings.socks_port}"

    def _check_socks(self) -> None:
        """Greet the SOCKS port before each request, so that "tor is not running" and
        "that is not tor" are told apart from "the onion cannot be reached"."""
        try:
            with socket.create_connection(
                (self.settings.socks_host, self.settings.socks_port), timeout=_GREETING_TIMEOUT
            ) as sock:
                sock.sendall(b"\x05\x01\x00")  # SOCKS5, one method: no authentication
                reply = sock.recv(2)
        except ConnectionRefusedError:
            raise TorUnavailableError(
                f"tor is not running at {self._socks} (connection refused): start tor, "
                "or give its SocksPort with --socks"
            ) from None
        except TimeoutError:
            reply = b""
        except OSError as e:
            raise TorUnavailableError(f"cannot connect to tor at {self._socks}: {e}") from None
        if reply != b"\x05\x00":
            raise TorUnavailableError(
                f"{self._socks} does not answer as a SOCKS5 proxy: is it tor's SocksPort?"
            )

    def _network_error(self, exc: BaseException) -> TransferError:
        """Say in words why a request through tor failed."""
        for cause in _causes(exc):
            name = type(cause).__name__
            if name == "ProxyConnectionError":
                return TorUnavailableError(f"tor at {self._socks} went away: is it running?")
            if name == "SOCKS5Error":
                match = re.match(r"0x([0-9a-fA-F]{2})", str(getattr(cause, "msg", "")))
                if match:
                    return _socks_error(int(match.group(1), 16), self.settings.onion, self._socks)
            if isinstance(cause, TimeoutError | requests.Timeout):
                return OnionUnreachableError(
                    f"no answer from {self.settings.onion} through tor within "
                    f"{self.settings.timeout:g} s"
                )
        return TransferInterruptedError(
            f"the connection to {self.settings.onion} broke: {_clean(str(exc), 200)}"
        )


# -- SOCKS and HTTP errors ------------------------------------------------------------

_SOCKS_REASONS = {
    0x01: "tor could not complete the connection (general failure)",
    0x03: "tor could not reach the network",
    0x04: "tor could not reach the onion service",
    0x05: "the onion service is up but nothing answered behind it: is the transfer API "
    "running on the server?",
    0x06: "tor timed out reaching the onion service",
    0xF0: "no descriptor was found: the transfer onion is not published (the server or its "
    "tor is down) or the address is wrong",
    0xF1: "its descriptor is invalid",
    0xF2: "the introduction to the onion service failed",
    0xF3: "the rendezvous with the onion service failed",
    0xF7: "the introduction to the onion service timed out",
}


def _socks_error(code: int, onion: str, socks: str) -> TransferError:
    if code == 0xF4:
        return ClientAuthorizationError(
            f"{onion} requires client authorization and the tor at {socks} has no key for "
            "it: put the line from `securedrop-wm transfer-client add` in a .auth_private "
            "file in tor's ClientOnionAuthDir and reload tor (SOCKS error 0xF4)",
            code,
        )
    if code == 0xF5:
        return ClientAuthorizationError(
            f"{onion} does not accept the client key the tor at {socks} holds for it "
            "(revoked or replaced?): ask an admin for a new one (SOCKS error 0xF5)",
            code,
        )
    if code == 0xF6:
        return TransferConfigError(f"tor says {onion} is not a valid onion address (0xF6)")
    if code in (0x02, 0x07, 0x08):
        return TorUnavailableError(
            f"the SOCKS proxy at {socks} refused the request (SOCKS error {code:#04x}): "
            "is it tor's SocksPort, and does its SocksPolicy allow this machine?"
        )
    reason = _SOCKS_REASONS.get(code, "tor could not connect")
    if code in (0x01, 0x04):
        # Without ExtendedErrors, tor answers onion failures with such general codes.
        reason += "; add ExtendedErrors to tor's SocksPort line to learn why"
    return OnionUnreachableError(f"cannot reach {onion}: {reason} (SOCKS error {code:#04x})", code)


def _http_error(response: requests.Response, onion: str) -> TransferError:
    status = response.status_code
    body = _error_body(response)
    kind = _clean(str(body.get("error", "")), 60) or f"HTTP{status}"
    message = _clean(str(body.get("message", "")), _MAX_MESSAGE) or response.reason or ""
    if status == 401:
        return TokenRejectedError(
            "the transfer API wants a responder token and got none it can use (HTTP 401)"
        )
    if status == 403:
        return TokenRejectedError(
            "the transfer API refused the token (HTTP 403): it is revoked, rotated or "
            "mistyped; an admin makes a new one with `securedrop-wm transfer-token rotate NAME`"
        )
    if status == 409:
        return ReplayRefusedError(
            f"the server refused the reply bundle as a replay; nothing was imported: {message}",
            status,
            kind,
            message,
        )
    if status in (400, 413, 422):
        return BundleRefusedError(
            f"the server refused the reply bundle ({kind}); nothing was imported: {message}",
            status,
            kind,
            message,
        )
    if status >= 500:
        return ServerError(f"the server could not do this (HTTP {status}, {kind}): {message}")
    if status in (404, 405):
        return TransferProtocolError(
            f"there is no transfer API at {onion} (HTTP {status}): is it the transfer "
            "onion, not the source one?"
        )
    return TransferProtocolError(f"unexpected answer from {onion}: HTTP {status}")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests -> urllib3 -> PySocks -> the socket error."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        cause = todo.pop(0)
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        yield cause
        todo += [c for c in (cause.__cause__, cause.__context__) if c is not None]
        reason = getattr(cause, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)
        todo += [a for a in cause.args if isinstance(a, BaseException)]


def _clean(text: str, limit: int) -> str:
    """Server-sent text fit for a terminal: no control characters (escape sequences
    from a compromised server), one line, bounded."""
    text = "".join(c if c.isprintable() else " " for c in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_body(response: requests.Response) -> dict[str, Any]:
    try:
        return _json_body(response)
    except TransferProtocolError:
        return {}


def _json_body(response: requests.Response) -> dict[str, Any]:
    if not response.headers.get("Content-Type", "").startswith("application/json"):
        raise TransferProtocolError(
            "the answer is not JSON: is this the transfer onion, not the source one?"
        )
    try:
        data = next(response.iter_content(_MAX_JSON + 1), b"")
    except requests.RequestException:
        raise TransferInterruptedError("the connection broke while the answer came") from None
    if len(data) > _MAX_JSON:
        raise TransferProtocolError("the transfer API's answer is too long")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise TransferProtocolError("the transfer API's answer is not valid JSON") from None
    if not isinstance(body, dict):
        raise TransferProtocolError("the transfer API's answer is not a JSON object")
    return body


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(body: Mapping[str, Any], name: str) -> int:
    value = body[name]
    if not _is_count(value):
        raise ValueError(name)
    return int(value)


def _header_int(response: requests.Response, name: str) -> int | None:
    value = response.headers.get(name, "")
    return int(value) if re.fullmatch(r"[0-9]{1,15}", value) else None


# -- files ----------------------------------------------------------------------------


@contextlib.contextmanager
def _locked_folder(folder: Path) -> Iterator[None]:
    """Hold ``folder`` for one pull: two pulls writing into it would trip over each
    other's parts."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise OutputError(f"the output folder {folder} does not exist") from None
    except OSError as e:
        raise OutputError(f"cannot open the output folder {folder}: {e.strerror}") from None
    try:
        if not os.access(folder, os.W_OK):
            raise OutputError(f"cannot write into the output folder {folder}")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputError(f"another pull is writing into {folder}") from None
        yield
    finally:
        os.close(fd)


def _check_free_space(folder: Path, length: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < length:
        raise OutputError(
            f"not enough space in {folder} for the export bundle: "
            f"{_mib(length)} needed, {_mib(free)} free"
        )


def _receive(
    response: requests.Response,
    part: Path,
    length: int,
    progress: Progress | None,
) -> str:
    """Stream the body into ``part`` (made here, 0600); return its SHA-256.

    :raises TransferInterruptedError: fewer or more bytes than ``length``.
    """
    digest = hashlib.sha256()
    received = 0
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise OutputError(f"cannot write into {part.parent}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        if progress is not None:
            progress(0, length)
        try:
            for chunk in response.iter_content(_CHUNK):
                received += len(chunk)
                if received > length:
                    raise TransferInterruptedError(
                        f"the server sent more than the {length} bytes it announced"
                    )
                _write(out, chunk, part)
                digest.update(chunk)
                if progress is not None:
                    progress(received, length)
        except requests.RequestException:
            pass  # told below, with what arrived
        if received != length:
            raise TransferInterruptedError(
                f"the download broke after {_mib(received)} of {_mib(length)}; nothing was kept"
            )
        try:
            out.flush()
            os.fsync(out.fileno())
        except OSError as e:
            raise _write_error(e, part) from None
    return digest.hexdigest()


def _write(out: IO[bytes], chunk: bytes, part: Path) -> None:
    try:
        out.write(chunk)
    except OSError as e:
        raise _write_error(e, part) from None


def _write_error(e: OSError, part: Path) -> OutputError:
    if e.errno == errno.ENOSPC:
        return OutputError(f"the disk under {part.parent} is full; nothing was kept")
    return OutputError(f"cannot write into {part.parent}: {e.strerror}")


def _name_final(part: Path, folder: Path, stem: str) -> Path:
    """Give the complete ``part`` its final name, never replacing a file."""
    for n in range(100):
        final = folder / (f"{stem}.tar" if n == 0 else f"{stem}.{n}.tar")
        try:
            os.link(part, final)
        except FileExistsError:
            continue
        except OSError:
            # No hard links here (FAT on a USB stick): the folder lock keeps other
            # pulls away while we look and rename.
            if final.exists():
                continue
            try:
                os.rename(part, final)
            except OSError as e:
                raise _write_error(e, part) from None
        with contextlib.suppress(OSError):  # not every file system syncs folders
            dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return final
    raise OutputError(f"too many {stem} bundles in {folder} already")


def _check_reply_bundle(path: Path) -> int:
    """Refuse here what the server would refuse anyway; return the size to send."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise OutputError(f"{path} is not a file")
        with tarfile.open(path, mode="r:") as tar:
            first = tar.next()
            manifest = tar.extractfile(first) if first and first.name == "manifest.json" else None
            head = json.loads(manifest.read(REPLY_LIMITS.max_manifest_bytes)) if manifest else {}
    except FileNotFoundError:
        raise OutputError(f"{path} does not exist") from None
    except OSError as e:
        raise OutputError(f"cannot read {path}: {e.strerror}") from None
    except (tarfile.TarError, ValueError, UnicodeDecodeError):
        head = {}
    kind = head.get("format") if isinstance(head, dict) else None
    if kind == EXPORT_FORMAT:
        raise _local_refusal(f"{path} is an export bundle from the server, not a reply bundle")
    if kind != REPLIES_FORMAT:
        raise _local_refusal(f"{path} is not a reply bundle (made by the workstation)")
    if size > REPLY_LIMITS.max_total_bytes:
        raise _local_refusal(f"{path} is larger than a reply bundle may be ({_mib(size)})")
    return size


def _local_refusal(message: str) -> BundleRefusedError:
    return BundleRefusedError(f"{message}; nothing was sent", 0, "NotSent", message)


class _ProgressReader:
    """A file to upload that reports how much of it has been read (so: sent)."""

    def __init__(self, f: IO[bytes], size: int, progress: Progress | None) -> None:
        self._f, self._size, self._progress, self._done = f, size, progress, 0
        if progress is not None:
            progress(0, size)

    def __len__(self) -> int:
        return self._size

    def read(self, n: int = -1) -> bytes:
        chunk = self._f.read(n if 0 <= n <= _CHUNK else _CHUNK)
        self._done += len(chunk)
        if self._progress is not None and chunk:
            self._progress(self._done, self._size)
        return chunk


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"
