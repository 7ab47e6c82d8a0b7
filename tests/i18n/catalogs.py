"""Checks a gettext catalog against its template: what a translator can get wrong in a way
a reader would notice (a missing string, an English fallback, a broken placeholder)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
BABEL_CFG = ROOT / "babel.cfg"

# printf-style conversions, named or not: %(num)d, %s, %.2f, and the escaped %%.
PLACEHOLDER = re.compile(r"%(?:\([^)]*\))?[#0 +-]*(?:\d+|\*)?(?:\.\d+)?[diouxXeEfFgGcrsa%]")


def placeholders(text: str) -> Counter[str]:
    """The placeholders of ``text``, with their counts."""
    return Counter(PLACEHOLDER.findall(text))


def read_catalog(path: Path, locale: str | None = None) -> Catalog:
    """Parse a ``.po`` or ``.pot`` file."""
    with path.open("rb") as f:
        return read_po(f, locale=locale)


def extracted_ids(ui_dir: Path) -> set[str | tuple[str, str]]:
    """The message ids the code of ``ui_dir`` uses now, extracted as ``pybabel`` would."""
    with BABEL_CFG.open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    ids: set[str | tuple[str, str]] = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(ui_dir), method_map, options_map
    ):
        ids.add(message if isinstance(message, str) else (message[0], message[1]))
    return ids


def template_ids(template: Catalog) -> set[str | tuple[str, str]]:
    """The message ids of a template, in the form :func:`extracted_ids` gives."""
    return {_key(m) for m in template if m.id}


def catalog_problems(template: Catalog, catalog: Catalog, locale: str) -> list[str]:
    """Everything wrong with ``catalog`` (for ``locale``) against ``template``; empty if
    nothing is."""
    problems: list[str] = []
    expected_plurals = get_plural(locale).num_plurals
    if catalog.num_plurals != expected_plurals:
        problems.append(
            f"Plural-Forms has {catalog.num_plurals} forms; {locale} has {expected_plurals}"
        )
    for wanted in template:
        if not wanted.id:
            continue
        found = catalog.get(wanted.id)
        label = repr(_key(wanted))
        if found is None:
            problems.append(f"missing: {label}")
        elif found.fuzzy:
            problems.append(f"fuzzy (shown in English): {label}")
        else:
            problems.extend(
                f"{label}: {p}" for p in _message_problems(wanted, found, expected_plurals)
            )
    return problems


def _message_problems(wanted: Message, found: Message, plurals: int) -> list[str]:
    if isinstance(wanted.id, str):
        text = found.string if isinstance(found.string, str) else ""
        if not text.strip():
            return ["not translated"]
        if placeholders(text) != placeholders(wanted.id):
            return [f"placeholders {dict(placeholders(text))} differ from the original's"]
        return []
    forms = found.string if isinstance(found.string, tuple) else ()
    if len(forms) != plurals or not all(f.strip() for f in forms):
        return ["plural forms not all translated"]
    allowed = placeholders(wanted.id[1])
    problems = []
    for index, form in enumerate(forms):
        used = placeholders(form)
        # A form for exactly one (or zero, two) may spell the number out; the general
        # form, the last one, must show it.
        if used - allowed or (index == len(forms) - 1 and used != allowed):
            problems.append(f"plural form {index}: placeholders {dict(used)} do not fit")
    return problems


def _key(message: Message) -> str | tuple[str, str]:
    return message.id if isinstance(message.id, str) else (message.id[0], message.id[1])
