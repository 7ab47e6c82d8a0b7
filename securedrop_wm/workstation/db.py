"""The case database's migrations: its own Alembic folder, the core's engine helpers."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from .. import db as core_db

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str) -> Config:
    """An Alembic configuration for the case database at ``url``."""
    return core_db.alembic_config(url, MIGRATIONS)


def migrate(url: str) -> None:
    """Bring the case database at ``url`` to the newest schema."""
    core_db.migrate(url, MIGRATIONS)
