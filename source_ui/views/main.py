"""Pages anyone can read: landing, safety guidance, language choice, goodbye."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from werkzeug.exceptions import HTTPException

from sdwm_web.services import SETTINGS, service
from securedrop_wm.settings import Settings

from ..i18n import remember_language

bp = Blueprint("main", __name__)


@bp.app_context_processor
def _response_promise() -> dict[str, Any]:
    """What every source page may promise about a reply: an alert to the on-call
    responder only where the deployment has one (``_response.html``)."""
    settings = service(current_app, SETTINGS, Settings)
    return {
        "alerts_configured": settings.alerts_configured,
        "usual_response_hours": settings.usual_response_hours,
    }


@bp.get("/")
def index() -> Any:
    """What this drop is, who reads reports, how to stay safe."""
    return render_template("index.html")


@bp.get("/safety")
def safety() -> Any:
    """How to report safely, and what to do in immediate danger."""
    return render_template("safety.html")


@bp.get("/logged-out")
def logged_out() -> Any:
    """The goodbye page a logout leads to (source.logout)."""
    return render_template("logged_out.html")


@bp.get("/language/<lang>")
def choose_language(lang: str) -> Any:
    """Remember a language in the language cookie (and in the session, if there is one
    already), then go back to the page it was chosen on, or to the start if that page
    cannot be shown again by a link (the answer to a form) or is not ours.

    A link from another site may lead here: the language cookie is SameSite=Lax, so the
    page this redirects to is in that language although the session cookie (Strict) is
    not sent on it. No session is started for a language alone: after a logout, the
    browser holds the language cookie and nothing else.
    """
    response = redirect(_back_to(request.args.get("next", "")))
    if lang in current_app.config["SDWM_LANGUAGES"]:
        if session:
            session["lang"] = lang
        remember_language(response, lang)
    return response


def _back_to(target: str) -> str:
    """Where a language link leads: ``target`` if it is a page of ours, else the start."""
    return target if _is_our_page(target) else url_for("main.index")


def _is_our_page(path: str) -> bool:
    """Whether ``path`` is a page of this app that a plain link can open."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path or "?" in path:
        return False
    adapter = current_app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(path, method="GET")
    except HTTPException:  # not found, not a GET page, or a redirect (RequestRedirect)
        return False
    return endpoint not in ("main.choose_language", "static")
