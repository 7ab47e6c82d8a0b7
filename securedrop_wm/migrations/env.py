"""Alembic environment of the drop server's database."""

from securedrop_wm.db import run_migrations_online
from securedrop_wm.models import Base

run_migrations_online(Base.metadata)
