"""Accounts: Argon2id passwords, TOTP (window of one step, no replay), throttling,
server-side sessions that expire, admins who add and remove responders."""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
import time

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
from tests.workstation.fixtures import ADMIN, ADMIN_PASSWORD, Station


def _admin(station: Station) -> Account:
    with station.ws.sessions() as db:
        found = db.scalar(select(Account).where(Account.username == ADMIN))
        assert found is not None
        return found


def test_password_is_stored_as_argon2id(station: Station) -> None:
    stored = _admin(station).password_hash
    assert stored.startswith("$argon2id$") and ADMIN_PASSWORD not in stored


def test_login_needs_password_and_current_code(station: Station) -> None:
    ws = station.ws
    with pytest.raises(LoginError, match="wrong username, password or code"):
        accounts.authenticate(ws, ADMIN, "not the password!", station.code())
    station.clock.advance(seconds=30)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, station.code(step_offset=-2))
    assert accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, station.code()).username == ADMIN


def test_a_code_one_step_off_is_accepted_but_never_twice(station: Station) -> None:
    ws = station.ws
    code = station.code(step_offset=-1)
    accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, code)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, code)  # replayed
    # An older step than the last used one is refused too, even if within the window.
    station.clock.advance(seconds=30)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, station.code(step_offset=-2))


def test_failed_logins_make_the_account_wait_but_never_longer_than_the_cap(
    station: Station,
) -> None:
    ws = station.ws
    cap = dt.timedelta(minutes=ws.settings.lockout_minutes)
    for _ in range(ws.settings.max_login_failures - 1):
        with pytest.raises(LoginError):
            accounts.authenticate(ws, ADMIN, "wrong password!!", station.code())
        assert _admin(station).locked_until is None  # the first failures cost nothing
    with pytest.raises(LoginError, match=accounts.REFUSED):
        accounts.authenticate(ws, ADMIN, "wrong password!!", station.code())
    # Now the account waits 30 s: even the right password and code are refused, alike.
    station.clock.advance(seconds=1)
    with pytest.raises(LoginThrottledError, match=accounts.REFUSED):
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, station.code())
    # Someone at the workstation keeps guessing, as fast as the back-off lets them:
    waits = []
    for _ in range(8):
        until = _admin(station).locked_until
        assert until is not None
        station.clock.offset += until - station.clock() + dt.timedelta(seconds=1)
        with pytest.raises(LoginError):
            accounts.authenticate(ws, ADMIN, "wrong password!!", station.code())
        until = _admin(station).locked_until
        assert until is not None
        waits.append(until - station.clock())
    # the wait doubles, but never exceeds the cap,
    assert waits[0] > dt.timedelta(seconds=30) and max(waits) <= cap
    assert waits[-1] > cap - dt.timedelta(seconds=2)
    # and tries during a wait, even many, do not lengthen it.
    until = _admin(station).locked_until
    for _ in range(5):
        with pytest.raises(LoginThrottledError):
            accounts.authenticate(ws, ADMIN, "wrong password!!", station.code())
    assert _admin(station).locked_until == until
    # Once the burst ends, the responder waits at most the cap and gets in.
    station.clock.advance(seconds=cap.total_seconds() + 1)
    assert accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, station.code()).username == ADMIN
    assert _admin(station).failed_logins == 0 and _admin(station).locked_until is None


