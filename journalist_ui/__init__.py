"""The responder-facing web app. Runs on the air-gapped workstation, on loopback only.

No JavaScript, nothing loaded from elsewhere; a thin layer over
:mod:`securedrop_wm.workstation`, whose services it keeps on ``app.extensions``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from flask import Flask, current_app, request

from sdwm_web.i18n import catalog_locales, init_babel
from sdwm_web.services import WORKSTATION, service
from securedrop_wm.translations import negotiate_locale
from securedrop_wm.workstation.services import Workstation, open_workstation
from securedrop_wm.workstation.settings import WorkstationSettings

from .backup_reminder import init_backup_reminder
from .labels import label
from .security import init_security

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
    app.extensions[WORKSTATION] = services if services is not None else open_workstation(settings)
    init_babel(app, TRANSLATIONS, _select_locale)
    app.add_template_global(label)
    init_security(app)
    init_backup_reminder(app)

    from .views import admin, auth, cases, evidence, stats, transfer

    for bp in (auth.bp, cases.bp, transfer.bp, admin.bp, stats.bp, evidence.bp):
        app.register_blueprint(bp)
    return app


def _select_locale() -> str:
    available = catalog_locales(TRANSLATIONS)
    return negotiate_locale(request.accept_languages, available) or "en"


def services() -> Workstation:
    """The workstation services of the current app."""
    return service(current_app, WORKSTATION, Workstation)
