"""Codenames: enough entropy, drawn fresh each time, forgiving of how a source types."""

from __future__ import annotations

import math

import pytest

from securedrop_wm.codenames import (
    MIN_BITS,
    available_wordlists,
    codename_bits,
    draw_codename,
    generate_codename,
    generate_designation,
    load_wordlist,
    parse_codename,
    words_for,
)
from securedrop_wm.errors import CodenameError


@pytest.mark.parametrize("language", available_wordlists())
def test_every_list_gives_at_least_90_bits_at_the_default_length(language: str) -> None:
    wordlist = load_wordlist(language)
    count = words_for(language, 7)
    # Entropy from the real count of distinct words, not from the list's nominal size.
    assert len(set(wordlist.words)) == len(wordlist.words)
    assert codename_bits(count, language) == pytest.approx(count * math.log2(len(wordlist.words)))
    assert codename_bits(count, language) >= MIN_BITS
    codename = generate_codename(count, language)
    assert all(word in wordlist.index for word in codename.split())


def test_too_short_a_codename_is_lengthened_to_90_bits() -> None:
    # A short list, or a deployment asking for fewer words: more words, never fewer bits.
    for language, base in (("en", 6), ("vi", 7)):
        count = len(generate_codename(base, language).split())
        assert count > base and codename_bits(count, language) >= MIN_BITS
        assert codename_bits(count - 1, language) < MIN_BITS


def test_codenames_do_not_repeat() -> None:
    assert len({generate_codename() for _ in range(200)}) == 200


def test_typing_variations_are_forgiven_but_foreign_words_are_not() -> None:
    codename = generate_codename()
    assert parse_codename("  " + codename.upper().replace(" ", "   ") + "\n") == codename
    with pytest.raises(CodenameError):
        parse_codename(codename.rsplit(" ", 1)[0] + " notawordxyz")
    with pytest.raises(CodenameError):
        parse_codename(codename.rsplit(" ", 1)[0])


def test_a_codename_drawn_in_one_list_is_typed_back_from_any_page() -> None:
    # A source may switch lists on the codename page: login knows every list.
    for language in available_wordlists():
        drawn = draw_codename(language)
        assert parse_codename(drawn.text) == drawn.codename
        assert parse_codename(drawn.text.upper()) == drawn.codename
    # Words of two lists mixed are no codename.
    mixed = draw_codename("ar").text.split()[:4] + draw_codename("ru").text.split()[:3]
    with pytest.raises(CodenameError):
        parse_codename(" ".join(mixed))


def test_designations_are_random_and_not_the_codename() -> None:
    designations = {generate_designation() for _ in range(50)}
    assert len(designations) > 45
    assert all(len(d.split()) == 2 for d in designations)
