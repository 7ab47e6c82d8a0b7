"""Cases, one per source: listing with filters and sorting (what needs action first),
triage, assignment (with an optional handover note), labels, notes, and each
responder's own read state. Deadlines are in clocks.py; a case's thread in thread.py.

Read state is per account (:class:`CaseRead`): a case is unread for an account until it
opens the case, and again when a newer report arrives or it marks the case unread.
``Case.unread`` (set by an import, cleared by any reading) is no longer shown.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from ..vocabulary import CaseStatus, Category, Vocabulary, urgency_rank
from . import audit
from .clocks import Due, ReplyState, due, reply_state
from .errors import CaseError, CaseNotFoundError
from .models import (
    Account,
    Case,
    CaseRead,
    HandoverNote,
    Label,
    Note,
    OutgoingReply,
    Report,
    Submission,
)
from .services import Workstation

SORTS = ("deadline", "newest", "oldest", "urgency", "updated")
MAX_NOTE_CHARS = 20_000
LABEL = re.compile(r"^[\w .:/+-]{1,40}$")


@dataclass(frozen=True)
class CaseFilter:
    """What the case list shows; ``None`` means any. ``assignee`` 0 means unassigned.
    ``unread_only``: only the cases unread for the account reading the list."""

    status: str | None = None
    category: str | None = None
    urgency: str | None = None
    reply_language: str | None = None
    assignee: int | None = None
    label: str | None = None
    include_closed: bool = False
    sort: str = "deadline"
    unread_only: bool = False


@dataclass(frozen=True)
class CaseRow:
    """A case as the list shows it: what it needs (:class:`Due`), the state of its
    latest reply (``None``: no reply yet), and whether the reader has not read it."""

    case: Case
    due: Due
    overdue: bool
    age: dt.timedelta
    reply: ReplyState | None
    unread: bool = False

    @property
    def deadline(self) -> dt.datetime | None:
        """When the first response to its unanswered reports is due."""
        return self.due.deadline


def _needs_action_first(row: CaseRow) -> tuple[bool, int, dt.datetime, int]:
    """Danger follow-ups first, then danger before urgent before routine (of what is
    unanswered), each by its deadline; cases with nothing due last."""
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    rank = urgency_rank(row.due.urgency) if row.due.urgency is not None else -1
    return (not row.due.follow_up, -rank, row.due.deadline or far, row.case.id)


def _newest_report(case: Case) -> int:
    return max((r.id for r in case.reports), default=0)


def _read_upto(db: Session, account_id: int | None) -> dict[int, int]:
    """For each case the account has read: the newest report it had seen."""
    if account_id is None:
        return {}
    query = select(CaseRead.case_id, CaseRead.last_report_id).where(
        CaseRead.account_id == account_id
    )
    return {case_id: last for case_id, last in db.execute(query)}


def list_cases(ws: Workstation, filters: CaseFilter, reader: int | None = None) -> list[CaseRow]:
    """The cases matching ``filters``, sorted (what needs action first by default);
    ``reader``: the account whose read state the rows carry (none: all read)."""
    if filters.sort not in SORTS:
        raise CaseError(f"unknown sort {filters.sort!r}")
    query = select(Case).options(
        selectinload(Case.labels),
        selectinload(Case.assignee),
        selectinload(Case.reports),
        selectinload(Case.replies).selectinload(OutgoingReply.bundle),
    )
    if filters.status:
        query = query.where(Case.status == filters.status)
    elif not filters.include_closed:
        query = query.where(Case.status != CaseStatus.CLOSED)
    for column, value in (
        (Case.category, filters.category),
        (Case.urgency, filters.urgency),
        (Case.reply_language, filters.reply_language),
    ):
        if value:
            query = query.where(column == value)
    if filters.assignee == 0:
        query = query.where(Case.assignee_id.is_(None))
    elif filters.assignee is not None:
        query = query.where(Case.assignee_id == filters.assignee)
    if filters.label:
        query = query.where(Case.labels.any(Label.name == filters.label))
    now = ws.now()
    with ws.sessions() as db:
        read = _read_upto(db, reader)
        rows = []
        for case in db.scalars(query):
            unread = reader is not None and _newest_report(case) > read.get(case.id, 0)
            if filters.unread_only and not unread:
                continue
            needs = due(ws.settings, case)
            latest = reply_state(case.replies[-1]) if case.replies else None
            age = now - case.opened_at
            rows.append(CaseRow(case, needs, needs.overdue(now), age, latest, unread))
    keys = {
        "deadline": _needs_action_first,
        "newest": lambda r: (-r.case.opened_at.timestamp(), -r.case.id),
        "oldest": lambda r: (r.case.opened_at, r.case.id),
        "urgency": lambda r: (-urgency_rank(r.case.urgency), r.case.opened_at),
        "updated": lambda r: (-r.case.updated_at.timestamp(), -r.case.id),
    }
    rows.sort(key=keys[filters.sort])
    return rows


def filter_choices(ws: Workstation) -> dict[str, list[str]]:
    """The values present in the case database, for the list's filter menus."""
    with ws.sessions() as db:
        return {
            "category": _vocabulary_order(set(db.scalars(select(Case.category))), Category),
            "reply_language": sorted(set(db.scalars(select(Case.reply_language)))),
            "label": list(db.scalars(select(Label.name).order_by(Label.name))),
        }


