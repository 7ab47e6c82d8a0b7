"""The backup reminder banner: every page a responder sees while logged in says when a
backup is due (:func:`securedrop_wm.workstation.backup.backup_due`)."""

from __future__ import annotations

from flask import Flask, g

from securedrop_wm.workstation.backup import Reminder, backup_due


def init_backup_reminder(app: Flask) -> None:
    """Give every template ``backup_reminder``: a :class:`Reminder`, or None when no
    one is logged in or a backup is recent enough."""
    from . import services

    @app.context_processor
    def backup_reminder() -> dict[str, Reminder | None]:
        if getattr(g, "account", None) is None:
            return {"backup_reminder": None}
        return {"backup_reminder": backup_due(services())}
