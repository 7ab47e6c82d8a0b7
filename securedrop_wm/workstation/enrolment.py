"""Enrolment: a password of one's own and an authenticator confirmed by a code from it.

An account an admin created or reset (:func:`accounts.invite_account`,
:func:`accounts.reset_account`) logs in once with its one-time password and can then do
nothing but :func:`finish_enrolment`. Anyone may replace their authenticator later:
:func:`start_totp` shows a new secret, :func:`confirm_totp` makes it the one a login
needs, only once a code from it was typed; until then the old one still works.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyotp
import segno

from . import accounts, audit
from .errors import AccountError
from .models import Account
from .services import Workstation

# What the enrolment flows raise; the web layer shows each in the user's language.
REUSED_ONE_TIME = "choose a password of your own, not the one-time password"
WRONG_NEW_CODE = (
    "that code does not match the new secret: scan the QR code (or type the secret) "
    "again and give the code the authenticator shows now"
)
NOTHING_TO_CONFIRM = "there is no new authenticator secret to confirm: start again"


@dataclass(frozen=True)
class TotpEnrolment:
    """A new TOTP secret to add to an authenticator: as text, URI and QR code (SVG)."""

    secret: str
    provisioning_uri: str
    qr_svg: str


def qr_svg(uri: str) -> str:
    """``uri`` as a QR code: an inline ``<svg>`` element of paths, no script, no link."""
    code = segno.make(uri, error="m")
    return str(code.svg_inline(scale=5, dark="#000", light="#fff", title="QR code"))


def needs_enrolment(account: Account) -> bool:
    """Whether the account must change its password or set up an authenticator before
    anything else."""
    return account.must_change_password or not account.totp_secret


def start_totp(ws: Workstation, account_id: int) -> TotpEnrolment:
    """A new TOTP secret for the account, kept pending (the same one until it is
    confirmed, so a reloaded page shows what was scanned already)."""
    with ws.write() as db:
        account = db.get(Account, account_id)
        if account is None or not account.active:
            raise AccountError(accounts.NO_SUCH_ACCOUNT)
        if not account.totp_pending:
            account.totp_pending = pyotp.random_base32()
        secret, username = account.totp_pending, account.username
    uri = accounts.provisioning_uri(username, secret)
    return TotpEnrolment(secret, uri, qr_svg(uri))


def confirm_totp(ws: Workstation, account_id: int, code: str) -> None:
    """Make the pending secret the account's authenticator, given a current code of it.

    :raises AccountError: nothing pending, or the code is not one of the pending secret.
    """
    with ws.write() as db:
        account = db.get(Account, account_id)
        if account is None or not account.active:
            raise AccountError(accounts.NO_SUCH_ACCOUNT)
        _confirm(account, code, ws)
        audit.record(db, ws.now(), account.username, "account.totp", detail="new authenticator")


def _confirm(account: Account, code: str, ws: Workstation) -> None:
    if not account.totp_pending:
        raise AccountError(NOTHING_TO_CONFIRM)
    step = accounts.totp_step(account.totp_pending, code, ws.now())
    if step is None:
        raise AccountError(WRONG_NEW_CODE)
    account.totp_secret, account.totp_pending = account.totp_pending, ""
    # The code just typed cannot log in again.
    account.last_totp_step = step


def finish_enrolment(
    ws: Workstation, account_id: int, new_password: str, code: str, *, keep_token: str | None
) -> int:
    """Set the password of one's own and confirm the authenticator, whichever of the two
    the account still needs, both or nothing (one transaction); end the account's other
    sessions. Returns how many ended.

    :raises AccountError: a weak password, the one-time password again, a wrong code.
    """
    with ws.write() as db:
        account = db.get(Account, account_id)
        if account is None or not account.active:
            raise AccountError(accounts.NO_SUCH_ACCOUNT)
        done = []
        if account.must_change_password:
            accounts.check_password(new_password)
            if accounts.password_matches(account, new_password):
                raise AccountError(REUSED_ONE_TIME)
            account.password_hash = accounts.hash_password(new_password)
            account.must_change_password = False
            done.append("password")
        if not account.totp_secret:
            _confirm(account, code, ws)
            done.append("authenticator")
        ended = accounts.end_other_sessions(db, account.id, keep_token)
        audit.record(
            db,
            ws.now(),
            account.username,
            "account.enrol",
            detail=f"{' and '.join(done) or 'nothing'} set; {ended} session(s) ended",
        )
    return ended