def _vocabulary_order(values: set[str], vocabulary: type[Vocabulary]) -> list[str]:
    """``values`` in the vocabulary's order, then any outside it alphabetically."""
    known = [v.value for v in vocabulary if v.value in values]
    return known + sorted(values - set(known))


def get_case(db: Session, case_id: int) -> Case:
    """Load a case with everything its page shows.

    :raises CaseNotFoundError: no case has this id.
    """
    case = db.scalar(
        select(Case)
        .where(Case.id == case_id)
        .options(
            selectinload(Case.reports)
            .selectinload(Report.submissions)
            .selectinload(Submission.imported_bundle),
            selectinload(Case.notes),
            selectinload(Case.replies).selectinload(OutgoingReply.bundle),
            selectinload(Case.labels),
            selectinload(Case.assignee),
        )
    )
    if case is None:
        raise CaseNotFoundError(f"there is no case {case_id}")
    return case


def _account_id(db: Session, username: str) -> int | None:
    return db.scalar(select(Account.id).where(Account.username == username))


def read_case(ws: Workstation, actor: str, case_id: int) -> Case:
    """Open a case for reading: it is marked read for ``actor`` (up to its newest
    report) and the reading is audited (once a day, see audit.py)."""
    with ws.write() as db:
        case = get_case(db, case_id)
        case.unread = False
        now = ws.now()
        account_id = _account_id(db, actor)
        if account_id is not None:
            row = db.scalar(
                select(CaseRead).where(
                    CaseRead.account_id == account_id, CaseRead.case_id == case.id
                )
            )
            if row is None:
                row = CaseRead(account_id=account_id, case_id=case.id)
                db.add(row)
            row.last_report_id, row.read_at = _newest_report(case), now
        audit.record(db, now, actor, "case.read", case_id=case.id)
    return case


def is_unread(ws: Workstation, actor: str, case_id: int) -> bool:
    """Whether ``actor`` has not read the case (or not since its newest report).

    :raises CaseNotFoundError: no case has this id.
    """
    with ws.sessions() as db:
        case = get_case(db, case_id)
        read = _read_upto(db, _account_id(db, actor))
        return _newest_report(case) > read.get(case.id, 0)


def mark_unread(ws: Workstation, actor: str, case_id: int) -> None:
    """Mark a case unread again, for ``actor`` only."""
    with ws.write() as db:
        case = get_case(db, case_id)
        account_id = _account_id(db, actor)
        db.execute(
            delete(CaseRead).where(CaseRead.account_id == account_id, CaseRead.case_id == case.id)
        )
        audit.record(db, ws.now(), actor, "case.unread", case_id=case.id)


