"""Responder accounts: Argon2id passwords, TOTP with replay protection, throttled logins,
and server-side login sessions that expire after inactivity.

An account an admin creates or resets gets a one-time password, shown once to the admin,
and no TOTP secret: its first login takes that password alone and leads to enrolment
(:func:`finish_enrolment`), which sets a password of its own and an authenticator
confirmed by a code from it. A new TOTP secret never replaces the old one before a code
from it was typed (:func:`confirm_totp`).
"""

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
from .settings import WorkstationSettings

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,31}$")
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
TOTP_WINDOW = 1  # one 30-second step either side: clocks on an air-gapped machine drift
ISSUER = "securedrop-wm"
# A one-time password: 5 groups of 4 characters of base32, 100 bits from ``secrets``.
ONE_TIME_GROUPS, ONE_TIME_GROUP_CHARS = 5, 4
_ONE_TIME_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
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


@dataclass(frozen=True)
class OneTimePassword:
    """The password an admin hands over, once: it works for one login, to enrol."""

    username: str
    password: str


# What the account flows raise; the web layer shows each in the user's language.
OWN_RESET = "you cannot reset your own account here: change your password on your account page"
NO_SUCH_ACCOUNT = "there is no such account"


def provisioning_uri(username: str, secret: str) -> str:
    """The ``otpauth://`` URI of ``secret`` for an authenticator app."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def one_time_password() -> str:
    """A random one-time password, easy to read out and type (``xxxx-xxxx-...``)."""
    groups = (
        "".join(secrets.choice(_ONE_TIME_ALPHABET) for _ in range(ONE_TIME_GROUP_CHARS))
        for _ in range(ONE_TIME_GROUPS)
    )
    return "-".join(groups)


def check_password(password: str) -> None:
    """:raises AccountError: when a password is too short or too long."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise AccountError(f"a password may have at most {MAX_PASSWORD_CHARS} characters")


