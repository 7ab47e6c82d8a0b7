"""Response desks: who reads a report (docs/configuration.md, ``[[desks]]``).

A drop hosts one or more desks, each with its own team and responder keys, its own
workstation (its signing key pinned) and its own transfer tokens. A source chooses the
desk; the report is encrypted to that desk's keys only, and also to the central desk if
the source asks. A drop without ``[[desks]]`` has one built-in desk made of the
top-level keys (:data:`BUILTIN_ID`), so an existing drop needs no change.

Which desk a pending report is for is kept in the server's database only while the
report is pending (``submission_desks``, docs/threat-model.md), never in store paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .config import fingerprint
from .errors import SettingsError, UnknownDeskError
from .translations import foreign_text
from .vocabulary import Category

if TYPE_CHECKING:
    from .settings import Settings

#: The id of the desk a drop without ``[[desks]]`` has; also what rows stored before
#: desks existed (migration 0007) say, read as the first desk's.
BUILTIN_ID = "default"
#: The built-in desk's name, translated by the UI when it shows this exact text.
BUILTIN_NAME = "The response team"
DESK_ID = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
#: The keys a ``[[desks]]`` table may hold (the texts are tables of languages).
DESK_KEYS = (
    "id",
    "central",
    "team_fingerprint",
    "responder_fingerprints",
    "workstation_fingerprint",
    "languages",
    "name",
    "description",
    "serves",
)
_TEXTS = {"name": "names", "description": "descriptions", "serves": "serves"}
_LANGUAGE = re.compile(r"^[A-Za-z]{2,8}(?:[_-][A-Za-z0-9]{1,8})*$")
MAX_TEXT_CHARS = 1000


@dataclass(frozen=True)
class Desk:
    """One response desk: who they are (operator text per language) and their keys."""

    id: str
    names: Mapping[str, str]
    descriptions: Mapping[str, str] = field(default_factory=dict)
    serves: Mapping[str, str] = field(default_factory=dict)
    languages: tuple[str, ...] = ()
    central: bool = False
    # None only on a server loaded for key administration before the team key is set.
    team_fingerprint: str = ""
    #: The team key first, then the others: every recipient of this desk's reports.
    responder_fingerprints: tuple[str, ...] = ()
    workstation_fingerprint: str | None = None

    def text(self, what: Literal["name", "description", "serves"], language: str) -> str:
        """The operator's text in ``language``, else its base language (``pt`` for
        ``pt_BR``), else English, else ""."""
        texts: Mapping[str, str] = getattr(self, _TEXTS[what])
        base = re.split(r"[_-]", language, maxsplit=1)[0]
        for candidate in (language, language.replace("_", "-"), base, "en"):
            if texts.get(candidate):
                return texts[candidate]
        return ""

    @property
    def is_builtin(self) -> bool:
        """Whether this is the implicit single desk of a drop without ``[[desks]]``."""
        return self.id == BUILTIN_ID and self.names == {"en": BUILTIN_NAME}


def builtin_desk(team: str | None, responders: tuple[str, ...], workstation: str | None) -> Desk:
    """The one desk of a drop configured with top-level keys only."""
    return Desk(
        id=BUILTIN_ID,
        names={"en": BUILTIN_NAME},
        central=True,
        team_fingerprint=team or "",
        responder_fingerprints=responders,
        workstation_fingerprint=workstation,
    )


def parse_desks(raw: object, languages: Sequence[str]) -> tuple[Desk, ...]:
    """The ``[[desks]]`` tables of config.toml as desks, validated.

    :raises SettingsError: naming the desk and the setting that is wrong.
    """
    if not isinstance(raw, list) or not raw or not all(isinstance(d, Mapping) for d in raw):
        raise SettingsError("setting 'desks' must be one or more [[desks]] tables")
    desks = [_parse_desk(i, table) for i, table in enumerate(raw)]
    seen: set[str] = set()
    for desk in desks:
        if desk.id in seen:
            raise SettingsError(f"desk '{desk.id}' is configured twice: desk ids are unique")
        seen.add(desk.id)
    central = [d.id for d in desks if d.central]
    if len(central) > 1:
        raise SettingsError(f"only one desk may be central, not {', '.join(central)}")
    stations = [d.workstation_fingerprint for d in desks if d.workstation_fingerprint]
    if len(stations) != len(set(stations)):
        raise SettingsError(
            "two desks have the same workstation_fingerprint: each desk has its own "
            "workstation (its bundle sequence and acknowledgements are its own)"
        )
    del languages  # a desk may read a language the source UI has no catalog for
    return tuple(desks)


def _parse_desk(index: int, table: Mapping[str, Any]) -> Desk:
    desk_id = table.get("id")
    where = f"desks[{index}]"
    if not isinstance(desk_id, str) or not DESK_ID.match(desk_id):
        raise SettingsError(
            f"setting '{where}.id' must be 1 to 32 lower-case letters, digits or dashes, "
            "starting with a letter"
        )
    where = f"desk '{desk_id}'"
    for key in table:
        if key not in DESK_KEYS:
            raise SettingsError(f"unknown setting '{key}' in {where}")
    central = table.get("central", False)
    if not isinstance(central, bool):
        raise SettingsError(f"setting 'central' of {where} must be true or false")
    team = table.get("team_fingerprint")
    if not isinstance(team, str) or not team:
        raise SettingsError(f"{where} has no team_fingerprint (its team key)")
    team_fpr = fingerprint(team, f"{where}: team_fingerprint")
    others = table.get("responder_fingerprints", [])
    if not isinstance(others, list) or not all(isinstance(f, str) for f in others):
        raise SettingsError(f"setting 'responder_fingerprints' of {where} must be a list")
    responders = [team_fpr]
    for f in others:
        fpr = fingerprint(f, f"{where}: responder_fingerprints")
        if fpr not in responders:
            responders.append(fpr)
    station = table.get("workstation_fingerprint")
    if station is not None and not isinstance(station, str):
        raise SettingsError(f"setting 'workstation_fingerprint' of {where} must be a string")
    languages = table.get("languages", [])
    if not isinstance(languages, list) or not all(
        isinstance(x, str) and _LANGUAGE.match(x) for x in languages
    ):
        raise SettingsError(f"setting 'languages' of {where} must be a list of language codes")
    texts = {what: _texts(table.get(what), what, where) for what in _TEXTS}
    if not texts["name"].get("en"):
        raise SettingsError(f'{where} needs a name in English: [desks.name] en = "..."')
    return Desk(
        id=desk_id,
        names=texts["name"],
        descriptions=texts["description"],
        serves=texts["serves"],
        languages=tuple(languages),
        central=central,
        team_fingerprint=team_fpr,
        responder_fingerprints=tuple(responders),
        workstation_fingerprint=(
            fingerprint(station, f"{where}: workstation_fingerprint") if station else None
        ),
    )


def _texts(raw: object, what: str, where: str) -> dict[str, str]:
    """One operator text per language, held to the catalogs' rule: no markup, no URL,
    e-mail address, domain or onion address (translations.foreign_text)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise SettingsError(f"setting '{what}' of {where} must be a table of languages")
    out: dict[str, str] = {}
    for language, text in raw.items():
        if not _LANGUAGE.match(language) or not isinstance(text, str):
            raise SettingsError(f"setting '{what}.{language}' of {where} must be a text")
        if len(text) > MAX_TEXT_CHARS:
            raise SettingsError(
                f"setting '{what}.{language}' of {where} is longer than {MAX_TEXT_CHARS} characters"
            )
        found = foreign_text("", text)
        if found:
            raise SettingsError(
                f"setting '{what}.{language}' of {where} holds {found[0]}: operator text "
                "may hold no markup, link, address or domain (docs/configuration.md)"
            )
        out[language] = text.strip()
    return out


