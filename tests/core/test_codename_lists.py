"""Codename word lists in the sources' own scripts: built reproducibly, entropy counted
after folding, and a codename typed back with the letter variants a keyboard gives finds
the same source, while every codename of the seven first lists logs in as before."""

from __future__ import annotations

import math
import unicodedata
from importlib import resources
from pathlib import Path

import pytest

from securedrop_wm.codename_folding import fold
from securedrop_wm.codenames import (
    MIN_BITS,
    Codename,
    available_languages,
    available_wordlists,
    codename_bits,
    direction,
    draw_codename,
    load_wordlist,
    parse_codename,
    shown_codename,
    wordlist_language_for,
    words_for,
)
from securedrop_wm.drop import Drop
from securedrop_wm.sources import create_source, login_source

BUILT = [lang for lang in available_wordlists() if lang not in available_languages()]

# The Unicode names every letter of a list's words starts with: its own script.
SCRIPTS = {
    "ar": "ARABIC LETTER",
    "fa": "ARABIC LETTER",
    "ur": "ARABIC LETTER",
    "he": "HEBREW LETTER",
    "ru": "CYRILLIC",
    "uk": "CYRILLIC",
    "hi": "DEVANAGARI",
    "bn": "BENGALI",
    "ko": "HANGUL SYLLABLE",
    "tr": "LATIN",
    "id": "LATIN",
    "pl": "LATIN",
    "vi": "LATIN",
}
# What may join two letters of a word: Persian's zero-width non-joiner, Ukrainian's apostrophe.
JOINERS = {"fa": "\u200c", "uk": "'"}