def create_account(
    ws: Workstation,
    db: Session,
    actor: str,
    username: str,
    password: str,
    *,
    admin: bool,
    enrol_later: bool = False,
) -> NewAccount:
    """Add an account in the caller's transaction; return its new TOTP secret.

    :param enrol_later: an account an admin makes for someone else: its password must be
        changed and its authenticator set up at its first login (no TOTP secret yet; the
        returned one is empty).
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
    secret = "" if enrol_later else pyotp.random_base32()
    account = Account(
        username=username,
        password_hash=_HASHER.hash(password),
        totp_secret=secret,
        is_admin=admin,
        created_at=ws.now(),
        must_change_password=enrol_later,
        totp_pending="",
    )
    db.add(account)
    db.flush()
    role = "admin" if admin else "responder"
    detail = f"{username} ({role})" + (", one-time password" if enrol_later else "")
    audit.record(db, ws.now(), actor, "account.create", detail=detail)
    uri = provisioning_uri(username, secret) if secret else ""
    return NewAccount(account.id, username, secret, uri)


def add_account(
    ws: Workstation, actor: str, username: str, password: str, *, admin: bool
) -> NewAccount:
    """Add an account in a transaction of its own (see :func:`create_account`)."""
    with ws.write() as db:
        return create_account(ws, db, actor, username, password, admin=admin)


def invite_account(
    ws: Workstation, actor: Account, username: str, *, admin: bool
) -> OneTimePassword:
    """Create an account with a one-time password for the admin to hand over; its owner
    chooses a password and sets up an authenticator at the first login.

    :raises PermissionDeniedError: the actor is not an admin.
    :raises AccountError: the name is malformed or taken.
    """
    require_admin(actor)
    password = one_time_password()
    with ws.write() as db:
        made = create_account(
            ws, db, actor.username, username, password, admin=admin, enrol_later=True
        )
    return OneTimePassword(made.username, password)


def reset_account(ws: Workstation, actor: Account, account_id: int) -> OneTimePassword:
    """An admin resets another account's password and authenticator: a one-time password
    replaces the password, the TOTP secret is gone, every session of the account ends.
    Its owner changes the password and enrols an authenticator again at the next login.

    :raises PermissionDeniedError: the actor is not an admin.
    :raises AccountError: no such account, or the admin's own (change it on the account
        page instead: this path skips the current password).
    """
    require_admin(actor)
    password = one_time_password()
    with ws.write() as db:
        account = db.get(Account, account_id)
        if account is None or not account.active:
            raise AccountError(NO_SUCH_ACCOUNT)
        if account.id == actor.id:
            raise AccountError(OWN_RESET)
        account.password_hash = _HASHER.hash(password)
        account.must_change_password = True
        account.totp_secret = ""
        account.totp_pending = ""
        account.last_totp_step = None
        account.failed_logins = 0
        account.locked_until = None
        ended = end_other_sessions(db, account.id, None)
        audit.record(
            db,
            ws.now(),
            actor.username,
            "account.reset",
            detail=f"{account.username}: password and authenticator reset, "
            f"{ended} session(s) ended",
        )
        return OneTimePassword(account.username, password)


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
        raise AccountError(NO_SUCH_ACCOUNT)
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


# The one answer to every refused login, whatever the reason: a wrong factor, an unknown
# username, an account that must wait.
REFUSED = "wrong username, password or code"
# The first wait once an account has failed max_login_failures times in a row; it doubles
# with each further failure, up to lockout_minutes.
BACKOFF_START = dt.timedelta(seconds=30)


def authenticate(ws: Workstation, username: str, password: str, code: str) -> Account:
    """Check password and TOTP code; record the outcome in the audit log.

    Every refusal looks the same from outside: the same message, and the same work, one
    Argon2id verification (an unknown username is checked against a dummy hash, an
    account that must wait against its own), so neither the answer nor its time tells
    whether a username exists or is held back.

    Throttling is a back-off, not a lock: after ``max_login_failures`` failures in a row,
    an account's next login is checked only after a wait of 30 s, doubling with every
    further failure up to ``lockout_minutes`` (5 by default). Attempts during the wait are
    refused unchecked and do not lengthen it. Guessing is held to about one try per
    ``lockout_minutes`` (against a password *and* a current TOTP code), while a burst of
    wrong tries by someone at the workstation keeps a responder waiting
    ``lockout_minutes`` at most after it ends; the right password and code then pass.
    A TOTP code is accepted once: a code of a step not newer than the last one used is
    refused. An account waiting for enrolment (no TOTP secret: an admin created or reset
    it) logs in with its one-time password alone, into a session that can only enrol
    (:func:`needs_enrolment`).

    :raises LoginThrottledError: the account must wait (with the same message).
    :raises LoginError: anything else is wrong (which factor is not said).
    """
    username = username.strip().lower()
    settings = ws.settings
    with ws.write() as db:
        now = ws.now()
        account = db.scalar(
            select(Account).where(Account.username == username, Account.removed_at.is_(None))
        )
        # Exactly one verification on every path, before anything is decided.
        password_ok = _verify_password(
            account.password_hash if account is not None else _DUMMY_HASH, password
        )
        if account is None:
            audit.record(db, now, "-", "login.unknown_user")
            failure = LoginError(REFUSED)
        elif account.locked_until is not None and account.locked_until > now:
            audit.record(db, now, account.username, "login.throttled")
            failure = LoginThrottledError(REFUSED)
        else:
            # An account waiting for its enrolment has no TOTP secret yet: its one-time
            # password alone opens a session that can do nothing but enrol.
            enrolling = not account.totp_secret
            step = _matching_step(account, code, now) if password_ok and not enrolling else None
            if password_ok and (enrolling or step is not None):
                if step is not None:
                    account.last_totp_step = step
                account.failed_logins = 0
                account.locked_until = None
                account.last_login_at = now
                audit.record(
                    db, now, account.username, "login", detail="to enrol" if enrolling else ""
                )
                return account
            account.failed_logins += 1
            detail = f"failure {account.failed_logins}"
            wait = backoff(account.failed_logins, settings)
            if wait:
                account.locked_until = now + wait
                detail += f"; next try checked after {int(wait.total_seconds())} s"
            audit.record(db, now, account.username, "login.failed", detail=detail)
            failure = LoginError(REFUSED)
    raise failure


def backoff(failures: int, settings: WorkstationSettings) -> dt.timedelta:
    """How long an account waits after ``failures`` failures in a row: nothing before
    ``max_login_failures`` of them, then 30 s doubling, at most ``lockout_minutes``."""
    over = failures - settings.max_login_failures
    if over < 0:
        return dt.timedelta()
    cap = dt.timedelta(minutes=settings.lockout_minutes)
    wait: dt.timedelta = BACKOFF_START * 2 ** min(over, 16)
    return min(wait, cap)


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password``."""
    return _HASHER.hash(password)


