"""The security headers every response carries: one base list, and what HTML adds.

Each app starts from :data:`BASE_HEADERS` (or :data:`HTML_HEADERS` when it serves pages)
and adds only what differs, saying why next to it. ``tests/headers`` checks every route
of every app against the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response

# What any response of any app carries: never cached, never sniffed, never framed, no
# referrer, not readable by another origin. The CSP is the strictest there is: right for
# an API that answers JSON, which loads nothing and is never a page.
BASE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",  # for HTTP/1.0 caches, which ignore Cache-Control
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}

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
    """Set ``headers`` on every response of ``app`` and drop the ``Server`` header."""
    fixed = dict(headers)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in fixed.items():
            response.headers[name] = value
        response.headers.pop("Server", None)
        return response
