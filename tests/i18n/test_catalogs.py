"""The catalog check: every shipped language has every string of its UI (the source UI and
the responders' journalist UI), translated, not fuzzy, with the placeholders of the
original, and each template matches the code."""

from __future__ import annotations

import pytest
from babel.messages.catalog import Catalog

from securedrop_wm.settings import Settings
from securedrop_wm.translations import load_translations
from tests.i18n.catalogs import (
    ROOT,
    catalog_problems,
    extracted_ids,
    read_catalog,
    template_ids,
)

SOURCE_UI = ROOT / "source_ui"
TRANSLATIONS = SOURCE_UI / "translations"
# English is the language of the code; every other offered language ships a catalog.
TRANSLATED = tuple(lang for lang in Settings.languages if lang != "en")
# The responders' UI, on the workstation: the languages of the response team.
JOURNALIST_TRANSLATED = ("ar", "es", "fr", "pt_BR")
CATALOGS = [("source_ui", lang) for lang in TRANSLATED] + [
    ("journalist_ui", lang) for lang in JOURNALIST_TRANSLATED
]
UPDATE = "see docs/translations.md, 'When the text of a UI changes'"


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
    advice = t.gettext(
        'Send a report marked "I am in danger now": the response team is alerted to urgent reports.'
    )
    assert label != "I am in danger now"
    assert label in advice


@pytest.mark.parametrize("lang", TRANSLATED)
def test_plural_forms_format_for_every_count(lang: str) -> None:
    # Each count picks a form through the catalog's own Plural-Forms expression; every
    # form it can pick must format, and none may fall back to English.
    t = load_translations(TRANSLATIONS, lang)
    singular = "%(num)d file was encrypted and stored with it."
    plural = "%(num)d files were encrypted and stored with it."
    for n in (0, 1, 2, 3, 5, 11, 21, 22, 25, 100, 101, 102, 111):
        text = t.ngettext(singular, plural, n) % {"num": n}
        assert "%" not in text and text not in (singular % {"num": n}, plural % {"num": n})


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
