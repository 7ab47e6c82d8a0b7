"""Retention: closed cases are purged a set period after they were closed.

What is due is listed beforehand. Two things hold a case back:

- its replies or acknowledgements have not left in a reply bundle yet: purging it would
  lose the replies, and the server would send its submissions again;
- a legal hold (:func:`place_hold`): never purged while it is set, whatever its status.

The purge runs when an admin asks (the Retention page, ``securedrop-wm workstation
purge``) and on a schedule: :class:`PurgeSchedule` runs it in a thread of the ``serve``
process (``purge_interval_minutes``), audited as :data:`SCHEDULER`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..store import shred
from ..vocabulary import CaseStatus
from . import audit, search, stats
from .cases import get_case
from .errors import CaseError, PermissionDeniedError
from .models import Account, Case, Report
from .services import Workstation
from .viewing import remove_previews

#: The audit log's actor for purges the schedule runs.
SCHEDULER = "scheduler"
MAX_HOLD_REASON_CHARS = 500
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueCase:
    """A closed case and when retention purges it.

    ``due``: its period is over and nothing holds it back: the next run purges it.
    ``held``: its replies or acknowledgements have not left yet. ``legal_hold``: a
    legal hold keeps it, with ``hold_reason``. ``overdue``: its period is over.
    """

    case_id: int
    designation: str
    closed_at: dt.datetime
    purge_on: dt.datetime
    due: bool
    held: bool
    legal_hold: bool = False
    hold_reason: str = ""
    overdue: bool = False


def retention_schedule(ws: Workstation, horizon_days: int = 14) -> list[DueCase]:
    """Closed cases due now or within ``horizon_days``, soonest first; a case on legal
    hold is listed as held, never as due."""
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
                over = purge_on <= now
                unsent = _unsent(case)
                out.append(
                    DueCase(
                        case.id,
                        case.designation,
                        case.closed_at,
                        purge_on,
                        due=over and not unsent and not case.legal_hold,
                        held=unsent,
                        legal_hold=case.legal_hold,
                        hold_reason=case.hold_reason,
                        overdue=over,
                    )
                )
    return sorted(out, key=lambda d: d.purge_on)


def _unsent(case: Case) -> bool:
    unsent = any(r.bundle_id is None for r in case.replies)
    unacknowledged = any(s.acknowledged_at is None for r in case.reports for s in r.submissions)
    return unsent or unacknowledged


def purge_due(ws: Workstation, actor: str) -> list[str]:
    """Purge every case that is due and not held; return their designations.

    Each case is checked again in the transaction that deletes it (a hold placed since
    the schedule was read wins); that transaction also adds the case to the monthly
    figures (stats.py). Files are overwritten before they are unlinked (see
    :mod:`securedrop_wm.store` on what that does and does not achieve); the audit log
    keeps one line per case.
    """
    purged = []
    period = dt.timedelta(days=ws.settings.retention_days)
    for due in retention_schedule(ws, horizon_days=0):
        if not due.due:
            continue
        with ws.write() as db:
            case = db.get(Case, due.case_id)
            if (
                case is None
                or case.status != CaseStatus.CLOSED
                or case.closed_at is None
                or case.closed_at + period > ws.now()
                or case.legal_hold
                or _unsent(case)
            ):
                continue
            names = [s.safe_name for r in case.reports for s in r.submissions if s.safe_name]
            stats.count_purged(db, case)
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
            remove_previews(ws.settings.files_dir, name)  # pictures and clean copy go too
        purged.append(due.designation)
    search.forget_purged(ws, purged)  # no purged word left in the index or the files
    return purged


def _hold_reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise CaseError("give a reason for the legal hold")
    if len(text) > MAX_HOLD_REASON_CHARS:
        raise CaseError(f"the reason is too long (at most {MAX_HOLD_REASON_CHARS} characters)")
    return text


def place_hold(ws: Workstation, actor: Account, case_id: int, reason: str) -> None:
    """Put a case under legal hold: it is not purged until the hold is released.

    Any responder may place one (keeping a case destroys nothing).

    :raises CaseError: no reason, a reason too long, or the case is on hold already.
    :raises CaseNotFoundError: no such case.
    """
    text = _hold_reason(reason)
    with ws.write() as db:
        case = get_case(db, case_id)
        if case.legal_hold:
            raise CaseError("this case is on legal hold already")
        now = ws.now()
        case.legal_hold, case.hold_reason = True, text
        case.held_by, case.held_at = actor.username, now
        audit.record(
            db, now, actor.username, "case.hold", case_id=case.id, detail=f"reason: {text}"
        )


def release_hold(ws: Workstation, actor: Account, case_id: int, reason: str) -> None:
    """Release a case's legal hold: retention applies to it again (a closed case past its
    period is purged at the next run). Only an admin may, as only an admin may purge.

    :raises PermissionDeniedError: the actor is not an admin.
    :raises CaseError: no reason, a reason too long, or the case is not on hold.
    :raises CaseNotFoundError: no such case.
    """
    if not actor.is_admin:
        raise PermissionDeniedError("only an admin may release a legal hold")
    text = _hold_reason(reason)
    with ws.write() as db:
        case = get_case(db, case_id)
        if not case.legal_hold:
            raise CaseError("this case is not on legal hold")
        held = f"held by {case.held_by} since {case.held_at:%Y-%m-%d}" if case.held_at else ""
        case.legal_hold, case.hold_reason, case.held_by, case.held_at = False, "", None, None
        case.updated_at = ws.now()
        audit.record(
            db,
            ws.now(),
            actor.username,
            "case.release",
            case_id=case.id,
            detail=f"reason: {text}; {held}".rstrip("; "),
        )


class PurgeSchedule:
    """Runs :func:`purge_due` at start and then every ``purge_interval_minutes``, in a
    daemon thread, as :data:`SCHEDULER`. One per app (the app keeps it and stops it);
    nothing runs when the interval is 0."""

    def __init__(self, ws: Workstation) -> None:
        self.ws = ws
        self.interval = ws.settings.purge_interval_minutes * 60
        self.runs = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (once; not at all when the interval is 0)."""
        if self.interval <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="purge-schedule", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Stop the thread, waiting for a purge under way to finish."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def run_once(self) -> list[str]:
        """One purge; an error is logged (no case content) and the next run tries again."""
        try:
            purged = purge_due(self.ws, SCHEDULER)
        except Exception as e:  # noqa: BLE001 (the schedule outlives one failed run)
            log.error("scheduled purge failed: %s", type(e).__name__)
            purged = []
        self.runs += 1
        if purged:
            log.warning("scheduled purge: %d closed case(s) purged", len(purged))
        return purged

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self.interval)