def parse_categories(raw: object) -> tuple[str, ...]:
    """``report_categories``: a subset of the categories, in the order to offer them.

    :raises SettingsError: naming a value that is no category, or one given twice.
    """
    if raw is None:
        return tuple(c.value for c in Category)
    if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
        raise SettingsError("setting 'report_categories' must be a non-empty list of categories")
    for value in raw:
        if not Category.has(value):
            raise SettingsError(
                f"setting 'report_categories': {value!r} is no category (one of "
                f"{', '.join(c.value for c in Category)})"
            )
    if len(set(raw)) != len(raw):
        raise SettingsError("setting 'report_categories' names a category twice")
    return tuple(raw)


# -- what the core asks --------------------------------------------------------------


def central_desk(settings: Settings) -> Desk | None:
    """The desk a source may also send to ("also send to the central desk"), if any."""
    return next((d for d in settings.desks if d.central), None)


def desk_by_id(settings: Settings, desk_id: str) -> Desk:
    """The desk ``desk_id``.

    :raises UnknownDeskError: no desk has this id.
    """
    for desk in settings.desks:
        if desk.id == desk_id:
            return desk
    raise UnknownDeskError("choose who reads your report")


def only_desk(settings: Settings) -> Desk | None:
    """The desk of a drop that has one, else None."""
    return settings.desks[0] if len(settings.desks) == 1 else None


