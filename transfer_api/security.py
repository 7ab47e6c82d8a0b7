"""Token check, headers and JSON errors: what every response of the transfer API shares."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from securedrop_wm.transfer import check_token

HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_MAX_HEADER = 256


def error(status: int, kind: str, message: str) -> tuple[Response, int]:
    """A JSON error body: a machine-readable ``error`` and a ``message`` a person reads."""
    return jsonify(error=kind, message=message), status


def init_security(app: Flask) -> None:
    """Require a responder token on every request; set headers; answer errors in JSON."""

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
        from . import get_drop

        if check_token(get_drop(current_app), token.strip()) is None:
            return error(403, "Forbidden", "this token is not valid (revoked or mistyped?)")
        return None

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in HEADERS.items():
            response.headers[name] = value
        response.headers.pop("Server", None)
        return response

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
