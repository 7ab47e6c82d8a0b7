"""Headers, CSRF, login sessions and error pages: what every response shares."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from securedrop_wm.workstation import accounts
from securedrop_wm.workstation.models import Account

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# Pages anyone may see: logging in, first-run setup, the stylesheet.
PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "static"}
F = TypeVar("F", bound=Callable[..., Any])


def init_security(app: Flask) -> None:
    """Install the login check, security headers, CSRF and quiet error pages."""
    from . import services

    @app.before_request
    def _load_account() -> Any:
        g.account = None
        token = session.get("token")
        if isinstance(token, str):
            g.account = accounts.resume_session(services(), token)
            if g.account is None:
                session.clear()
                flash(_("Your session expired. Log in again."), "error")
        if g.account is None and request.endpoint not in PUBLIC_ENDPOINTS:
            if not accounts.has_accounts(services()):
                return redirect(url_for("auth.setup"))
            return redirect(url_for("auth.login"))
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
        message = _("This form has expired or was sent twice. Go back, reload and try again.")
        return render_template("error.html", message=message), 400

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException) -> Any:
        messages = {
            403: _("Only an admin may do that."),
            404: _("There is nothing at this address."),
            413: _("The file is larger than this workstation accepts."),
        }
        code = e.code or 500
        message = messages.get(code, _("The request could not be handled."))
        return render_template("error.html", message=message), code

    @app.errorhandler(Exception)
    def _unexpected(e: Exception) -> Any:
        # No traceback in the page: it could quote a source's message.
        return render_template("error.html", message=_("Something went wrong.")), 500


def current_account() -> Account:
    """The logged-in account (views run only once the login check passed)."""
    account: Account = g.account
    return account


def admin_required(view: F) -> F:
    """Refuse a view to anyone but an admin (403)."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_account().is_admin:
            return render_template("error.html", message=_("Only an admin may do that.")), 403
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
