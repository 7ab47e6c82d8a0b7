"""The source-facing web app, served as a Tor onion service. Works with JavaScript off."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from sdwm_web.services import DROP, SETTINGS
from securedrop_wm.drop import Drop, open_drop
from securedrop_wm.settings import Settings
from securedrop_wm.sources import MAX_TEXT_CHARS

from .i18n import init_i18n
from .lanes import LANES, Lanes
from .security import init_security
from .sessions import EncryptedSessionInterface, SessionStore, session_store_path
from .uploads import UploadRequest, init_uploads

#: The largest text field: the longest description in 4-byte UTF-8, line breaks as CR LF.
TEXT_FIELD_BYTES = 4 * MAX_TEXT_CHARS + 64 * 1024


def create_app(
    settings: Settings, drop: Drop | None = None, clock: Callable[[], float] = time.time
) -> Flask:
    """Build the source UI for ``settings``; a test may pass its own ``drop`` services
    and a ``clock`` (seconds) to see sessions expire.

    :raises SettingsError: if ``session_dir`` is not a private folder on a tmpfs.
    """
    app = Flask(__name__)
    app.request_class = UploadRequest
    app.config.update(
        SECRET_KEY=settings.session_key.hex(),
        MAX_CONTENT_LENGTH=settings.max_report_bytes + 1024 * 1024,
        # 100,000 characters are promised whatever the script: 4 bytes each in UTF-8.
        MAX_FORM_MEMORY_SIZE=max(settings.max_field_bytes, TEXT_FIELD_BYTES),
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
    idle = settings.session_minutes * 60
    store = SessionStore(
        session_store_path(settings.session_dir, settings.data_dir),
        idle=idle,
        absolute=settings.session_max_minutes * 60,
        token_lifetime=idle,
        clock=clock,
    )
    app.session_interface = EncryptedSessionInterface(settings.session_key, idle, store, clock)
    init_security(app, store)
    init_i18n(
        app,
        Path(__file__).with_name("translations"),
        settings.languages,
        settings.default_language,
    )
    init_uploads(app, store)
    app.extensions[LANES] = Lanes.from_settings(settings)

    from .views import conversation, main, source

    _ = conversation  # its views are routes of the source blueprint
    app.register_blueprint(main.bp)
    app.register_blueprint(source.bp)
    return app
