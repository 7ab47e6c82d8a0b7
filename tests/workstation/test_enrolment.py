"""Accounts people can use: a one-time password from an admin leads to enrolment (a
password of one's own, an authenticator confirmed by a code), an admin resets another
account (never their own this way), a new authenticator replaces the old one only once
confirmed. Real Argon2id, real SQLite, codes from pyotp."""

from __future__ import annotations

import pyotp
import pytest
from sqlalchemy import select

from securedrop_wm.workstation import accounts, audit, enrolment
from securedrop_wm.workstation.errors import AccountError, LoginError, PermissionDeniedError
from securedrop_wm.workstation.models import Account, AuditEvent
from tests.workstation.fixtures import ADMIN, ADMIN_PASSWORD, Station

NEW_PASSWORD = "rosa's very own password"


def _account(station: Station, username: str) -> Account:
    with station.ws.sessions() as db:
        found = db.scalar(select(Account).where(Account.username == username))
        assert found is not None
        return found


def _code(station: Station, secret: str) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(station.clock()))


def test_an_invited_responder_enrols_before_anything_else(station: Station) -> None:
    ws = station.ws
    # Given an account an admin created: a one-time password, no authenticator yet
    made = accounts.invite_account(ws, _account(station, ADMIN), "rosa", admin=False)
    assert len(made.password) == 24 and made.password.count("-") == 4
    rosa = _account(station, "rosa")
    assert rosa.must_change_password and rosa.totp_secret == ""
    # When she logs in with it and no code, she gets a session that must enrol
    rosa = accounts.authenticate(ws, "rosa", made.password, "")
    assert enrolment.needs_enrolment(rosa)
    here = accounts.start_session(ws, rosa.id)
    totp = enrolment.start_totp(ws, rosa.id)
    assert totp.provisioning_uri.startswith("otpauth://totp/")
    assert f"secret={totp.secret}" in totp.provisioning_uri and "<svg" in totp.qr_svg
    # the same secret again on a reload, not a new one she would have to scan again
    assert enrolment.start_totp(ws, rosa.id).secret == totp.secret
    # The one-time password again, or a code that is not from the new secret, is refused,
    # and nothing changes
    with pytest.raises(AccountError, match="not the one-time password"):
        enrolment.finish_enrolment(
            ws, rosa.id, made.password, _code(station, totp.secret), keep_token=here
        )
    wrong = _code(station, pyotp.random_base32())
    with pytest.raises(AccountError, match="does not match the new secret"):
        enrolment.finish_enrolment(ws, rosa.id, NEW_PASSWORD, wrong, keep_token=here)
    assert enrolment.needs_enrolment(_account(station, "rosa"))
    # With her own password and a current code, she is done
    enrolment.finish_enrolment(
        ws, rosa.id, NEW_PASSWORD, _code(station, totp.secret), keep_token=here
    )
    rosa = _account(station, "rosa")
    assert not enrolment.needs_enrolment(rosa) and rosa.totp_secret == totp.secret
    assert accounts.resume_session(ws, here) is not None
    # Then the one-time password is dead, the code just typed cannot be replayed, and a
    # login needs her password and a fresh code
    with pytest.raises(LoginError):
        accounts.authenticate(ws, "rosa", made.password, "")
    with pytest.raises(LoginError):
        accounts.authenticate(ws, "rosa", NEW_PASSWORD, _code(station, totp.secret))
    with pytest.raises(LoginError):
        accounts.authenticate(ws, "rosa", NEW_PASSWORD, "")
    station.clock.advance(seconds=30)
    assert (
        accounts.authenticate(ws, "rosa", NEW_PASSWORD, _code(station, totp.secret)).id == rosa.id
    )


