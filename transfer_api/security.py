"""Token check, headers and JSON errors: what every response of the transfer API shares."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from sdwm_web.headers import BASE_HEADERS, init_headers
from sdwm_web.services import DROP, service
from securedrop_wm.drop import Drop
from securedrop_wm.status_counts import STATUS_ONLY_ERROR
from securedrop_wm.transfer import TokenInfo, check_token

# The base headers as they are: their CSP loads nothing, which is right for JSON.
HEADERS = BASE_HEADERS
_MAX_HEADER = 256
# The one endpoint a status-only token may reach.
STATUS_ENDPOINT = "transfer.status"


# An absolute path in a message (a bundle's temp file, the data dir): where the server
# keeps things is none of the transfer machine's business.
_PATH = re.compile(r"(?<![\w.~])/[^\s'\",;:]*")


def error(status: int, kind: str, message: str) -> tuple[Response, int]:
    """A JSON error body: a machine-readable ``error`` and a ``message`` a person reads,
    with any path on the server left out."""
    return jsonify(error=kind, message=_PATH.sub("…", message)), status


def token_desk() -> str:
    """The desk of the request's token (checked before any view runs)."""
    found: TokenInfo = g.token
    assert found.desk is not None
    return found.desk


def init_security(app: Flask) -> None:
    """Require a responder token on every request (a status-only one for ``GET /status``
    alone); set headers; answer errors in JSON."""

    @app.before_request
    def _require_token() -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip() or len(header) > _MAX_HEADER:
            response, status = error(
                401, "Unauthorized", "send a responder token: Authorization: Bearer <token>"
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="securedrop-wm transfer"'
            return response, status
        found = check_token(service(current_app, DROP, Drop), token.strip())
        if found is None:
            return error(403, "Forbidden", "this token is not valid (revoked or mistyped?)")
        if found.desk is None:
            return error(403, "Forbidden", "this token's desk is no longer configured")
        # Refused before any work: no body is read, no bundle written.
        if found.status_only and request.endpoint != STATUS_ENDPOINT:
            return error(
                403, STATUS_ONLY_ERROR, "this token may only read the counts (the status endpoint)"
            )
        g.token = found
        return None

    init_headers(app, HEADERS)

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException) -> Any:
        code = e.code or 500
        if code == 413:
            return error(413, "TooLarge", "the body is larger than a reply bundle may be")
        return error(code, e.name.replace(" ", ""), e.description or e.name)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Any:
        # No traceback in the answer or a log: it could describe the server's data.
        return error(500, "ServerError", "the server could not do this; nothing was changed")
