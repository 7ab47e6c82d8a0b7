"""Headers, CSRF, session expiry and error pages: the parts every response shares."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, render_template, request, session
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from sdwm_web.errors import init_error_pages
from sdwm_web.headers import HTML_CSP, HTML_HEADERS, init_headers
from securedrop_wm.errors import StoreFullError
from securedrop_wm.sources import MAX_TEXT_CHARS

from .sessions import SessionStore
from .uploads import UPLOAD_ENDPOINT, form_token_spent_here
from .views.refusals import files_too_large_message
from .views.source import (
    had_files,
    report_from_request,
    resumed_form,
)

#: Forms that only show the same form in another language: their token is checked, not
#: spent (nothing is stored; the form shown next carries the same token).
LANGUAGE_SWITCH_ENDPOINT = "source.switch_language"
#: Forms whose text comes back after an expired session (with a way to log in again).
TEXT_CARRIERS = (UPLOAD_ENDPOINT, "source.login", "source.message", LANGUAGE_SWITCH_ENDPOINT)

# What the source UI adds to the shared HTML headers. The drop is a public onion: ask
# crawlers that reach it not to index or follow it. font-src 'self' is what this app has
# always allowed (the stylesheet loads no font today; see static/style.css).
SECURITY_HEADERS = {
    **HTML_HEADERS,
    "Content-Security-Policy": f"{HTML_CSP}; font-src 'self'",
    "X-Robots-Tag": "noindex, nofollow",
}


def init_security(app: Flask, store: SessionStore) -> None:
    """Install security headers, session-expiry handling, CSRF (each form token works
    once, checked in ``store``, shared by the workers) and quiet error pages."""

    @app.before_request
    def _expired_session() -> Any:
        # Runs before CSRF so that a form posted after expiry explains the expiry.
        if getattr(session, "expired", False) and request.endpoint not in (
            "static",
            "main.index",
        ):
            if request.method == "POST" and request.endpoint in TEXT_CARRIERS:
                # The text comes back from this request (the report form, or the login form
                # that carries it), in memory only, with a way to log in and send it; file
                # parts were discarded unread (there is no session to encrypt them for).
                report = report_from_request()
                if any(report.values()):
                    return render_template(
                        "session_expired.html",
                        report=report,
                        had_files=had_files(),
                        resume_form=resumed_form(),
                    ), 401
            return render_template("session_expired.html"), 401
        return None

    CSRFProtect(app)

    @app.before_request
    def _spend_form_token() -> None:
        # Runs after CSRFProtect has checked the token: a valid token works once, even
        # when the cookie that carries it is replayed.
        if request.method != "POST":
            _forget_spent_token()
            return
        if request.endpoint == LANGUAGE_SWITCH_ENDPOINT:
            return  # checked by CSRFProtect; stores nothing, so the form's token lives on
        token = session.pop("csrf_token", None)
        if isinstance(token, str) and form_token_spent_here(token):
            return  # spent before the upload's first file part started (uploads.py)
        if not isinstance(token, str) or not store.spend(token):
            raise CSRFError("form token already used")

    def _forget_spent_token() -> None:
        # A request that spent the token and never answered (an upload cut off after its
        # first file part: the token is spent then, uploads.py) could not send the
        # cookie without it: the browser still holds it, and the form shown next would
        # carry it again, refused for ever. A spent token is dropped: the page gets a
        # fresh one.
        token = session.get("csrf_token")
        if isinstance(token, str) and store.is_spent(token):
            session.pop("csrf_token")

    init_headers(app, SECURITY_HEADERS)

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

    init_error_pages(
        app,
        messages=_http_messages,
        fallback=lambda: _("Please try again later."),
        # No traceback in the page or the log: it could hold a source's data.
        unexpected=lambda: _("Please try again later. Nothing you sent was kept."),
        title=lambda: _("Something went wrong"),
    )


def _http_messages() -> dict[int, str]:
    return {
        400: _("The request could not be understood. Please try again."),
        403: _("You are not allowed to do that."),
        404: _("There is no page at this address."),
        405: _("This page cannot be used that way."),
        413: _too_large_message(),
    }


def _too_large_message() -> str:
    """Which limit a 413 hit: the whole request (the files) or one text field."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        return files_too_large_message()
    return _(
        "A text field is longer than this drop accepts: at most %(characters)s "
        "characters. Shorten it, or send the rest in another report.",
        characters=format_decimal(MAX_TEXT_CHARS),
    )
