"""The catalog check: every shipped language has every string of its UI (the source UI and
the responders' journalist UI), translated, not fuzzy, with the placeholders of the
original, and each template matches the code."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.plurals import get_plural
from babel.messages.pofile import write_po

from securedrop_wm.settings import Settings
from securedrop_wm.translations import load_translations
from tests.i18n.catalogs import (
    ROOT,
    catalog_problems,
    extracted_ids,
    plural_problems,
    read_catalog,
    template_ids,
)

SOURCE_UI = ROOT / "source_ui"
TRANSLATIONS = SOURCE_UI / "translations"
# English is the language of the code; every other offered language ships a catalog.
TRANSLATED = tuple(lang for lang in Settings.languages if lang != "en")
# The responders' UI, on the workstation: the languages of the response team.
JOURNALIST_TRANSLATED = ("ar", "es", "fa", "fr", "id", "pt_BR", "ru", "tr", "uk")
CATALOGS = [("source_ui", lang) for lang in TRANSLATED] + [
    ("journalist_ui", lang) for lang in JOURNALIST_TRANSLATED
]
UPDATE = "see docs/translations.md, 'When the text of a UI changes'"
UIS = ("source_ui", "journalist_ui")
# A plural message of the source UI, for the tests that break a catalog on purpose.
FILES = (
    "%(num)d file was encrypted and stored with it.",
    "%(num)d files were encrypted and stored with it.",
)


def template_of(ui: str) -> Catalog:
    return read_catalog(ROOT / ui / "translations" / "messages.pot")


@pytest.mark.parametrize("ui", ["source_ui", "journalist_ui"])
def test_template_has_every_string_the_code_uses(ui: str) -> None:
    in_code = extracted_ids(ROOT / ui)
    in_template = template_ids(template_of(ui))
    assert not in_code - in_template, f"strings missing from {ui} messages.pot ({UPDATE})"
    assert not in_template - in_code, f"{ui} messages.pot has strings the code dropped"


@pytest.mark.parametrize(
    ("ui", "languages"), [("source_ui", TRANSLATED), ("journalist_ui", JOURNALIST_TRANSLATED)]
)
def test_every_offered_language_ships_a_catalog_and_no_other(
    ui: str, languages: tuple[str, ...]
) -> None:
    shipped = {p.name for p in (ROOT / ui / "translations").iterdir() if p.is_dir()}
    assert shipped == set(languages)
    assert len(Settings.languages) >= 22


@pytest.mark.parametrize(("ui", "lang"), CATALOGS)
def test_catalog_is_complete_and_placeholders_match(ui: str, lang: str) -> None:
    po = ROOT / ui / "translations" / lang / "LC_MESSAGES" / "messages.po"
    catalog = read_catalog(po, locale=lang)
    assert str(catalog.locale) == lang
    assert catalog_problems(template_of(ui), catalog, lang) == []


@pytest.mark.parametrize("lang", TRANSLATED)
def test_danger_label_is_quoted_as_the_form_shows_it(lang: str) -> None:
    # The safety guide tells the source which urgency to pick: it must name the label
    # the form really shows, word for word.
    t = load_translations(TRANSLATIONS, lang)
    label = t.gettext("I am in danger now")
    advice = t.gettext('Send a report marked "I am in danger now".')
    assert label != "I am in danger now"
    assert label in advice


def test_the_templates_have_plural_messages() -> None:
    # The check below walks the templates' plural messages: it must have some to walk.
    assert any(m.id and m.pluralizable for ui in UIS for m in template_of(ui))


@pytest.mark.parametrize(("ui", "lang"), CATALOGS)
def test_every_plural_message_takes_the_form_cldr_picks_for_every_count(ui: str, lang: str) -> None:
    # Each plural message, for 0, 1, 2, 21, a million and more, through the loader the
    # UI uses: the form the catalog's Plural-Forms picks is the one CLDR's rule picks,
    # it formats, and it is not English.
    directory = ROOT / ui / "translations"
    catalog = read_catalog(directory / lang / "LC_MESSAGES" / "messages.po", locale=lang)
    assert plural_problems(template_of(ui), catalog, directory, lang) == []


def _forms(lang: str) -> tuple[str, ...]:
    po = TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"
    return read_catalog(po, locale=lang)[FILES[0]].string


def _catalog_with(tmp_path: Path, lang: str, plural_forms: str, forms: tuple[str, ...]) -> Catalog:
    """The shipped ``lang`` catalog with another Plural-Forms and other forms for
    :data:`FILES`, written under ``tmp_path`` for the loader."""
    catalog = read_catalog(TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po", locale=lang)
    catalog.mime_headers = [("Plural-Forms", plural_forms)]
    catalog[FILES[0]].string = forms
    po = tmp_path / lang / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    with po.open("wb") as f:
        write_po(f, catalog)
    return read_catalog(po, locale=lang)


def test_the_plural_check_refuses_a_catalog_without_the_million_form(tmp_path: Path) -> None:
    # French as it was with Babel 2.18: two forms, a million files took the general one.
    one, _many, other = _forms("fr")
    old = _catalog_with(tmp_path, "fr", "nplurals=2; plural=(n > 1);", (one, other))
    template = template_of("source_ui")
    assert "Plural-Forms has 2 forms; fr has 3" in catalog_problems(template, old, "fr")
    problems = plural_problems(template, old, tmp_path, "fr")
    assert any(p.endswith("2 forms; fr has 3 (['one', 'many', 'other'])") for p in problems)
    assert any("n=2: got" in p and "not form 2 (other)" in p for p in problems)


def test_the_plural_check_refuses_a_million_form_copied_from_the_general_one(
    tmp_path: Path,
) -> None:
    one, _many, other = _forms("fr")
    copied = _catalog_with(tmp_path, "fr", get_plural("fr").plural_forms, (one, other, other))
    problems = plural_problems(template_of("source_ui"), copied, tmp_path, "fr")
    assert problems == [f"{FILES!r}: the 'many' form (millions) is a copy of 'other'"]


def test_the_plural_check_refuses_a_plural_expression_cldr_does_not_have(
    tmp_path: Path,
) -> None:
    # Arabic as it was with Babel 2.18: six forms, as now, but 11 to 99 (CLDR's "many")
    # took the last form and 100 to 102 the fifth, the other way round from CLDR's order.
    zero, one, two, few, many, other = _forms("ar")
    old = _catalog_with(
        tmp_path,
        "ar",
        "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 : "
        "n%100>=0 && n%100<=2 ? 4 : 5);",
        (zero, one, two, few, other, many),
    )
    # The count of forms is right: only rendering each count finds it.
    assert catalog_problems(template_of("source_ui"), old, "ar") == []
    problems = plural_problems(template_of("source_ui"), old, tmp_path, "ar")
    assert any("n=11: got" in p and "not form 4 (many)" in p for p in problems)
    assert any("n=100: got" in p and "not form 5 (other)" in p for p in problems)


def test_the_check_catches_a_missing_string_and_a_broken_placeholder() -> None:
    # A catalog with one string dropped and one placeholder misspelt must be refused:
    # proof that the check above can fail.
    broken = read_catalog(TRANSLATIONS / "fr" / "LC_MESSAGES" / "messages.po", locale="fr")
    broken.delete("Stay safe")
    broken["Sent on %(date)s"].string = "Envoyée le %(dat)s"
    broken["Your codename"].flags.add("fuzzy")
    problems = catalog_problems(template_of("source_ui"), broken, "fr")
    assert any(p.startswith("missing: 'Stay safe'") for p in problems)
    assert any("'Sent on %(date)s': placeholders" in p for p in problems)
    assert any(p.startswith("fuzzy") and "Your codename" in p for p in problems)
