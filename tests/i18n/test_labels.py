"""The words each UI shows for the stored values of securedrop_wm.vocabulary: every value
has a label in every language of every UI that shows it, and the responders see labels,
never the stored keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest
from babel.support import NullTranslations
from flask.testing import FlaskClient

from journalist_ui import labels as journalist_labels
from securedrop_wm.drop import Drop
from securedrop_wm.translations import load_translations
from securedrop_wm.vocabulary import CaseStatus, Category, Place, Urgency, Vocabulary
from source_ui.views import report_form as source_labels
from tests.i18n.catalogs import ROOT
from tests.i18n.test_catalogs import JOURNALIST_TRANSLATED, TRANSLATED
from tests.workstation.fixtures import Station, export, import_through_ui, login, source_reports

MISSING = "\x00missing"

# (UI, vocabulary, its label table in that UI, the languages of that UI)
TABLES = [
    ("source_ui", Category, source_labels.CATEGORY_LABELS, TRANSLATED),
    ("source_ui", Urgency, source_labels.URGENCY_LABELS, TRANSLATED),
    ("source_ui", Place, source_labels.PLACE_LABELS, TRANSLATED),
    ("journalist_ui", Place, journalist_labels.PLACE_LABELS, JOURNALIST_TRANSLATED),
    ("journalist_ui", Category, journalist_labels.CATEGORY_LABELS, JOURNALIST_TRANSLATED),
    ("journalist_ui", Urgency, journalist_labels.URGENCY_LABELS, JOURNALIST_TRANSLATED),
    ("journalist_ui", CaseStatus, journalist_labels.STATUS_LABELS, JOURNALIST_TRANSLATED),
]


class _Missing(NullTranslations):
    """A fallback that tells a message the catalog lacks (or has fuzzy) from one it has."""

    def gettext(self, message: str) -> str:
        return MISSING


@pytest.mark.parametrize(
    ("ui", "vocabulary", "table", "languages"),
    TABLES,
    ids=[f"{ui}-{vocabulary.__name__}" for ui, vocabulary, _t, _l in TABLES],
)
def test_every_value_has_a_label_in_every_language_of_the_ui(
    ui: str,
    vocabulary: type[Vocabulary],
    table: Mapping[Vocabulary, str],
    languages: tuple[str, ...],
) -> None:
    assert list(table) == list(vocabulary), f"{ui} labels {vocabulary.__name__} partly"
    for lang in languages:
        translations = load_translations(ROOT / ui / "translations", lang)
        translations.add_fallback(_Missing())
        shown = {value: translations.gettext(english) for value, english in table.items()}
        missing = [value.value for value, label in shown.items() if label == MISSING]
        assert missing == [], f"{ui} {lang} has no label for {missing}"
        # Two values shown alike could not be told apart in a list or a filter.
        assert len(set(shown.values())) == len(shown), f"{ui} {lang}: {shown}"


def _cells(html: str) -> list[str]:
    """Each table cell's text, without the tags inside it (a badge, a link)."""
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html, re.S)
    return [re.sub(r"<[^>]+>", "", c).strip() for c in cells]


def test_responders_see_labels_in_their_language_not_stored_keys(
    ws_client: FlaskClient, station: Station, drop: Drop, tmp_path: Path
) -> None:
    # Given a source in danger who reported government surveillance, imported
    source_reports(drop, category="surveillance", urgency="danger")
    login(ws_client, station)
    import_through_ui(ws_client, export(drop, tmp_path))
    # When a French-speaking responder opens the case list
    french = {"Accept-Language": "fr"}
    listing = ws_client.get("/", headers=french).text
    # Then the row says what the case is in French, and no stored key shows
    cells = _cells(listing)
    assert "Surveillance ou pression gouvernementale" in cells
    assert "En danger maintenant" in cells
    assert "nouveau" in cells
    assert not {"surveillance", "danger", "new"} & set(cells)
    # and the filters offer labels while sending the stored values
    assert '<option value="surveillance" >Surveillance ou pression gouvernementale' in listing
    assert '<option value="danger" >En danger maintenant</option>' in listing
    # and the case page says the same
    case_url = re.search(r'href="(/cases/\d+)"', listing)
    assert case_url
    page = ws_client.get(case_url.group(1), headers=french).text
    assert "<strong>nouveau</strong>" in page
    assert '<strong class="urgency-danger">En danger maintenant</strong>' in page
    heading = re.search(r"<h3>(.*?)</h3>", page, re.S)
    assert heading
    words = re.sub(r"<[^>]+>", "", heading.group(1))
    assert "Surveillance ou pression gouvernementale" in words
    assert "En danger maintenant" in words
    assert "· surveillance" not in words and ": danger" not in words