def test_refusals_take_the_same_time_and_say_the_same_for_any_reason(station: Station) -> None:
    # Given an account that must wait and one that may try (no back-off in this test)
    ws = station.ws
    ws.settings = dataclasses.replace(ws.settings, max_login_failures=100)
    accounts.add_account(ws, ADMIN, "waiting", "a password of hers!", admin=False)
    with ws.write() as db:
        waiting = db.scalar(select(Account).where(Account.username == "waiting"))
        assert waiting is not None
        waiting.locked_until = ws.now() + dt.timedelta(days=1)
    cases = {
        "unknown user": ("nobody-here", "some password!!"),
        "wrong password": (ADMIN, "not the password!"),
        "waiting account": ("waiting", "a password of hers!"),
    }
    # When each is tried several times, interleaved (the machine's load hits all alike)
    times: dict[str, list[float]] = {name: [] for name in cases}
    messages = set()
    for _ in range(7):
        for name, (username, password) in cases.items():
            started = time.perf_counter()
            with pytest.raises(LoginError) as refused:
                accounts.authenticate(ws, username, password, station.code())
            times[name].append(time.perf_counter() - started)
            messages.add(str(refused.value))
    # Then they say the same, and none is much faster or slower than a wrong password
    # (before the fix: 4 ms for a locked account against 124 ms)
    assert messages == {accounts.REFUSED}
    medians = {name: statistics.median(t) for name, t in times.items()}
    reference = medians["wrong password"]
    for median in medians.values():
        assert reference / 2 <= median <= reference * 2, medians


def test_a_password_change_ends_the_other_sessions_but_not_this_one(station: Station) -> None:
    ws = station.ws
    admin = _admin(station)
    here = accounts.start_session(ws, admin.id)
    elsewhere = accounts.start_session(ws, admin.id)
    new_password = "a brand new password"
    ended = accounts.change_password(ws, admin.id, ADMIN_PASSWORD, new_password, keep_token=here)
    assert ended == 1
    assert accounts.resume_session(ws, elsewhere) is None
    assert accounts.resume_session(ws, here) is not None
    station.clock.advance(seconds=30)
    assert accounts.authenticate(ws, ADMIN, new_password, station.code()).username == ADMIN


def test_sessions_expire_after_inactivity_and_end_at_logout(station: Station) -> None:
    ws = station.ws
    admin = _admin(station)
    token = accounts.start_session(ws, admin.id)
    station.clock.advance(minutes=ws.settings.session_minutes - 1)
    assert accounts.resume_session(ws, token) is not None  # activity extends it
    station.clock.advance(minutes=ws.settings.session_minutes + 1)
    assert accounts.resume_session(ws, token) is None
    token = accounts.start_session(ws, admin.id)
    accounts.end_session(ws, token)
    assert accounts.resume_session(ws, token) is None


def test_admin_adds_and_removes_a_responder(station: Station) -> None:
    ws = station.ws
    admin = _admin(station)
    with ws.write() as db:
        made = accounts.create_account(ws, db, ADMIN, "Rosa", "a long enough secret", admin=False)
    assert made.username == "rosa"
    station.clock.advance(seconds=30)
    rosa = accounts.authenticate(ws, "rosa", "a long enough secret", station.code(made.totp_secret))
    token = accounts.start_session(ws, rosa.id)
    with ws.write() as db, pytest.raises(PermissionDeniedError):
        accounts.remove_account(ws, db, rosa, admin.id)
    with ws.write() as db:
        accounts.remove_account(ws, db, admin, rosa.id)
    assert accounts.resume_session(ws, token) is None
    station.clock.advance(seconds=30)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, "rosa", "a long enough secret", station.code(made.totp_secret))


@pytest.mark.parametrize(
    ("username", "password", "message"),
    [
        ("x", "a long enough secret", "2 to 32 characters"),
        ("bad name!", "a long enough secret", "2 to 32 characters"),
        (ADMIN, "a long enough secret", "taken"),
        ("rosa", "short", "at least 12"),
    ],
)
def test_bad_accounts_are_refused(
    station: Station, username: str, password: str, message: str
) -> None:
    with station.ws.write() as db, pytest.raises(AccountError, match=message):
        accounts.create_account(station.ws, db, ADMIN, username, password, admin=False)


def test_the_last_admin_cannot_remove_themselves(station: Station) -> None:
    admin = _admin(station)
    with station.ws.write() as db, pytest.raises(AccountError, match="your own account"):
        accounts.remove_account(station.ws, db, admin, admin.id)
