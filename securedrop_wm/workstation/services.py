"""The workstation's services, built once from settings and passed to whoever needs them.

Where a transaction opens: in the core. A core function a caller reaches with a
:class:`Workstation` opens its own session (:meth:`Workstation.write` to change
anything, ``ws.sessions()`` to read) and commits it before it returns; the web views
(``journalist_ui``) never call ``begin()``/``commit()`` or hold a session themselves.
A function that takes a ``db: Session`` instead works inside its caller's transaction:
it is a building block for other core functions (and tests), not an entry point.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from ..crypto import GnuPG
from ..db import make_engine, make_sessionmaker
from ..logs import silence_libraries
from .db import migrate
from .errors import NotConfiguredError
from .sandbox import Sandbox
from .settings import WorkstationSettings


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass
class Workstation:
    """Everything the workstation core needs: no globals, one per app or command.

    Every change goes through :meth:`write`, which serializes writers in this process:
    the audit log's hash chain needs each event to see the one before it. The web app
    runs in one process (see ``securedrop-wm workstation serve``).
    """

    settings: WorkstationSettings
    sessions: sessionmaker[Session]
    gpg: GnuPG
    now: Callable[[], dt.datetime] = utc_now
    # Where attachments are read (viewing.py); its self-test runs once, on first use.
    sandbox: Sandbox = field(default_factory=Sandbox)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in a transaction, committed on success, holding the write lock."""
        with self._lock, self.sessions.begin() as db:
            yield db

    def team_fingerprint(self) -> str:
        """The team key's fingerprint.

        :raises NotConfiguredError: before first-run setup.
        """
        if self.settings.team_fingerprint is None:
            raise NotConfiguredError("the team key is not set up yet (first-run setup)")
        return self.settings.team_fingerprint

    def signing_fingerprint(self) -> str:
        """The workstation signing key's fingerprint.

        :raises NotConfiguredError: before first-run setup.
        """
        if self.settings.signing_fingerprint is None:
            raise NotConfiguredError("the workstation signing key is not set up yet")
        return self.settings.signing_fingerprint

    def server_fingerprint(self) -> str:
        """The pinned fingerprint of the drop server's signing key.

        :raises NotConfiguredError: before first-run setup.
        """
        if self.settings.server_fingerprint is None:
            raise NotConfiguredError("the server's signing key is not pinned yet")
        return self.settings.server_fingerprint

    def close(self) -> None:
        """Release the database and stop this home's gpg-agent."""
        bind = self.sessions.kw.get("bind")
        if bind is not None:
            bind.dispose()
        self.gpg.close()


def open_workstation(settings: WorkstationSettings, *, run_migrations: bool = True) -> Workstation:
    """Build the services from ``settings``, migrating the case database first."""
    silence_libraries()
    for folder in (settings.data_dir, settings.files_dir, settings.outbox_dir):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if run_migrations:
        migrate(settings.database_url)
    return Workstation(
        settings=settings,
        sessions=make_sessionmaker(make_engine(settings.database_url)),
        gpg=GnuPG(settings.gpg_home, settings.gpg_binary, human_passphrases=True),
    )
