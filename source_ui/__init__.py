"""The source-facing web app, served as a Tor onion service. Works with JavaScript off."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from sdwm_web.services import DROP, SETTINGS
from securedrop_wm.drop import Drop, open_drop
from securedrop_wm.settings import Settings

from .i18n import init_i18n
from .security import init_security
from .sessions import EncryptedSessionInterface
from .uploads import UploadRequest, init_uploads


def create_app(
    settings: Settings, drop: Drop | None = None, clock: Callable[[], float] = time.time
) -> Flask:
    """Build the source UI for ``settings``; a test may pass its own ``drop`` services
    and a ``clock`` (seconds) to see sessions expire."""
    app = Flask(__name__)
    app.request_class = UploadRequest
    app.config.update(
        SECRET_KEY=settings.session_key.hex(),
        MAX_CONTENT_LENGTH=settings.max_report_bytes + 1024 * 1024,
        MAX_FORM_MEMORY_SIZE=settings.max_field_bytes,
        MAX_FORM_PARTS=200,
        SESSION_COOKIE_NAME="sdwm",
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        # Tor Browser treats an http .onion as a secure context but a local demo over
        # plain http would lose the cookie: Secure is set where TLS is used (a setting).
        SESSION_COOKIE_SECURE=False,
        WTF_CSRF_TIME_LIMIT=settings.session_minutes * 60,
        WTF_CSRF_SSL_STRICT=False,
        TRAP_HTTP_EXCEPTIONS=False,
        PROPAGATE_EXCEPTIONS=False,
    )
    app.extensions[DROP] = drop if drop is not None else open_drop(settings)
    app.extensions[SETTINGS] = settings
    app.session_interface = EncryptedSessionInterface(
        settings.session_key, settings.session_minutes * 60, clock
    )
    init_security(app)
    init_i18n(
        app,
        Path(__file__).with_name("translations"),
        settings.languages,
        settings.default_language,
    )
    init_uploads(app)

    from .views import main, source

    app.register_blueprint(main.bp)
    app.register_blueprint(source.bp)
    return app
