"""The closed sets of values a report and a case take, on the drop server and on the
workstation alike.

Each value is the string stored in both databases and carried in bundles, so a value
never changes once shipped. The words shown for a value are not here: each UI keeps its
own labels in its own catalogs (``source_ui/views/source.py`` speaks to a source,
``journalist_ui/labels.py`` to a responder).

The reply language is not a closed set: a source writes it in their own words.
"""

from __future__ import annotations

import enum


class Vocabulary(enum.StrEnum):
    """A closed set of stored strings (no members of its own)."""

    @classmethod
    def has(cls, value: object) -> bool:
        """Whether ``value`` is one of the set (Python 3.11's ``in`` refuses a plain str)."""
        return isinstance(value, str) and value in cls._value2member_map_


class Category(Vocabulary):
    """What happened to the source, as they class it on the report form, in the words
    Wikimedians use (the labels say it; the first seven values predate them and keep
    their stored strings). A deployment offers a subset, in its own order
    (``Settings.report_categories``)."""

    HARASSMENT = "harassment"  # harassment on a wiki
    OFFWIKI_HARASSMENT = "offwiki_harassment"  # off-wiki harassment or outing
    DOXXING = "doxxing"
    THREATS = "threats"  # threats of violence
    SURVEILLANCE = "surveillance"  # government surveillance or pressure
    LEGAL = "legal"  # legal threat or lawsuit
    ARREST = "arrest"  # arrest or detention
    CONTENT_PRESSURE = "content_pressure"  # pressure to change content
    ACCOUNT = "account"  # account compromise
    UCOC = "ucoc"  # Universal Code of Conduct violation
    EVENT = "event"  # incident at an event
    OTHER = "other"


class Place(Vocabulary):
    """Where it happened, as the source says on the report form."""

    ON_WIKI = "on_wiki"
    OFF_WIKI = "off_wiki"
    IN_PERSON = "in_person"


class Urgency(Vocabulary):
    """How soon the source needs help, least urgent first."""

    ROUTINE = "routine"
    URGENT = "urgent"
    DANGER = "danger"


class CaseStatus(Vocabulary):
    """Where a case stands on the workstation, in the order of its handling."""

    NEW = "new"
    TRIAGED = "triaged"
    IN_PROGRESS = "in_progress"
    WAITING_FOR_SOURCE = "waiting_for_source"
    ESCALATED = "escalated"
    CLOSED = "closed"


def urgency_rank(value: str) -> int:
    """How urgent a stored value is, for comparing and sorting (0 is routine); a value
    outside the set counts as routine."""
    return list(Urgency).index(Urgency(value)) if Urgency.has(value) else 0


__all__ = ["CaseStatus", "Category", "Place", "Urgency", "Vocabulary", "urgency_rank"]
