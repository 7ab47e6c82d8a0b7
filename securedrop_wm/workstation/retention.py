"""Retention: closed cases are purged a set period after they were closed.

What is due is listed beforehand. A case whose replies or acknowledgements have not left
in a reply bundle yet is held back: purging it would lose the replies, and the server
would send its submissions again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..store import shred
from ..vocabulary import CaseStatus
from . import audit
from .models import Case, Report
from .services import Workstation


@dataclass(frozen=True)
class DueCase:
    """A closed case and when retention purges it."""

    case_id: int
    designation: str
    closed_at: dt.datetime
    purge_on: dt.datetime
    due: bool
    held: bool


def retention_schedule(ws: Workstation, horizon_days: int = 14) -> list[DueCase]:
    """Closed cases due now or within ``horizon_days``, soonest first."""
    period = dt.timedelta(days=ws.settings.retention_days)
    now = ws.now()
    horizon = now + dt.timedelta(days=horizon_days)
    out = []
    with ws.sessions() as db:
        query = (
            select(Case)
            .where(Case.status == CaseStatus.CLOSED, Case.closed_at.is_not(None))
            .options(
                selectinload(Case.replies),
                selectinload(Case.reports).selectinload(Report.submissions),
            )
        )
        for case in db.scalars(query):
            assert case.closed_at is not None
            purge_on = case.closed_at + period
            if purge_on <= horizon:
                out.append(
                    DueCase(
                        case.id,
                        case.designation,
                        case.closed_at,
                        purge_on,
                        purge_on <= now,
                        _held(case),
                    )
                )
    return sorted(out, key=lambda d: d.purge_on)


def _held(case: Case) -> bool:
    unsent = any(r.bundle_id is None for r in case.replies)
    unacknowledged = any(s.acknowledged_at is None for r in case.reports for s in r.submissions)
    return unsent or unacknowledged


def purge_due(ws: Workstation, actor: str) -> list[str]:
    """Purge every case that is due and not held; return their designations.

    Files are overwritten before they are unlinked (see :mod:`securedrop_wm.store` on
    what that does and does not achieve); the audit log keeps one line per case.
    """
    purged = []
    for due in retention_schedule(ws, horizon_days=0):
        if not due.due or due.held:
            continue
        with ws.write() as db:
            case = db.get(Case, due.case_id)
            if case is None or case.status != CaseStatus.CLOSED:
                continue
            names = [s.safe_name for r in case.reports for s in r.submissions if s.safe_name]
            db.delete(case)
            audit.record(
                db,
                ws.now(),
                actor,
                "case.purge",
                case_id=due.case_id,
                detail=f"{due.designation}, closed {due.closed_at:%Y-%m-%d}",
            )
        for name in names:
            shred(ws.settings.files_dir / name)
        purged.append(due.designation)
    return purged
