"""Logging policy shared by the drop server and the workstation."""

from __future__ import annotations

import logging


def silence_libraries() -> None:
    """Keep libraries from logging anything that could describe a request or its data."""
    for name in ("gnupg", "werkzeug", "alembic", "sqlalchemy", "stem"):
        logging.getLogger(name).setLevel(logging.ERROR)
