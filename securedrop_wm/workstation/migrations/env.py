"""Alembic environment of the case database."""

from securedrop_wm.db import run_migrations_online
from securedrop_wm.workstation.models import Base

run_migrations_online(Base.metadata)
