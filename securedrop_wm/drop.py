"""The drop server's services, built once from settings and passed to whoever needs them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from .crypto import GnuPG
from .db import make_engine, make_sessionmaker, migrate
from .kdf import Peppers
from .logs import silence_libraries
from .models import Reply, Submission
from .settings import Settings
from .signing_home import open_signer
from .store import Store


def utc_today() -> dt.date:
    """Today's date in UTC: the only precision at which the server records time."""
    return dt.datetime.now(dt.UTC).date()


@dataclass
class Drop:
    """Everything the core needs to serve sources: no globals, one per app or command."""

    settings: Settings
    sessions: sessionmaker[Session]
    store: Store
    gpg: GnuPG
    today: Callable[[], dt.date] = utc_today
    _signer: GnuPG | None = field(default=None, repr=False)

    def signing_gpg(self) -> GnuPG:
        """The GnuPG home of the server's signing key, opened on first use (only the
        transfer API and the key commands sign; the source UI never opens it)."""
        if self._signer is None:
            self._signer = open_signer(self.settings, self.gpg)
        return self._signer

    @property
    def peppers(self) -> Peppers:
        """The server-side secrets of key derivation."""
        s = self.settings
        return Peppers(salt=s.kdf_salt, lookup=s.lookup_pepper, key=s.key_pepper)

    def close(self) -> None:
        """Release the database and stop this home's gpg-agent."""
        bind = self.sessions.kw.get("bind")
        if bind is not None:
            bind.dispose()
        self.gpg.close()
        if self._signer is not None:
            self._signer.close()


def open_drop(settings: Settings, *, run_migrations: bool = True) -> Drop:
    """Build the services from ``settings``, migrating the database first."""
    silence_libraries()
    if run_migrations:
        migrate(settings.database_url)
    engine = make_engine(settings.database_url)
    return Drop(
        settings=settings,
        sessions=make_sessionmaker(engine),
        store=Store(settings.store_dir),
        gpg=GnuPG(settings.gpg_home, settings.gpg_binary),
    )


def clean_orphans(drop: Drop) -> list[str]:
    """Remove store files that no row refers to. Run at start-up, before any worker."""
    with drop.sessions() as db:
        names = set(db.scalars(select(Submission.store_name)))
        names.update(db.scalars(select(Reply.store_name)))
    return drop.store.clean_orphans(names)
