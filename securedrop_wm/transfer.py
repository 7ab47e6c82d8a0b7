"""The core of the transfer API: what the networked transfer machine may learn and do.

It may learn counts per urgency level (reports pending, reports ever arrived), fetch the
next export bundle and push a reply bundle (:mod:`securedrop_wm.bundles`), and only with
a responder token. A status-only token learns the counts and nothing else. Tokens are
shown once when made and kept only as their SHA-256: a seized server does not yield a
usable token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .drop import Drop
from .errors import SecureDropError
from .models import ArrivalCount, Report, TransferToken
from .status_counts import LevelCounts, TransferStatus
from .vocabulary import Urgency

TOKEN_PREFIX = "sdwm_"  # noqa: S105 - a label, not a secret
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: A token's scope: everything the transfer machine does, or ``GET /status`` only.
FULL = "full"
STATUS_ONLY = "status"


class TokenError(SecureDropError):
    """Raised when a token cannot be made, rotated or revoked; the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    """A responder token as listed: its name, the day it was made and its scope (``FULL``
    or ``STATUS_ONLY``), never its value."""

    name: str
    created_day: dt.date
    scope: str = FULL

    @property
    def status_only(self) -> bool:
        return self.scope == STATUS_ONLY


def transfer_status(drop: Drop) -> TransferStatus:
    """Per urgency level, the reports not yet acknowledged by the workstation and the
    reports ever filed."""
    with drop.sessions() as db:
        pending = dict(
            db.execute(
                select(Report.urgency, func.count(Report.id))
                .where(Report.urgency.is_not(None))
                .group_by(Report.urgency)
            ).all()
        )
        arrived = dict(db.execute(select(ArrivalCount.level, ArrivalCount.count)).all())
    return TransferStatus(
        {str(u): LevelCounts(pending.get(u, 0), arrived.get(u, 0)) for u in Urgency}
    )


def count_arrival(db: Session, urgency: Urgency) -> None:
    """Add one to the arrivals of ``urgency``, in the caller's transaction (the one that
    stores the report): the counter never goes down."""
    counted = db.execute(
        update(ArrivalCount)
        .where(ArrivalCount.level == str(urgency))
        .values(count=ArrivalCount.count + 1)
    )
    if counted.rowcount == 0:  # type: ignore[attr-defined]
        db.add(ArrivalCount(level=str(urgency), count=1))


def create_token(drop: Drop, name: str, *, status_only: bool = False) -> str:
    """Make a token for the responder (or machine) ``name``; return it, the only time.
    A ``status_only`` token may read ``GET /status`` and nothing else.

    :raises TokenError: the name is malformed or taken.
    """
    token = _new_token()
    try:
        with drop.sessions.begin() as db:
            db.add(
                TransferToken(
                    name=_check_name(name),
                    token_sha256=_digest(token),
                    created_day=drop.today(),
                    scope=STATUS_ONLY if status_only else FULL,
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
    return [TokenInfo(r.name, r.created_day, r.scope) for r in rows]


def check_token(drop: Drop, presented: str) -> TokenInfo | None:
    """The token ``presented`` matches (name, day, scope), or None.

    Every stored hash is compared in constant time, without stopping at a match, so the
    time taken says nothing about which token (if any) was close.
    """
    digest = _digest(presented)
    with drop.sessions() as db:
        rows = db.scalars(select(TransferToken)).all()
    found = None
    for row in rows:
        if hmac.compare_digest(digest, row.token_sha256):
            found = TokenInfo(row.name, row.created_day, row.scope)
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
