"""The core of the transfer API: what the networked transfer machine may learn and do.

It may learn counts per urgency level (reports pending, reports ever arrived), fetch the
next export bundle and push a reply bundle (:mod:`securedrop_wm.bundles`), and only with
a responder token. A token belongs to one desk (desks.py): its counts, exports and
acknowledgements are that desk's, and it learns nothing of another desk's items. A
status-only token learns the counts and nothing else. Tokens are shown once when made
and kept only as their SHA-256: a seized server does not yield a usable token.
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

from .desks import desk_by_id, only_desk, stored_as, stored_ids
from .drop import Drop
from .errors import SecureDropError, UnknownDeskError
from .models import ArrivalCount, Report, Submission, SubmissionDesk, TransferToken
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
    # The configured desk it belongs to; None: its desk is no longer configured (the
    # token then reaches nothing).
    desk: str | None = None

    @property
    def status_only(self) -> bool:
        return self.scope == STATUS_ONLY


def transfer_status(drop: Drop, desk: str | None = None) -> TransferStatus:
    """Per urgency level, the reports not yet acknowledged by the desk's workstation and
    the reports ever filed to the desk. ``desk`` None: every desk's together (a report
    sent to two desks counts once while pending, and once per desk it arrived at)."""
    pending_q = (
        select(Report.urgency, func.count(func.distinct(Report.id)))
        .where(Report.urgency.is_not(None))
        .group_by(Report.urgency)
    )
    arrived_q = select(ArrivalCount.level, func.sum(ArrivalCount.count)).group_by(
        ArrivalCount.level
    )
    if desk is not None:
        ids = stored_ids(drop.settings, desk_by_id(drop.settings, desk).id)
        pending_q = (
            pending_q.join(Submission, Submission.report_id == Report.id)
            .join(SubmissionDesk, SubmissionDesk.submission_id == Submission.id)
            .where(SubmissionDesk.desk.in_(ids))
        )
        arrived_q = arrived_q.where(ArrivalCount.desk.in_(ids))
    with drop.sessions() as db:
        pending = {str(k): int(v) for k, v in db.execute(pending_q).all()}
        arrived = {str(k): int(v or 0) for k, v in db.execute(arrived_q).all()}
    return TransferStatus(
        {str(u): LevelCounts(pending.get(u, 0), arrived.get(u, 0)) for u in Urgency}
    )


def count_arrival(db: Session, urgency: Urgency, desk: str) -> None:
    """Add one to the arrivals of ``urgency`` at ``desk``, in the caller's transaction
    (the one that stores the report): the counter never goes down."""
    counted = db.execute(
        update(ArrivalCount)
        .where(ArrivalCount.level == str(urgency), ArrivalCount.desk == desk)
        .values(count=ArrivalCount.count + 1)
    )
    if counted.rowcount == 0:  # type: ignore[attr-defined]
        db.add(ArrivalCount(desk=desk, level=str(urgency), count=1))


def token_desk(drop: Drop, desk: str | None) -> str:
    """The desk a new token is for: ``desk``, or the only desk.

    :raises TokenError: no such desk, or none named on a drop with several.
    """
    try:
        if desk is not None:
            return desk_by_id(drop.settings, desk).id
    except UnknownDeskError:
        known = ", ".join(d.id for d in drop.settings.desks)
        raise TokenError(f"no desk is named {desk!r} (the desks: {known})") from None
    single = only_desk(drop.settings)
    if single is None:
        known = ", ".join(d.id for d in drop.settings.desks)
        raise TokenError(f"name the desk the token is for with --desk (one of: {known})")
    return single.id


def create_token(
    drop: Drop, name: str, *, status_only: bool = False, desk: str | None = None
) -> str:
    """Make a token for the responder (or machine) ``name`` of ``desk`` (None: the only
    desk); return it, the only time. A ``status_only`` token may read ``GET /status``
    and nothing else.

    :raises TokenError: the name is malformed or taken, or the desk is not configured.
    """
    desk_id = token_desk(drop, desk)
    token = _new_token()
    try:
        with drop.sessions.begin() as db:
            db.add(
                TransferToken(
                    name=_check_name(name),
                    token_sha256=_digest(token),
                    created_day=drop.today(),
                    scope=STATUS_ONLY if status_only else FULL,
                    desk=desk_id,
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
    return [_info(drop, r) for r in rows]


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
            found = _info(drop, row)
    return found


def _info(drop: Drop, row: TransferToken) -> TokenInfo:
    return TokenInfo(row.name, row.created_day, row.scope, stored_as(drop.settings, row.desk))


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
