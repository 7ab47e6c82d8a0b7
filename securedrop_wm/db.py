"""Engine, sessions and migrations. SQLite by default; any SQLAlchemy URL by setting."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker

from .errors import StoreFullError

MIGRATIONS = Path(__file__).with_name("migrations")
# Constraint names Alembic can rely on, for the server's and the workstation's models.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def make_engine(url: str) -> Engine:
    """Create an engine; for SQLite, enforce foreign keys and use WAL with a busy wait."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

        @event.listens_for(engine, "handle_error")
        def _disk_full(context: ExceptionContext) -> BaseException | None:
            # A full disk is the store's error whichever file met it first.
            error = context.original_exception
            if getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                return StoreFullError("the disk is full")
            return None

        return engine
    return create_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A session factory that keeps loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str, migrations: Path = MIGRATIONS) -> Config:
    """An Alembic configuration for ``url`` using the packaged (or given) migrations."""
    config = Config()
    config.set_main_option("script_location", str(migrations))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str, migrations: Path = MIGRATIONS) -> None:
    """Bring the database at ``url`` to the newest schema."""
    command.upgrade(alembic_config(url, migrations), "head")


def run_migrations_online(target_metadata: MetaData) -> None:
    """The body of every ``env.py`` here: migrate the configured URL to ``target_metadata``.

    On SQLite, foreign keys are off while migrating: a batch migration recreates a table
    (copy, DROP, rename) and, with them on, the DROP would cascade and delete every child
    row. The pragma only takes effect outside a transaction, hence the commit; integrity
    is checked before the transaction ends.
    """
    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("alembic config has no sqlalchemy.url")
    engine = make_engine(url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=True,
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"migration left rows with dangling foreign keys: {broken}")
    engine.dispose()
