"""Encrypted, expiring session cookies, revocable on the server.

The session holds a logged-in source's derived lookup id and key passphrase, so it is
encrypted (AES-256-GCM under the server's session key), not merely signed, and it
expires after a period of inactivity enforced on the server, whatever the cookie says.

A logged-in session also names a random server-side record (:class:`SessionStore`): a
logout, an idle expiry or the absolute lifetime deletes the record, and a cookie whose
record is gone is an expired session, in every worker process at once. The store also
remembers spent form tokens, so a form works once even when its cookie is replayed. It
lives in one small SQLite file on a tmpfs: memory only, never the data disk, where exact
times would undo the day-coarsening of everything else. The record holds a random id and
times, nothing that names a source (the source's secrets stay in the encrypted cookie).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SessionInterface

from securedrop_wm.errors import SettingsError

#: At most this many live sessions are kept. Logging in costs an Argon2id derivation, so
#: reaching it takes hours of flooding; then the least recently seen session is ended.
MAX_SESSIONS = 100_000
#: At most this many spent form tokens are remembered (each expires with the form).
MAX_SPENT_TOKENS = 200_000
#: The cookie field naming the server-side record.
RECORD = "_srv"
_MEMORY_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
# Longer than the longest idle and absolute lifetimes the settings allow (24 h each).
_STALE_SECONDS = 25 * 3600
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sessions "
    "(id TEXT PRIMARY KEY, created REAL NOT NULL, seen REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sessions_seen ON sessions (seen)",
    "CREATE TABLE IF NOT EXISTS spent (digest BLOB PRIMARY KEY, at REAL)",
    "CREATE INDEX IF NOT EXISTS spent_at ON spent (at)",
)

Clock = Callable[[], float]


def filesystem_type(path: Path) -> str:
    """The type of the file system ``path`` is on, from /proc/self/mounts ("" if unknown).

    (mounts, not mountinfo: it is what the AppArmor profile of the app lets it read.)
    """
    target = os.path.realpath(path)
    best, fstype = "", ""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount = fields[1].replace("\\040", " ")
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):
            best, fstype = mount, fields[2]
    return fstype


def session_store_path(session_dir: Path | None, data_dir: Path) -> Path:
    """Where this drop keeps its sessions: a private folder on a tmpfs.

    :raises SettingsError: if the folder is not on a tmpfs, is inside the data dir, or is
        not the service user's own private folder.
    """
    # A shared tmpfs on purpose: the store goes into a private 0700 folder, checked below.
    base = session_dir if session_dir is not None else Path("/dev/shm")  # noqa: S108
    if filesystem_type(base) not in _MEMORY_FILESYSTEMS:
        raise SettingsError(
            f"setting 'session_dir' ({base}) must be on a tmpfs (memory), not a disk: "
            "sessions record exact times"
        )
    data = os.path.realpath(data_dir)
    where = os.path.realpath(base)
    if where == data or where.startswith(data.rstrip("/") + "/"):
        raise SettingsError("setting 'session_dir' must not be the data dir or inside it")
    folder = base / f"securedrop-wm-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise SettingsError(f"{folder} must be a folder of this user's only (mode 0700)")
    name = hashlib.sha256(os.fsencode(data)).hexdigest()[:24]
    _sweep(folder)
    return folder / f"sessions-{name}.sqlite"


def _sweep(folder: Path) -> None:
    """Remove the stores nobody has written to for longer than any session can live
    (drops since removed, test runs): they hold no live session."""
    limit = time.time() - _STALE_SECONDS
    for path in folder.glob("sessions-*.sqlite*"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < limit:
                path.unlink()


class SessionStore:
    """Live source sessions and spent form tokens, shared by every worker process.

    Each call opens its own SQLite connection: safe across threads and forks. A record
    ends at logout, after ``idle`` seconds unseen, or ``absolute`` seconds after login.
    """

    def __init__(
        self,
        path: Path,
        idle: float,
        absolute: float,
        token_lifetime: float,
        clock: Clock = time.time,
        max_sessions: int = MAX_SESSIONS,
        max_tokens: int = MAX_SPENT_TOKENS,
    ) -> None:
        self.path = path
        self._idle, self._absolute, self._token_lifetime = idle, absolute, token_lifetime
        self._clock = clock
        self._max_sessions, self._max_tokens = max_sessions, max_tokens
        with self._transaction():
            pass  # the file and its tables exist from now on

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # The file may have been swept after a day without writes (see _sweep): every
        # transaction makes sure it exists, private, with its tables.
        # Never open and close the file itself here: closing any descriptor of a file
        # drops every POSIX lock this process holds on it, including the locks another
        # thread's SQLite connection holds, and under load that corrupted the store
        # ("disk I/O error", "database disk image is malformed"). SQLite creates the
        # file; the folder is private (0700) and the mode is narrowed after.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            os.chmod(self.path, 0o600)
            db.execute("BEGIN IMMEDIATE")
            for statement in _SCHEMA:
                db.execute(statement)
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        finally:
            db.close()

    def create(self) -> str:
        """Start a session; its random id goes into the (encrypted) cookie.

        At the cap, expired sessions go first, then the least recently seen ones.
        """
        now = self._clock()
        record = secrets.token_urlsafe(32)
        with self._transaction() as db:
            self._drop_expired(db, now)
            _make_room(db, "sessions", "id", "seen", self._max_sessions)
            db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (record, now, now))
        return record

    def touch(self, record: str) -> bool:
        """Whether ``record`` is a live session; if so it counts as seen now."""
        now = self._clock()
        with self._transaction() as db:
            row = db.execute("SELECT created, seen FROM sessions WHERE id = ?", (record,))
            found = row.fetchone()
            if found is None:
                return False
            created, seen = found
            if now - seen > self._idle or now - created > self._absolute:
                db.execute("DELETE FROM sessions WHERE id = ?", (record,))
                return False
            db.execute("UPDATE sessions SET seen = ? WHERE id = ?", (now, record))
            return True

    def end(self, record: str) -> None:
        """End a session at once (logout, or a new login in the same browser)."""
        with self._transaction() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (record,))

    def is_spent(self, token: str) -> bool:
        """Whether a form token was used already (and is still remembered as used)."""
        digest = hashlib.sha256(token.encode()).digest()
        with self._transaction() as db:
            found = db.execute("SELECT 1 FROM spent WHERE digest = ?", (digest,)).fetchone()
        return found is not None

    def spend(self, token: str) -> bool:
        """Record a form token as used; False if it was used before.

        At the cap, expired records go first, then the oldest: such a token could then be
        used once more, within its own time limit.
        """
        now = self._clock()
        digest = hashlib.sha256(token.encode()).digest()
        with self._transaction() as db:
            db.execute("DELETE FROM spent WHERE at < ?", (now - self._token_lifetime,))
            if db.execute("SELECT 1 FROM spent WHERE digest = ?", (digest,)).fetchone():
                return False
            _make_room(db, "spent", "digest", "at", self._max_tokens)
            db.execute("INSERT INTO spent VALUES (?, ?)", (digest, now))
            return True

    def counts(self) -> tuple[int, int]:
        """How many sessions and spent tokens are kept (for tests and monitoring)."""
        with self._transaction() as db:
            (sessions,) = db.execute("SELECT count(*) FROM sessions").fetchone()
            (spent,) = db.execute("SELECT count(*) FROM spent").fetchone()
        return sessions, spent

    def _drop_expired(self, db: sqlite3.Connection, now: float) -> None:
        db.execute(
            "DELETE FROM sessions WHERE seen < ? OR created < ?",
            (now - self._idle, now - self._absolute),
        )


def _make_room(db: sqlite3.Connection, table: str, key: str, age: str, cap: int) -> None:
    """Delete the oldest rows of ``table`` (by ``age``) so that one more fits under ``cap``.

    The names are this module's constants, never input.
    """
    (count,) = db.execute(f"SELECT count(*) FROM {table}").fetchone()  # noqa: S608
    if count >= cap:
        db.execute(
            f"DELETE FROM {table} WHERE {key} IN "  # noqa: S608
            f"(SELECT {key} FROM {table} ORDER BY {age} LIMIT ?)",
            (count - cap + 1,),
        )


class SourceSession(SecureCookieSession):
    """A session dict that also says whether the cookie it came from had expired, and
    which live server record it came with."""

    expired: bool = False
    record: str | None = None


class EncryptedSessionInterface(SessionInterface):
    """Sessions in an AES-GCM encrypted cookie with server-side expiry and revocation."""

    session_class = SourceSession

    def __init__(
        self, key: bytes, lifetime_seconds: int, store: SessionStore, clock: Clock = time.time
    ) -> None:
        self._aead = AESGCM(hashlib.sha256(b"securedrop-wm session\0" + key).digest())
        self._lifetime = lifetime_seconds
        self._clock = clock
        self.store = store

    def open_session(self, app: Flask, request: Request) -> SourceSession:
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie:
            return SourceSession()
        try:
            raw = base64.urlsafe_b64decode(cookie.encode("ascii") + b"==")
            payload = json.loads(self._aead.decrypt(raw[:12], raw[12:], b"session"))
            seen = float(payload.pop("_seen"))
        except (ValueError, InvalidTag, KeyError, TypeError, UnicodeError):
            return SourceSession()
        record = payload.get(RECORD)
        logged_in = "sid" in payload
        if (
            self._clock() - seen > self._lifetime
            or (logged_in and not isinstance(record, str))
            or (isinstance(record, str) and not self.store.touch(record))
        ):
            # Everything goes but the chosen language, so the expiry page is readable.
            session = SourceSession({"lang": payload["lang"]} if "lang" in payload else {})
            session.expired = True
            return session
        session = SourceSession(payload)
        session.record = record
        return session

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        name = self.get_cookie_name(app)
        path = self.get_cookie_path(app)
        opened = getattr(session, "record", None)
        if opened is not None and session.get(RECORD) != opened:
            self.store.end(opened)  # logged out, or logged in afresh
        if "sid" in session and RECORD not in session:
            session[RECORD] = self.store.create()
        if not session:
            if session.modified or session.expired:
                response.delete_cookie(name, path=path, httponly=True, samesite="Strict")
            return
        payload = dict(session, _seen=self._clock())
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(payload).encode(), b"session")
        value = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        response.set_cookie(
            name,
            value,
            path=path,
            httponly=True,
            samesite="Strict",
            secure=self.get_cookie_secure(app),
        )
        response.vary.add("Cookie")