def password_matches(account: Account, password: str) -> bool:
    """Whether ``password`` is the account's."""
    return _verify_password(account.password_hash, password)


def _verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _matching_step(account: Account, code: str, now: dt.datetime) -> int | None:
    """The TOTP step ``code`` belongs to, if valid, unused and within the window."""
    step = totp_step(account.totp_secret, code, now)
    if step is None or (account.last_totp_step is not None and step <= account.last_totp_step):
        return None
    return step


def totp_step(secret: str, code: str, now: dt.datetime) -> int | None:
    """The step within the window whose code of ``secret`` is ``code``, if any."""
    code = code.strip().replace(" ", "")
    if not secret or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def change_password(
    ws: Workstation, account_id: int, current: str, new: str, *, keep_token: str | None = None
) -> int:
    """Change one's own password, and end every other login session of the account: who
    knew the old password (and had a code) is logged out too.

    :param keep_token: the session the change is made from, which stays open.
    :returns: how many sessions were ended.
    :raises LoginError: the current password is wrong.
    :raises AccountError: the new one is too weak.
    """
    check_password(new)
    with ws.write() as db:
        account = db.get(Account, account_id)
        if account is None or not _verify_password(account.password_hash, current):
            raise LoginError("the current password is wrong")
        account.password_hash = _HASHER.hash(new)
        account.must_change_password = False
        ended = end_other_sessions(db, account.id, keep_token)
        audit.record(
            db, ws.now(), account.username, "account.password", detail=f"{ended} session(s) ended"
        )
    return ended


def end_other_sessions(db: Session, account_id: int, keep_token: str | None) -> int:
    """Delete the account's sessions but ``keep_token``'s; return how many."""
    others = select(LoginSession).where(LoginSession.account_id == account_id)
    if keep_token is not None:
        others = others.where(LoginSession.token_hash != _token_hash(keep_token))
    ended = 0
    for found in db.scalars(others).all():
        db.delete(found)
        ended += 1
    return ended


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


def expired_session_account(ws: Workstation, token: str) -> int | None:
    """The account id of the session ``token`` if it exists and has expired (it is then
    deleted); ``None`` for a live session, an unknown token or a removed account.

    What a request that arrives just after its session expired may still say: whose
    browser sent it (see the reply drafts, journalist_ui/views/auth.py).
    """
    lifetime = dt.timedelta(minutes=ws.settings.session_minutes)
    with ws.write() as db:
        found = db.scalar(select(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
        if found is None or ws.now() - found.last_seen_at <= lifetime:
            return None
        account_id = found.account_id if found.account.active else None
        db.delete(found)
    return account_id


def end_session(ws: Workstation, token: str) -> None:
    """Log a session out (its token stops working at once)."""
    with ws.write() as db:
        found = db.scalar(select(LoginSession).where(LoginSession.token_hash == _token_hash(token)))
        if found is not None:
            audit.record(db, ws.now(), found.account.username, "logout")
            db.delete(found)
