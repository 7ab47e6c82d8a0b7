"""What the report form offers besides the typed text: the categories, places and urgency
levels in the source's words, the Wikimedia projects, and the desks a source chooses
among (Flask-Babel for the page's language; the routes are in source.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from babel import UnknownLocaleError
from babel.lists import format_list
from flask import current_app
from flask_babel import get_locale
from flask_babel import gettext as _

from sdwm_web.services import SETTINGS, service
from securedrop_wm.desks import Desk, central_desk
from securedrop_wm.settings import Settings
from securedrop_wm.translations import N_, language_name
from securedrop_wm.vocabulary import Category, Place, Urgency

from ..wikimedia_projects import AFFILIATE_WIKI, PROJECT_NAMES

# The source's words for each value, in the vocabulary's order (the form offers
# ``Settings.report_categories``, a subset in the deployment's order).
CATEGORY_LABELS: dict[Category, str] = {
    Category.HARASSMENT: N_("Harassment on a wiki"),
    Category.OFFWIKI_HARASSMENT: N_("Off-wiki harassment or outing"),
    Category.DOXXING: N_("Doxxing (my identity or address was exposed)"),
    Category.THREATS: N_("Threats of violence"),
    Category.SURVEILLANCE: N_("Government surveillance or pressure"),
    Category.LEGAL: N_("Legal threat or lawsuit"),
    Category.ARREST: N_("Arrest or detention"),
    Category.CONTENT_PRESSURE: N_("Pressure to change content"),
    Category.ACCOUNT: N_("My account was compromised"),
    Category.UCOC: N_("Universal Code of Conduct violation"),
    Category.EVENT: N_("Incident at an event"),
    Category.OTHER: N_("Something else"),
}
PLACE_LABELS: dict[Place, str] = {
    Place.ON_WIKI: N_("On a wiki"),
    Place.OFF_WIKI: N_("Online, off the wikis (social media, e-mail, chat)"),
    Place.IN_PERSON: N_("In person"),
}
URGENCY_LABELS: dict[Urgency, str] = {
    Urgency.ROUTINE: N_("Routine: an answer within days is fine"),
    Urgency.URGENT: N_("Urgent: I need help soon"),
    Urgency.DANGER: N_("I am in danger now"),
}


def category_labels() -> dict[str, str]:
    """Translated labels of the report categories."""
    return {value.value: _(label) for value, label in CATEGORY_LABELS.items()}


def urgency_labels() -> dict[str, str]:
    """Translated labels of the urgency levels."""
    return {value.value: _(label) for value, label in URGENCY_LABELS.items()}


def place_labels() -> dict[str, str]:
    """Translated labels of where it happened, "" (not said) last."""
    labels = {value.value: _(label) for value, label in PLACE_LABELS.items()}
    labels[""] = _("I am not sure, or I prefer not to say")
    return labels


def offered_categories(settings: Settings) -> dict[str, str]:
    """The categories the report form offers, in the deployment's order, translated."""
    labels = category_labels()
    offered = settings.report_categories or tuple(c.value for c in Category)
    return {value: labels[value] for value in offered if value in labels}


@dataclass(frozen=True)
class DeskChoice:
    """A desk as the report form shows it, in the page's language."""

    id: str
    name: str
    serves: str
    #: The languages the desk reads, each in its own name, as a list in the page's words.
    languages: str
    description: str
    central: bool


def desk_name(desk: Desk, language: str) -> str:
    """A desk's name in ``language`` (the built-in desk's is in the catalogs)."""
    return _("The response team") if desk.is_builtin else desk.text("name", language)


def desk_choices(settings: Settings) -> list[DeskChoice]:
    """The desks a source chooses among, in the configured order; none when the drop
    has one desk (its reports go there without asking)."""
    if len(settings.desks) < 2:
        return []
    language = str(get_locale())
    return [
        DeskChoice(
            desk.id,
            desk_name(desk, language),
            desk.text("serves", language),
            _language_list(desk.languages, language),
            desk.text("description", language),
            desk.central,
        )
        for desk in settings.desks
    ]


def _language_list(codes: Sequence[str], language: str) -> str:
    """Languages named in their own words (``Français, فارسی``), listed as ``language``
    lists things; a code Babel does not know is shown as it is."""
    names = []
    for code in codes:
        try:
            names.append(language_name(code.replace("-", "_")))
        except (ValueError, UnknownLocaleError):
            names.append(code)
    return format_list(names, locale=language) if names else ""


def report_form_context() -> dict[str, Any]:
    """What the report form shows besides the typed text: the choices and their labels."""
    settings = service(current_app, SETTINGS, Settings)
    choices = desk_choices(settings)
    central = central_desk(settings) if choices else None
    language = str(get_locale())
    return {
        "categories": offered_categories(settings),
        "urgencies": urgency_labels(),
        "places": place_labels(),
        "projects": [*PROJECT_NAMES, _(AFFILIATE_WIKI)],
        "desks": choices,
        "central_desk_name": desk_name(central, language) if central else "",
        "only_desk_name": "" if choices else _single_desk_name(settings, language),
    }


def _single_desk_name(settings: Settings, language: str) -> str:
    """The name of a drop's one desk when an operator gave it one ("" for the built-in
    desk, whose page says "the response team" in its own sentence)."""
    if not settings.desks or settings.desks[0].is_builtin:
        return ""
    return settings.desks[0].text("name", language)


__all__ = [
    "CATEGORY_LABELS",
    "PLACE_LABELS",
    "URGENCY_LABELS",
    "DeskChoice",
    "category_labels",
    "desk_choices",
    "desk_name",
    "offered_categories",
    "place_labels",
    "report_form_context",
    "urgency_labels",
]
