"""Headers, CSRF, session expiry and error pages: the parts every response shares."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, render_template, request, session
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from securedrop_wm.errors import StoreFullError

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "X-Robots-Tag": "noindex, nofollow",
}


def init_security(app: Flask) -> None:
    """Install security headers, session-expiry handling, CSRF and quiet error pages."""

    @app.before_request
    def _expired_session() -> Any:
        # Runs before CSRF so that a form posted after expiry explains the expiry.
        if getattr(session, "expired", False) and request.endpoint not in (
            "static",
            "main.index",
        ):
            return render_template("session_expired.html"), 401
        return None

    CSRFProtect(app)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        response.headers.pop("Server", None)
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(e: CSRFError) -> Any:
        return (
            render_template(
                "error.html",
                title=_("This form has expired"),
                message=_(
                    "For your safety each form can be sent only once and only for a "
                    "limited time. Go back, reload the page and try again."
                ),
            ),
            400,
        )

    @app.errorhandler(StoreFullError)
    def _store_full(e: StoreFullError) -> Any:
        # A full disk can stop a file mid-upload, while CSRF reads the form, before a view.
        session.pop("csrf_token", None)
        message = _(
            "The drop cannot store your report right now. Nothing was kept; "
            "please try again in a few hours."
        )
        return render_template(
            "error.html", title=_("Please try again later"), message=message
        ), 503

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException) -> Any:
        code = e.code or 500
        messages = {
            400: _("The request could not be understood. Please try again."),
            403: _("You are not allowed to do that."),
            404: _("There is no page at this address."),
            405: _("This page cannot be used that way."),
            413: _(
                "What you sent is larger than this drop accepts. Send fewer or smaller "
                "files, or split your report in several parts."
            ),
        }
        return (
            render_template(
                "error.html",
                title=_("Something went wrong"),
                message=messages.get(code, _("Please try again later.")),
            ),
            code,
        )

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Any:
        # No traceback in the page or the log: it could hold a source's data.
        return (
            render_template(
                "error.html",
                title=_("Something went wrong"),
                message=_("Please try again later. Nothing you sent was kept."),
            ),
            500,
        )
