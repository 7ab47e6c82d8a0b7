"""The responder-facing web app. Runs on the air-gapped workstation, on loopback only.

No JavaScript, nothing loaded from elsewhere; a thin layer over
:mod:`securedrop_wm.workstation`, whose services it keeps on ``app.extensions``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask, current_app
from flask_babel import Babel, get_locale

from securedrop_wm.translations import html_lang, negotiate_locale, text_direction
from securedrop_wm.workstation.services import Workstation, open_workstation
from securedrop_wm.workstation.settings import WorkstationSettings
from source_ui.i18n import PoDomain

from .labels import label
from .security import init_security

EXTENSION = "securedrop_wm.workstation"
TRANSLATIONS = Path(__file__).with_name("translations")


def create_app(settings: WorkstationSettings, services: Workstation | None = None) -> Flask:
    """Build the journalist UI for ``settings``; a test may pass its own ``services``."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.session_key.hex(),
        # Bundles come in through the browser from removable media.
        MAX_CONTENT_LENGTH=settings.max_bundle_bytes + 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=1024 * 1024,
        SESSION_COOKIE_NAME="sdwm_ws",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=settings.session_minutes),
        WTF_CSRF_TIME_LIMIT=settings.session_minutes * 60,
        WTF_CSRF_SSL_STRICT=False,
        TRAP_HTTP_EXCEPTIONS=False,
        PROPAGATE_EXCEPTIONS=False,
    )
    app.extensions[EXTENSION] = services if services is not None else open_workstation(settings)
    babel = Babel(app, locale_selector=_select_locale)
    babel.domain_instance = PoDomain(TRANSLATIONS)

    @app.context_processor
    def _language() -> dict[str, str]:
        locale = str(get_locale())
        return {"html_lang": html_lang(locale), "text_dir": text_direction(locale)}

    app.add_template_global(label)
    init_security(app)

    from .views import admin, auth, cases, stats, transfer

    for bp in (auth.bp, cases.bp, transfer.bp, admin.bp, stats.bp):
        app.register_blueprint(bp)
    return app


def _select_locale() -> str:
    from flask import request

    found = TRANSLATIONS.iterdir() if TRANSLATIONS.is_dir() else iter(())
    available = ["en", *(p.name for p in found if p.is_dir())]
    return negotiate_locale(request.accept_languages, available) or "en"


def services() -> Workstation:
    """The workstation services of the current app."""
    ws: Workstation = current_app.extensions[EXTENSION]
    return ws
