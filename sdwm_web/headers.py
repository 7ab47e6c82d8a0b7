"""The security headers every response carries: one base list, and what HTML adds.

Each app starts from :data:`BASE_HEADERS` (defined in ``securedrop_wm.server``, since
gunicorn's own error responses carry it too) or :data:`HTML_HEADERS` when it serves pages,
and adds only what differs, saying why next to it. ``tests/headers`` checks every route
of every app against the same rules.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from pathlib import Path

from flask import Flask, Response, abort, request
from werkzeug.security import safe_join

from securedrop_wm.server import BASE_HEADERS

__all__ = ["BASE_HEADERS", "HTML_CSP", "HTML_HEADERS", "init_headers"]

# Pages with forms: their own stylesheet and images only, no script, forms posted back
# to the same origin; no window opened by them keeps a handle on them; no device access.
HTML_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HTML_HEADERS: Mapping[str, str] = {
    **BASE_HEADERS,
    "Content-Security-Policy": HTML_CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


def init_headers(app: Flask, headers: Mapping[str, str]) -> None:
    """Set ``headers`` on every response of ``app`` and drop the ``Server`` header; serve
    its static files with validators that say nothing of when they were installed."""
    fixed = dict(headers)
    if app.has_static_folder:
        _serve_static_by_content(app)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in fixed.items():
            response.headers[name] = value
        response.headers.pop("Server", None)
        return response


def _serve_static_by_content(app: Flask) -> None:
    """Replace Flask's ``static`` view with one whose ``ETag`` is a hash of the file and
    which sends no ``Last-Modified``: Flask's carry the file's modification time to the
    microsecond, that is when this server was installed or last updated."""
    folder = Path(str(app.static_folder))

    def static(filename: str) -> Response:
        path = safe_join(str(folder), filename)
        if path is None or not Path(path).is_file():
            abort(404)
        data = Path(path).read_bytes()
        mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        response = Response(data, mimetype=mimetype)
        response.set_etag(hashlib.sha256(data).hexdigest())
        response.make_conditional(request)
        return response

    app.view_functions["static"] = static
