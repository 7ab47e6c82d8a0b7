"""The core of the transfer API: what the networked transfer machine may learn and do.

It may learn two counts (pending and urgent pending reports), fetch the next export
bundle and push a reply bundle (:mod:`securedrop_wm.bundles`), and only with a responder
token. Tokens are shown once when made and kept only as their SHA-256: a seized server
does not yield a usable token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError

from .drop import Drop
from .errors import SecureDropError
from .models import Report, TransferToken

TOKEN_PREFIX = "sdwm_"  # noqa: S105 - a label, not a secret
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class TokenError(SecureDropError):
    """Raised when a token cannot be made, rotated or revoked; the message says why."""


@dataclass(frozen=True)
class TransferStatus:
    """The only thing the transfer API tells about the reports: how many wait."""

    pending: int
    urgent_pending: int


@dataclass(frozen=True)
class TokenInfo:
    """A responder token as listed: its name and the day it was made, never its value."""

    name: str
    created_day: dt.date


def transfer_status(drop: Drop) -> TransferStatus:
    """Count the reports not yet acknowledged by the workstation, and the urgent ones."""
    with drop.sessions() as db:
        pending, urgent = db.execute(
            select(
                func.count(Report.id),
                func.coalesce(func.sum(case((Report.urgent, 1), else_=0)), 0),
            ).where(~Report.acknowledged)
        ).one()
    return TransferStatus(int(pending), int(urgent))


def create_token(drop: Drop, name: str) -> str:
    """Make a token for the responder (or machine) ``name``; return it, the only time.

    :raises TokenError: the name is malformed or taken.
    """
    token = _new_token()
    try:
        with drop.sessions.begin() as db:
            db.add(
                TransferToken(
                    name=_check_name(name), token_sha256=_digest(token), created_day=drop.today()
                )
            )
    except IntegrityError:
        raise TokenError(f"a token named {name!r} exists already (rotate or revoke it)") from None
    return token


def rotate_token(drop: Drop, name: str) -> str:
    """Replace the token ``name`` with a new one; the old one stops working at once.

    :raises TokenError: no token has this name.
    """
    token = _new_token()
    with drop.sessions.begin() as db:
        row = db.scalar(select(TransferToken).where(TransferToken.name == name))
        if row is None:
            raise TokenError(f"no token is named {name!r}")
        row.token_sha256 = _digest(token)
        row.created_day = drop.today()
    return token


def revoke_token(drop: Drop, name: str) -> None:
    """Delete the token ``name``.

    :raises TokenError: no token has this name.
    """
    with drop.sessions.begin() as db:
        row = db.scalar(select(TransferToken).where(TransferToken.name == name))
        if row is None:
            raise TokenError(f"no token is named {name!r}")
        db.delete(row)


def list_tokens(drop: Drop) -> list[TokenInfo]:
    """The tokens by name, without their values (which the server does not have)."""
    with drop.sessions() as db:
        rows = db.scalars(select(TransferToken).order_by(TransferToken.name)).all()
    return [TokenInfo(r.name, r.created_day) for r in rows]


def check_token(drop: Drop, presented: str) -> str | None:
    """The name of the token ``presented`` matches, or None.

    Every stored hash is compared in constant time, without stopping at a match, so the
    time taken says nothing about which token (if any) was close.
    """
    digest = _digest(presented)
    with drop.sessions() as db:
        rows = db.execute(select(TransferToken.name, TransferToken.token_sha256)).all()
    found = None
    for name, stored in rows:
        if hmac.compare_digest(digest, stored):
            found = name
    return found


def _new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise TokenError(
            "a token name has 1 to 64 letters, digits, dots, dashes or underscores, "
            "starting with a letter or digit"
        )
    return name
