"""The responders' words for the values of :mod:`securedrop_wm.vocabulary`, translated
in the journalist UI's own catalogs (the source UI has its own, in a source's words)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from flask_babel import gettext

from securedrop_wm.translations import N_
from securedrop_wm.vocabulary import CaseStatus, Category, Urgency, Vocabulary
from securedrop_wm.workstation.clocks import ReplyState

CATEGORY_LABELS: dict[Category, str] = {
    Category.HARASSMENT: N_("Harassment"),
    Category.DOXXING: N_("Doxxing"),
    Category.THREATS: N_("Threats of violence"),
    Category.SURVEILLANCE: N_("Government surveillance or pressure"),
    Category.LEGAL: N_("Legal threat or lawsuit"),
    Category.ACCOUNT: N_("Compromised account"),
    Category.OTHER: N_("Other"),
}
URGENCY_LABELS: dict[Urgency, str] = {
    Urgency.ROUTINE: N_("Routine"),
    Urgency.URGENT: N_("Urgent"),
    Urgency.DANGER: N_("In danger now"),
}
V = TypeVar("V", bound=Vocabulary)


def _by_value(labels: Mapping[V, str]) -> dict[str, str]:
    """``labels`` keyed by the stored string rather than the enum member."""
    return {member.value: english for member, english in labels.items()}


STATUS_LABELS: dict[CaseStatus, str] = {
    CaseStatus.NEW: N_("new"),
    CaseStatus.TRIAGED: N_("triaged"),
    CaseStatus.IN_PROGRESS: N_("in progress"),
    CaseStatus.WAITING_FOR_SOURCE: N_("waiting for source"),
    CaseStatus.ESCALATED: N_("escalated"),
    CaseStatus.CLOSED: N_("closed"),
}
REPLY_STATE_LABELS: dict[ReplyState, str] = {
    ReplyState.QUEUED: N_("queued, not sent yet"),
    ReplyState.SENT: N_("sent in a reply bundle"),
    ReplyState.DELIVERED: N_("delivered: the drop server received it"),
}
# What a template names when it asks for a label: ``label("urgency", case.urgency)``.
LABELS: Mapping[str, Mapping[str, str]] = {
    "category": _by_value(CATEGORY_LABELS),
    "urgency": _by_value(URGENCY_LABELS),
    "status": _by_value(STATUS_LABELS),
    "reply": _by_value(REPLY_STATE_LABELS),
}


def label(kind: str, value: str) -> str:
    """``value`` of the vocabulary ``kind`` in the responder's language; a value outside
    the vocabulary (or of a kind without labels, such as a month) as it is stored."""
    english = LABELS.get(kind, {}).get(value)
    return gettext(english) if english is not None else value
