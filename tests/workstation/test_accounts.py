"""Accounts: Argon2id passwords, TOTP (window of one step, no replay), throttling,
server-side sessions that expire, admins who add and remove responders."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from securedrop_wm.workstation import accounts
from securedrop_wm.workstation.errors import (
    AccountError,
    LoginError,
    LoginThrottledError,
    PermissionDeniedError,
)
from securedrop_wm.workstation.models import Account
from tests.workstation.fixtures import ADMIN, ADMIN_PASSWORD, Desk


def _admin(desk: Desk) -> Account:
    with desk.ws.sessions() as db:
        found = db.scalar(select(Account).where(Account.username == ADMIN))
        assert found is not None
        return found


def test_password_is_stored_as_argon2id(desk: Desk) -> None:
    stored = _admin(desk).password_hash
    assert stored.startswith("$argon2id$") and ADMIN_PASSWORD not in stored


def test_login_needs_password_and_current_code(desk: Desk) -> None:
    ws = desk.ws
    with pytest.raises(LoginError, match="wrong username, password or code"):
        accounts.authenticate(ws, ADMIN, "not the password!", desk.code())
    desk.clock.advance(seconds=30)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, desk.code(step_offset=-2))
    assert accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, desk.code()).username == ADMIN


def test_a_code_one_step_off_is_accepted_but_never_twice(desk: Desk) -> None:
    ws = desk.ws
    code = desk.code(step_offset=-1)
    accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, code)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, code)  # replayed
    # An older step than the last used one is refused too, even if within the window.
    desk.clock.advance(seconds=30)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, desk.code(step_offset=-2))


def test_failed_logins_lock_the_account_for_a_while(desk: Desk) -> None:
    ws = desk.ws
    for _ in range(ws.settings.max_login_failures - 1):
        with pytest.raises(LoginError):
            accounts.authenticate(ws, ADMIN, "wrong password!!", desk.code())
    with pytest.raises(LoginThrottledError, match="locked for 15 more minute"):
        accounts.authenticate(ws, ADMIN, "wrong password!!", desk.code())
    # Even the right password and code are refused while locked.
    desk.clock.advance(seconds=30)
    with pytest.raises(LoginThrottledError):
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, desk.code())
    desk.clock.advance(minutes=ws.settings.lockout_minutes)
    assert accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, desk.code()).username == ADMIN


def test_sessions_expire_after_inactivity_and_end_at_logout(desk: Desk) -> None:
    ws = desk.ws
    admin = _admin(desk)
    token = accounts.start_session(ws, admin.id)
    desk.clock.advance(minutes=ws.settings.session_minutes - 1)
    assert accounts.resume_session(ws, token) is not None  # activity extends it
    desk.clock.advance(minutes=ws.settings.session_minutes + 1)
    assert accounts.resume_session(ws, token) is None
    token = accounts.start_session(ws, admin.id)
    accounts.end_session(ws, token)
    assert accounts.resume_session(ws, token) is None


def test_admin_adds_and_removes_a_responder(desk: Desk) -> None:
    ws = desk.ws
    admin = _admin(desk)
    with ws.write() as db:
        made = accounts.create_account(ws, db, ADMIN, "Rosa", "a long enough secret", admin=False)
    assert made.username == "rosa"
    desk.clock.advance(seconds=30)
    rosa = accounts.authenticate(ws, "rosa", "a long enough secret", desk.code(made.totp_secret))
    token = accounts.start_session(ws, rosa.id)
    with ws.write() as db, pytest.raises(PermissionDeniedError):
        accounts.remove_account(ws, db, rosa, admin.id)
    with ws.write() as db:
        accounts.remove_account(ws, db, admin, rosa.id)
    assert accounts.resume_session(ws, token) is None
    desk.clock.advance(seconds=30)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, "rosa", "a long enough secret", desk.code(made.totp_secret))


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("x", "a long enough secret", "2 to 32 characters"),
        ("bad name!", "a long enough secret", "2 to 32 characters"),
        (ADMIN, "a long enough secret", "taken"),
        ("rosa", "short", "at least 12"),
    ],
)
def test_bad_accounts_are_refused(desk: Desk, username: str, password: str, message: str) -> None:
    with desk.ws.write() as db, pytest.raises(AccountError, match=message):
        accounts.create_account(desk.ws, db, ADMIN, username, password, admin=False)


def test_the_last_admin_cannot_remove_themselves(desk: Desk) -> None:
    admin = _admin(desk)
    with desk.ws.write() as db, pytest.raises(AccountError, match="your own account"):
        accounts.remove_account(desk.ws, db, admin, admin.id)
