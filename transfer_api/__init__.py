"""The transfer API: a small JSON app on its own client-authorized onion, never public.

The networked transfer machine uses it to learn how many reports wait, per urgency
level, pull the next export bundle and push a reply bundle (docs/bundles.md). Every
request needs a responder token (a status-only one reaches the counts alone); nothing
about a request is logged.
"""

from __future__ import annotations

from flask import Flask

from sdwm_web.services import DROP
from securedrop_wm.bundles import REPLY_LIMITS
from securedrop_wm.drop import Drop, open_drop
from securedrop_wm.settings import Settings

from .security import init_security


def create_app(settings: Settings, drop: Drop | None = None) -> Flask:
    """Build the transfer API for ``settings``; a test may pass its own ``drop`` services."""
    app = Flask(__name__)
    app.config.update(
        # A reply bundle is the only body this API accepts.
        MAX_CONTENT_LENGTH=REPLY_LIMITS.max_total_bytes,
        TRAP_HTTP_EXCEPTIONS=False,
        PROPAGATE_EXCEPTIONS=False,
    )
    if drop is None:
        drop = open_drop(settings)
        # Its own GnuPG home, opened now: a data dir made before the split has its
        # signing key moved there at the first start, not at the first export.
        drop.signing_gpg()
    app.extensions[DROP] = drop
    init_security(app)

    from .views import bp

    app.register_blueprint(bp)
    return app
