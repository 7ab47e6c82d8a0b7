"""Responder accounts: Argon2id passwords, TOTP with replay protection, throttled logins,
and server-side login sessions that expire after inactivity."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from . import audit
from .errors import AccountError, LoginError, LoginThrottledError, PermissionDeniedError
from .models import Account, Case, LoginSession
from .services import Workstation

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
TOTP_WINDOW = 1  # one 30-second step either side: clocks on an air-gapped machine drift
_HASHER = PasswordHasher()  # Argon2id; its defaults are RFC 9106's second recommendation
# Verified against when the username is unknown, so that a login takes as long either way.
_DUMMY_HASH = _HASHER.hash(secrets.token_hex(16))


@dataclass(frozen=True)
class NewAccount:
    """An account just created, with the TOTP secret to show once."""

    id: int
    username: str
    totp_secret: str
    provisioning_uri: str


def check_password(password: str) -> None:
    """:raises AccountError: when a password is too short or too long."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"a password may have at most {MAX_PASSWORD_CHARS} characters")


def create_account(
    ws: Workstation, db: Session, actor: str, username: str, password: str, *, admin: bool
) -> NewAccount:
    """Add an account in the caller's transaction; return its new TOTP secret.

    :raises AccountError: the name is malformed or taken, or the password too weak.
    """
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise AccountError(
            "a username has 2 to 32 characters: lower-case letters, digits, '.', '_', '-'"
        )
    check_password(password)
    if db.scalar(select(Account.id).where(Account.username == username)) is not None:
        raise AccountError(f"the username {username!r} is taken")
    secret = pyotp.random_base32()
    account = Account(
        username=username,
        password_hash=_HASHER.hash(password),
        totp_secret=secret,
        is_admin=admin,
        created_at=ws.now(),
    )
    db.add(account)
    db.flush()
    role = "admin" if admin else "responder"
    audit.record(db, ws.now(), actor, "account.create", detail=f"{username} ({role})")
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name="securedrop-wm")
    return NewAccount(account.id, username, secret, uri)


def add_account(
    ws: Workstation, actor: str, username: str, password: str, *, admin: bool
) -> NewAccount:
    """Add an account in a transaction of its own (see :func:`create_account`)."""
    with ws.write() as db:
        return create_account(ws, db, actor, username, password, admin=admin)


def deactivate_account(ws: Workstation, actor: Account, account_id: int) -> str:
    """Remove an account in a transaction of its own (see :func:`remove_account`)."""
    with ws.write() as db:
        return remove_account(ws, db, actor, account_id)


def remove_account(ws: Workstation, db: Session, actor: Account, account_id: int) -> str:
    """Remove an account: it can no longer log in, its sessions end, its cases are
    unassigned. The row stays so the audit log keeps meaning. Returns the username.

    :raises PermissionDeniedError: the actor is not an admin.
    :raises AccountError: no such account, oneself, or the last admin.
    """
    require_admin(actor)
    account = db.get(Account, account_id)
    if account is None or not account.active:
        raise AccountError("there is no such account")
    if account.id == actor.id:
        raise AccountError("you cannot remove your own account")
    if account.is_admin and count_admins(db) <= 1:
        raise AccountError("the last admin cannot be removed")
    account.removed_at = ws.now()
    account.totp_secret = ""
    account.password_hash = ""
    db.execute(delete(LoginSession).where(LoginSession.account_id == account.id))
    db.execute(update(Case).where(Case.assignee_id == account.id).values(assignee_id=None))
    audit.record(db, ws.now(), actor.username, "account.remove", detail=account.username)
    return account.username


def require_admin(actor: Account) -> None:
    """:raises PermissionDeniedError: unless ``actor`` is an admin."""
    if not actor.is_admin:
        raise PermissionDeniedError("only an admin may do this")


def count_admins(db: Session) -> int:
    """How many active admin accounts exist."""
    query = select(func.count(Account.id)).where(Account.is_admin, Account.removed_at.is_(None))
    return int(db.scalar(query) or 0)


def list_accounts(ws: Workstation) -> Sequence[Account]:
    """Active accounts by name."""
    query = select(Account).where(Account.removed_at.is_(None)).order_by(Account.username)
    with ws.sessions() as db:
        return db.scalars(query).all()