def route(settings: Settings, chosen: str | None, also_central: bool) -> tuple[str, ...]:
    """The desk ids a new report goes to: ``chosen`` (None only on a drop with one desk)
    and the central desk if ``also_central``. Deduplicated, sorted.

    :raises UnknownDeskError: ``chosen`` is no desk, or None on a drop with several.
    """
    if chosen is None:
        single = only_desk(settings)
        if single is None:
            raise UnknownDeskError("choose who reads your report")
        chosen = single.id
    ids = {desk_by_id(settings, chosen).id}
    central = central_desk(settings)
    if also_central and central is not None:
        ids.add(central.id)
    return tuple(sorted(ids))


def check_route(settings: Settings, desk_ids: Sequence[str] | None) -> tuple[str, ...]:
    """``desk_ids`` validated, deduplicated and sorted; None: the only desk.

    :raises UnknownDeskError: a desk id is not configured, none is given, or None on a
        drop with several desks.
    """
    if desk_ids is None:
        return route(settings, None, False)
    ids = tuple(sorted({desk_by_id(settings, d).id for d in desk_ids}))
    if not ids:
        raise UnknownDeskError("choose who reads your report")
    return ids


def recipients(settings: Settings, desk_ids: Sequence[str]) -> tuple[str, ...]:
    """Every responder key of the desks ``desk_ids`` (order-stable, no duplicates).

    :raises UnknownDeskError: a desk id is not configured.
    """
    out: list[str] = []
    for desk_id in desk_ids:
        for fpr in desk_by_id(settings, desk_id).responder_fingerprints:
            if fpr not in out:
                out.append(fpr)
    return tuple(out)


def stored_ids(settings: Settings, desk_id: str) -> tuple[str, ...]:
    """The values the database may hold for ``desk_id``: rows written before desks
    existed say ``"default"``, which is the first desk's when no desk has that id."""
    ids = [desk_id]
    configured = {d.id for d in settings.desks}
    if desk_id == settings.desks[0].id and BUILTIN_ID not in configured:
        ids.append(BUILTIN_ID)
    return tuple(ids)


def stored_as(settings: Settings, stored: str) -> str | None:
    """The configured desk a stored desk id names (see :func:`stored_ids`), or None."""
    for desk in settings.desks:
        if stored in stored_ids(settings, desk.id):
            return desk.id
    return None


__all__ = [
    "BUILTIN_ID",
    "BUILTIN_NAME",
    "DESK_ID",
    "Desk",
    "builtin_desk",
    "central_desk",
    "check_route",
    "desk_by_id",
    "only_desk",
    "parse_categories",
    "parse_desks",
    "recipients",
    "route",
    "stored_as",
    "stored_ids",
]
