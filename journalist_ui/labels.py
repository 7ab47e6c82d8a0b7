"""The responders' words for the values of :mod:`securedrop_wm.vocabulary`, translated
in the journalist UI's own catalogs (the source UI has its own, in a source's words)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from flask_babel import gettext

from securedrop_wm.translations import N_
from securedrop_wm.vocabulary import CaseStatus, Category, Place, Urgency
from securedrop_wm.workstation.clocks import ReplyState
from securedrop_wm.workstation.wiki_links import LinkKind, LinkWarning

# In the vocabulary's order. The values that predate the Wikimedia categories keep their
# labels: "Harassment" also names reports sent before "Off-wiki harassment or outing"
# was offered (a new report's place says where it happened).
CATEGORY_LABELS: dict[Category, str] = {
    Category.HARASSMENT: N_("Harassment"),
    Category.OFFWIKI_HARASSMENT: N_("Off-wiki harassment or outing"),
    Category.DOXXING: N_("Doxxing"),
    Category.THREATS: N_("Threats of violence"),
    Category.SURVEILLANCE: N_("Government surveillance or pressure"),
    Category.LEGAL: N_("Legal threat or lawsuit"),
    Category.ARREST: N_("Arrest or detention"),
    Category.CONTENT_PRESSURE: N_("Pressure to change content"),
    Category.ACCOUNT: N_("Compromised account"),
    Category.UCOC: N_("Universal Code of Conduct violation"),
    Category.EVENT: N_("Incident at an event"),
    Category.OTHER: N_("Other"),
}
PLACE_LABELS: dict[Place, str] = {
    Place.ON_WIKI: N_("On a wiki"),
    Place.OFF_WIKI: N_("Off-wiki"),
    Place.IN_PERSON: N_("In person"),
}
# What a link of a report points at (securedrop_wm/workstation/wiki_links.py).
LINK_KIND_LABELS: dict[LinkKind, str] = {
    LinkKind.PAGE: N_("page"),
    LinkKind.DIFF: N_("diff"),
    LinkKind.REVISION: N_("revision"),
    LinkKind.USER: N_("user page"),
    LinkKind.CONTRIBUTIONS: N_("contributions"),
    LinkKind.SPECIAL: N_("special page"),
    LinkKind.FILE: N_("file page"),
    LinkKind.OTHER: N_("other link"),
}
LINK_WARNING_LABELS: dict[LinkWarning, str] = {
    LinkWarning.NOT_WIKIMEDIA: N_("not a Wikimedia site"),
    LinkWarning.NOT_WEB: N_("not a web address: never open it"),
    LinkWarning.CUT: N_("too long: cut"),
}
URGENCY_LABELS: dict[Urgency, str] = {
    Urgency.ROUTINE: N_("Routine"),
    Urgency.URGENT: N_("Urgent"),
    Urgency.DANGER: N_("In danger now"),
}
V = TypeVar("V", bound=enum.StrEnum)


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
# The orders of the case list (securedrop_wm.workstation.cases.SORTS).
SORT_LABELS: dict[str, str] = {
    "deadline": N_("deadline first"),
    "newest": N_("newest first"),
    "oldest": N_("oldest first"),
    "urgency": N_("most urgent first"),
    "updated": N_("last updated first"),
}
# The names of what the sandboxed renderer reads in a file
# (securedrop_wm/workstation/render_worker.py); a name outside this list shows as read.
METADATA_LABELS: dict[str, str] = {
    "type": N_("type"),
    "pages": N_("pages"),
    "gps": N_("location (GPS)"),
    "author": N_("author"),
    "camera owner": N_("camera owner"),
    "copyright": N_("copyright"),
    "camera make": N_("camera make"),
    "camera model": N_("camera model"),
    "camera serial number": N_("camera serial number"),
    "lens model": N_("lens model"),
    "software": N_("software"),
    "creator": N_("made with"),
    "producer": N_("converted with"),
    "title": N_("title"),
    "taken": N_("taken on"),
    "created": N_("created on"),
    "modified": N_("modified on"),
    "comment": N_("comment"),
    "description": N_("description"),
    "scripts": N_("scripts"),
    "embedded files": N_("files inside"),
    "note": N_("note"),
}
# The renderer's own words among the values (names and dates read from a file stay as read).
METADATA_VALUE_LABELS: dict[str, str] = {
    "yes": N_("yes"),
    "unknown": N_("unknown"),
    "text": N_("text"),
    "its metadata could not be read": N_("its metadata could not be read"),
}
# What a template names when it asks for a label: ``label("urgency", case.urgency)``.
LABELS: Mapping[str, Mapping[str, str]] = {
    "category": _by_value(CATEGORY_LABELS),
    "urgency": _by_value(URGENCY_LABELS),
    "place": _by_value(PLACE_LABELS),
    "link": _by_value(LINK_KIND_LABELS),
    "link warning": _by_value(LINK_WARNING_LABELS),
    "status": _by_value(STATUS_LABELS),
    "reply": _by_value(REPLY_STATE_LABELS),
    "sort": SORT_LABELS,
    "metadata": METADATA_LABELS,
    "metadata value": METADATA_VALUE_LABELS,
}


def label(kind: str, value: str) -> str:
    """``value`` of the vocabulary ``kind`` in the responder's language; a value outside
    the vocabulary (or of a kind without labels, such as a month) as it is stored."""
    english = LABELS.get(kind, {}).get(value)
    return gettext(english) if english is not None else value