def test_an_admin_resets_a_responder_who_enrols_again(station: Station) -> None:
    ws = station.ws
    admin = _account(station, ADMIN)
    with ws.write() as db:
        made = accounts.create_account(ws, db, ADMIN, "rosa", NEW_PASSWORD, admin=False)
    rosa = _account(station, "rosa")
    sessions = [accounts.start_session(ws, rosa.id) for _ in range(2)]
    # When the admin resets her account
    reset = accounts.reset_account(ws, admin, rosa.id)
    # Then her sessions end, her password and authenticator no longer work,
    assert all(accounts.resume_session(ws, t) is None for t in sessions)
    station.clock.advance(seconds=30)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, "rosa", NEW_PASSWORD, station.code(made.totp_secret))
    # the one-time password alone opens an enrolment, which needs a new authenticator
    rosa = accounts.authenticate(ws, "rosa", reset.password, "")
    assert rosa.must_change_password and not rosa.totp_secret
    totp = enrolment.start_totp(ws, rosa.id)
    assert totp.secret != made.totp_secret
    enrolment.finish_enrolment(
        ws, rosa.id, "a second own password", _code(station, totp.secret), keep_token=None
    )
    # and the reset is in the audit log, naming who did it and to whom, not the password
    with ws.sessions() as db:
        event = db.scalar(select(AuditEvent).where(AuditEvent.action == "account.reset"))
        assert event is not None and event.actor == ADMIN
        assert event.detail.startswith("rosa: password and authenticator reset, 2 session(s)")
        assert reset.password not in event.detail
        assert audit.verify_log(db) > 0


def test_nobody_resets_their_own_account_and_only_admins_reset(station: Station) -> None:
    ws = station.ws
    admin = _account(station, ADMIN)
    with pytest.raises(AccountError, match="your own account"):
        accounts.reset_account(ws, admin, admin.id)
    with ws.write() as db:
        accounts.create_account(ws, db, ADMIN, "rosa", NEW_PASSWORD, admin=False)
    with pytest.raises(PermissionDeniedError):
        accounts.reset_account(ws, _account(station, "rosa"), admin.id)
    with pytest.raises(PermissionDeniedError):
        accounts.invite_account(ws, _account(station, "rosa"), "eve", admin=True)
    # nothing changed for the admin
    station.clock.advance(seconds=30)
    assert accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, station.code()).id == admin.id


def test_a_new_authenticator_replaces_the_old_only_once_confirmed(station: Station) -> None:
    ws = station.ws
    admin = _account(station, ADMIN)
    new = enrolment.start_totp(ws, admin.id)
    # Until a code of the new secret is typed, the old authenticator is the one that works
    station.clock.advance(seconds=30)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, _code(station, new.secret))
    station.clock.advance(seconds=30)
    assert accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, station.code()).id == admin.id
    with pytest.raises(AccountError, match="does not match"):
        enrolment.confirm_totp(ws, admin.id, station.code())  # the old one's code
    station.clock.advance(seconds=30)
    enrolment.confirm_totp(ws, admin.id, _code(station, new.secret))
    with pytest.raises(AccountError, match="nothing|no new authenticator"):
        enrolment.confirm_totp(ws, admin.id, _code(station, new.secret))
    # Then the new one works and the old one does not
    station.clock.advance(seconds=30)
    with pytest.raises(LoginError):
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, station.code())
    station.clock.advance(seconds=30)
    assert (
        accounts.authenticate(ws, ADMIN, ADMIN_PASSWORD, _code(station, new.secret)).id == admin.id
    )


def test_the_qr_code_is_an_svg_of_the_uri_without_script(station: Station) -> None:
    import xml.etree.ElementTree as ET

    svg = enrolment.qr_svg("otpauth://totp/securedrop-wm:rosa?secret=JBSWY3DPEHPK3PXP")
    root = ET.fromstring(svg)  # noqa: S314 (our own output, parsed to check it)
    assert root.tag.rsplit("}", 1)[-1] == "svg"
    tags = {el.tag.rsplit("}", 1)[-1] for el in root.iter()}
    assert tags <= {"svg", "title", "g", "path", "rect"}, tags
    for el in root.iter():
        assert not any(a.lower().startswith("on") or "href" in a.lower() for a in el.attrib)
