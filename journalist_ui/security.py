"""Headers, CSRF, login sessions and error pages: what every response shares."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec

from flask import Flask, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from sdwm_web.errors import init_error_pages
from sdwm_web.headers import HTML_HEADERS, init_headers
from securedrop_wm.workstation import accounts
from securedrop_wm.workstation.models import Account

# The shared HTML headers as they are: the workstation UI needs nothing more.
SECURITY_HEADERS = HTML_HEADERS
# Pages anyone may see: logging in, first-run setup, the stylesheet.
PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "static"}
P = ParamSpec("P")


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

    init_headers(app, SECURITY_HEADERS)

    @app.errorhandler(CSRFError)
    def _csrf_error(e: CSRFError) -> Any:
        message = _("This form has expired or was sent twice. Go back, reload and try again.")
        return render_template("error.html", message=message), 400

    init_error_pages(
        app,
        messages=lambda: {
            403: _("Only an admin may do that."),
            404: _("There is nothing at this address."),
            413: _("The file is larger than this workstation accepts."),
        },
        fallback=lambda: _("The request could not be handled."),
        # No traceback in the page: it could quote a source's message.
        unexpected=lambda: _("Something went wrong."),
    )


def current_account() -> Account:
    """The logged-in account (views run only once the login check passed)."""
    account: Account = g.account
    return account


def admin_required(view: Callable[P, Any]) -> Callable[P, Any]:
    """Refuse a view to anyone but an admin (403)."""

    @wraps(view)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Any:
        if not current_account().is_admin:
            return render_template("error.html", message=_("Only an admin may do that.")), 403
        return view(*args, **kwargs)

    return wrapped