def raw_words(language: str) -> list[str]:
    """The words of a built list as its file holds them."""
    text = resources.files("securedrop_wm").joinpath("wordlists", f"{language}.txt")
    lines = text.read_text("utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def old_normalize(text: str) -> str:
    """How codenames were normalized before folding existed (NFC, trimmed, casefolded)."""
    return unicodedata.normalize("NFC", text).strip().casefold()


def test_the_source_languages_with_their_own_script_have_their_own_list() -> None:
    assert set(SCRIPTS) == set(BUILT)
    for page in ("ar", "fa", "ur", "he", "ru", "uk", "hi", "bn", "ko", "tr", "pl", "vi"):
        assert wordlist_language_for(page) == page
    # Typed through an input method, or no word-frequency data: English words.
    for page in ("ja", "zh_Hans", "zh_Hant", "my", "sw", "xx"):
        assert wordlist_language_for(page) == "en"
    assert wordlist_language_for("pt-BR") == "pt_BR"
    assert [direction(lang) for lang in ("ar", "fa", "ur", "he", "ru", "en")] == (
        ["rtl"] * 4 + ["ltr"] * 2
    )


@pytest.mark.parametrize("language", available_wordlists())
def test_every_list_carries_90_bits_after_folding(language: str) -> None:
    wordlist = load_wordlist(language)
    distinct = {fold(word) for word in wordlist.words}
    assert len(distinct) == len(wordlist.words)
    count = words_for(language, 7)
    bits = count * math.log2(len(distinct))
    assert bits >= MIN_BITS
    assert codename_bits(count, language) == pytest.approx(bits)
    # The default length where the list is long enough; more words where it is short.
    assert count == max(7, math.ceil(MIN_BITS / math.log2(len(distinct))))
    drawn = draw_codename(language, 7)
    assert len(drawn.codename.split()) == count
    assert parse_codename(drawn.text, 7) == drawn.codename


@pytest.mark.parametrize("language", BUILT)
def test_every_word_is_in_its_own_script_and_no_two_fold_alike(language: str) -> None:
    words = raw_words(language)
    for word in words:
        assert unicodedata.is_normalized("NFC", word), word
        joiner = JOINERS.get(language)
        for part in word.split(joiner) if joiner else [word]:
            assert part, word
            assert all(unicodedata.category(c)[0] in "LM" for c in part), word
            assert all(unicodedata.name(c).startswith(SCRIPTS[language]) for c in part), word
    assert len({fold(word) for word in words}) == len(words)
    assert len(load_wordlist(language).words) == len(words)


@pytest.mark.parametrize("language", BUILT)
def test_the_header_says_how_the_list_was_built(language: str) -> None:
    text = resources.files("securedrop_wm").joinpath("wordlists", f"{language}.txt")
    header = [line for line in text.read_text("utf-8").splitlines() if line.startswith("#")]
    joined = "\n".join(header)
    assert f"{len(raw_words(language))} words" in header[0]
    assert "scripts/build_wordlists.py" in joined and "wordfreq 3.1.1" in joined
    assert "CC-BY-SA 4.0" in joined and "Apache-2.0" in joined


@pytest.mark.parametrize("language", available_languages())
def test_folding_leaves_every_word_of_the_first_seven_lists_as_it_was(language: str) -> None:
    name = {
        "en": "wordlist_en_eff.txt",
        "es": "wordlist_es.txt",
        "fr": "wordlist_fr.txt",
        "de": "wordlist_de.txt",
        "it": "wordlist_it.txt",
        "pt_BR": "wordlist_pt-br.txt",
        "ca": "wordlist_ca.txt",
    }[language]
    text = resources.files("diceware").joinpath("wordlists", name).read_text("utf-8")
    raw = [line.split()[-1] for line in text.splitlines() if line.strip()]
    for word in raw:
        assert fold(word) == old_normalize(word), word
        assert fold(word.upper()) == old_normalize(word.upper()), word
    # The same words in the same order: the same codenames are drawn and typed back.
    assert load_wordlist(language).words == tuple(dict.fromkeys(map(old_normalize, raw)))
    assert words_for(language, 7) == 7


def entropy_table() -> str:
    """The table of docs/codenames.md, from the lists as shipped. Print it with
    ``.venv/bin/python -c "from tests.core.test_codename_lists import entropy_table as t;
    print(t())"``."""
    rows = [
        "| list | script | distinct words after folding | bits a word | words | bits |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for language in available_wordlists():
        wordlist = load_wordlist(language)
        count = words_for(language, 7)
        script = SCRIPTS.get(language, "LATIN").split()[0].title()
        rows.append(
            f"| {language} | {script} | {len(wordlist.words)} | "
            f"{wordlist.bits_per_word:.2f} | {count} | {count * wordlist.bits_per_word:.1f} |"
        )
    return "\n".join(rows) + "\n"


def test_the_docs_entropy_table_is_the_lists_own() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "codenames.md"
    assert entropy_table() in docs.read_text("utf-8")


def pick(language: str, letters: str, count: int = 7) -> list[str]:
    """Shown words of ``language`` that hold one of ``letters``, the first ``count``."""
    words = [w for w in load_wordlist(language).shown.values() if any(c in w for c in letters)]
    assert len(words) >= count
    return words[:count]


VARIANTS: list[tuple[str, str, dict[str, str], str]] = [
    # Arabic words typed on a Persian keyboard, with harakat, tatweel and ZWNJ.
    ("ar", "يكة", {"ي": "ی", "ك": "ک", "ة": "ه", "ا": "ـا"}, "\u064e"),
    # Persian words typed on an Arabic keyboard, with a ZWNJ added inside.
    ("fa", "یک", {"ی": "ي", "ک": "ك"}, "\u200c"),
    # Persian words written with a ZWNJ, typed without it.
    ("fa", "\u200c", {"\u200c": ""}, ""),
    # Urdu words typed on an Arabic keyboard.
    ("ur", "یکہے", {"ی": "ي", "ک": "ك", "ہ": "ه", "ے": "ي"}, ""),
    # Hebrew with niqqud.
    ("he", "אבג", {}, "\u05b7"),
    # Russian with ё for е and a Latin "a" typed for the Cyrillic one.
    ("ru", "е", {"е": "ё", "а": "a"}, ""),
    # Ukrainian with the modifier-letter apostrophe and a Latin "i" for the Cyrillic one.
    ("uk", "'", {"'": "\u02bc", "і": "i"}, ""),
    # Turkish typed on a keyboard without its letters.
    ("tr", "ışğ", {"ı": "I", "ş": "s", "ğ": "g"}, ""),
    # Vietnamese typed without its tones.
    ("vi", "ếạộ", {"ế": "e", "ạ": "a", "ộ": "o", "đ": "d"}, ""),
    # Catalan words with a typographic apostrophe.
    ("ca", "'", {"'": "\u2019"}, ""),
]


def retype(word: str, swaps: dict[str, str], insert: str) -> str:
    typed = "".join(swaps.get(c, c) for c in word)
    return typed[:1] + insert + typed[1:] if insert else typed


@pytest.mark.slow
def test_logins_typed_with_variant_letters_find_the_same_source(drop: Drop) -> None:
    for language, letters, swaps, insert in VARIANTS:
        # Given a source created from the codename as its page showed it
        words = pick(language, letters, words_for(language, 7))
        shown = " ".join(words)
        codename = parse_codename(shown)
        assert shown_codename(codename, language) == shown
        created = create_source(drop, codename)
        # When they type it back with other letter forms, marks and joiners
        typed = " ".join(retype(word, swaps, insert) for word in words)
        assert typed != shown
        # Then it is the same codename, and the same source
        assert parse_codename(typed) == codename, language
        assert login_source(drop, parse_codename(typed)) == created


@pytest.mark.slow
def test_codenames_of_the_first_seven_lists_log_in_as_before(drop: Drop) -> None:
    for language in available_languages():
        # A source created before folding existed: its codename was the normalized text.
        words = load_wordlist(language).words
        typed = "  ".join(w.upper() for w in words[100:107])
        before = Codename(" ".join(old_normalize(typed).split()))
        created = create_source(drop, before)
        assert parse_codename(typed) == before
        assert login_source(drop, parse_codename(typed)) == created
