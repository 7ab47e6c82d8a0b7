"""The transfer client's errors, and how a SOCKS or HTTP failure is told in words."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import SecureDropError, SettingsError
from ..status_counts import STATUS_ONLY_ERROR

if TYPE_CHECKING:
    import requests

_MAX_JSON = 64 * 1024
_MAX_MESSAGE = 500

# -- errors ---------------------------------------------------------------------------


class TransferError(SecureDropError):
    """Base class of the transfer client's errors; ``retryable`` says whether trying
    again later may help."""

    retryable = False


class TransferConfigError(TransferError, SettingsError):
    """A setting is missing, unknown or invalid: the onion or SOCKS address, the token
    file, the output folder, the config file."""


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
    if status == 403 and kind == STATUS_ONLY_ERROR:
        return TokenRejectedError(
            "this token may only read the counts (a status-only token, for "
            "`securedrop-wm transfer watch`): pull and push need a full one; an admin makes "
            "it with `securedrop-wm transfer-token create NAME`"
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