def set_status(ws: Workstation, actor: str, case_id: int, status: str) -> None:
    """Change a case's status; closing records when (retention counts from then).

    :raises CaseError: unknown status.
    """
    if not CaseStatus.has(status):
        raise CaseError(f"unknown status {status!r}")
    with ws.write() as db:
        case = get_case(db, case_id)
        if case.status == status:
            return
        now = ws.now()
        old, case.status, case.updated_at = case.status, status, now
        case.closed_at = now if status == CaseStatus.CLOSED else None
        audit.record(db, now, actor, "case.status", case_id=case.id, detail=f"{old} -> {status}")


def _note_text(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_NOTE_CHARS:
        raise CaseError(f"a note may have at most {MAX_NOTE_CHARS} characters")
    return text


def assign(
    ws: Workstation, actor: str, case_id: int, account_id: int | None, handover: str = ""
) -> None:
    """Assign a case to an active account, or unassign it with ``None``; a non-empty
    ``handover`` is kept as an internal note marked as the handover (and audited).

    :raises CaseError: no such active account, or an overlong note.
    """
    note_text = _note_text(handover)
    with ws.write() as db:
        case = get_case(db, case_id)
        name = "nobody"
        if account_id is not None:
            account = db.get(Account, account_id)
            if account is None or not account.active:
                raise CaseError("there is no such responder")
            name = account.username
        now = ws.now()
        case.assignee_id = account_id
        case.updated_at = now
        audit.record(db, now, actor, "case.assign", case_id=case.id, detail=name)
        if note_text:
            note = Note(case=case, author=actor, created_at=now, text=note_text)
            db.add(note)
            db.flush()
            db.add(HandoverNote(note_id=note.id, assignee=name))
            audit.record(db, now, actor, "case.handover", case_id=case.id, detail=name)


def add_note(ws: Workstation, actor: str, case_id: int, text: str) -> None:
    """Add an internal note.

    :raises CaseError: an empty or overlong note.
    """
    text = _note_text(text)
    if not text:
        raise CaseError("a note cannot be empty")
    with ws.write() as db:
        case = get_case(db, case_id)
        now = ws.now()
        db.add(Note(case=case, author=actor, created_at=now, text=text))
        case.updated_at = now
        audit.record(db, now, actor, "case.note", case_id=case.id)


def add_label(ws: Workstation, actor: str, case_id: int, name: str) -> None:
    """Put a label on a case (created on first use).

    :raises CaseError: a malformed label.
    """
    name = name.strip().lower()
    if not LABEL.match(name):
        raise CaseError("a label has 1 to 40 letters, digits, spaces or . : / + - _")
    with ws.write() as db:
        case = get_case(db, case_id)
        label = db.scalar(select(Label).where(Label.name == name))
        if label is None:
            label = Label(name=name)
            db.add(label)
        if label not in case.labels:
            case.labels.append(label)
            audit.record(db, ws.now(), actor, "case.label", case_id=case.id, detail=f"+{name}")


def remove_label(ws: Workstation, actor: str, case_id: int, name: str) -> None:
    """Take a label off a case."""
    with ws.write() as db:
        case = get_case(db, case_id)
        for label in list(case.labels):
            if label.name == name:
                case.labels.remove(label)
                audit.record(db, ws.now(), actor, "case.label", case_id=case.id, detail=f"-{name}")


def responders(ws: Workstation) -> Sequence[Account]:
    """Accounts a case can be assigned to."""
    query = select(Account).where(Account.removed_at.is_(None)).order_by(Account.username)
    with ws.sessions() as db:
        return db.scalars(query).all()


def attachment(ws: Workstation, actor: str, submission_uuid: str) -> tuple[Path, str]:
    """The decrypted file of a submission and its original name; the download is audited.

    :raises CaseNotFoundError: no such file.
    """
    with ws.write() as db:
        sub = db.scalar(select(Submission).where(Submission.uuid == submission_uuid))
        if sub is None or not sub.safe_name:
            raise CaseNotFoundError("there is no such file")
        path = ws.settings.files_dir / sub.safe_name
        if not path.is_file():
            raise CaseNotFoundError("the file is missing from the files folder")
        audit.record(
            db, ws.now(), actor, "file.download", case_id=sub.report.case_id, detail=sub.uuid
        )
        return path, sub.filename