def has_accounts(ws: Workstation) -> bool:
    """Whether any account exists (first-run setup is over once one does)."""
    with ws.sessions() as db:
        return db.scalar(select(Account.id).limit(1)) is not None


def authenticate(ws: Workstation, username: str, password: str, code: str) -> Account:
    """Check password and TOTP code; record the outcome in the audit log.

    After ``max_login_failures`` failures in a row the account is locked for
    ``lockout_minutes``, whatever is typed. A TOTP code is accepted once: a code of a
    step not newer than the last one used is refused.

    :raises LoginThrottledError: the account is locked for now.
    :raises LoginError: anything else is wrong (which factor is not said).
    """
    username = username.strip().lower()
    settings = ws.settings
    with ws.write() as db:
        now = ws.now()
        account = db.scalar(
            select(Account).where(Account.username == username, Account.removed_at.is_(None))
        )
        if account is None:
            _verify_password(_DUMMY_HASH, password)
            audit.record(db, now, "-", "login.unknown_user")
            failure: LoginError = LoginError("wrong username, password or code")
        elif account.locked_until is not None and account.locked_until > now:
            audit.record(db, now, account.username, "login.throttled")
            failure = _throttled(account.locked_until, now)
        else:
            step = (
                _matching_step(account, code, now)
                if _verify_password(account.password_hash, password)
                else None
            )
            if step is not None:
                account.last_totp_step = step
                account.failed_logins = 0
                account.locked_until = None
                account.last_login_at = now
                audit.record(db, now, account.username, "login")
                return account
            account.failed_logins += 1
            detail = f"failure {account.failed_logins}"
            failure = LoginError("wrong username, password or code")
            if account.failed_logins >= settings.max_login_failures:
                account.failed_logins = 0
                account.locked_until = now + dt.timedelta(minutes=settings.lockout_minutes)
                detail += f"; locked for {settings.lockout_minutes} min"
                failure = _throttled(account.locked_until, now)
            audit.record(db, now, account.username, "login.failed", detail=detail)
    raise failure


def _throttled(until: dt.datetime, now: dt.datetime) -> LoginThrottledError:
    minutes = max(1, int((until - now).total_seconds() + 59) // 60)
    return LoginThrottledError(
        f"too many failed logins: this account is locked for {minutes} more minute(s)"
    )


def _verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _matching_step(account: Account, code: str, now: dt.datetime) -> int | None:
    """The TOTP step ``code`` belongs to, if valid, unused and within the window."""
    code = code.strip().replace(" ", "")
    if not account.totp_secret or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(account.totp_secret)
    current = totp.timecode(now)
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if account.last_totp_step is not None and step <= account.last_totp_step:
                return None
            return step
    return None


def change_password(ws: Workstation, account_id: int, current: str, new: str) -> None:
    """Change one's own password.

    :raises LoginError: the current password is wrong.
    :raises AccountError: the new one is too weak.
    """
    check_password(new)
    with ws.write() as db:
        account = db.get(Account, account_id)
        if account is None or not _verify_password(account.password_hash, current):
            raise LoginError("the current password is wrong")
        account.password_hash = _HASHER.hash(new)
        audit.record(db, ws.now(), account.username, "account.password")


# -- login sessions ---------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(ws: Workstation, account_id: int) -> str:
    """Open a login session; return the token for the browser's cookie."""
    token = secrets.token_urlsafe(32)
    with ws.write() as db:
        now = ws.now()
        db.add(
            LoginSession(
                token_hash=_token_hash(token),
                account_id=account_id,
                created_at=now,
                last_seen_at=now,
            )
        )
    return token


def resume_session(ws: Workstation, token: str) -> Account | None:
    """The account of a live session, refreshing its last use; ``None`` if expired or gone.

    An expired session is deleted.
    """
    lifetime = dt.timedelta(minutes=ws.settings.session_minutes)
    with ws.write() as db:
        found = db.scalar(select(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
        if found is None:
            return None
        now = ws.now()
        if now - found.last_seen_at > lifetime or not found.account.active:
            db.delete(found)
            return None
        found.last_seen_at = now
        account = found.account
    return account


def end_session(ws: Workstation, token: str) -> None:
    """Log a session out (its token stops working at once)."""
    with ws.write() as db:
        found = db.scalar(select(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
        if found is not None:
            audit.record(db, ws.now(), found.account.username, "logout")
            db.delete(found)
