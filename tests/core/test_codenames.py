"""Codenames: enough entropy, drawn fresh each time, forgiving of how a source types."""

from __future__ import annotations

import math

import pytest

from securedrop_wm.codenames import (
    MIN_BITS,
    available_languages,
    codename_bits,
    generate_codename,
    generate_designation,
    load_wordlist,
    parse_codename,
)
from securedrop_wm.errors import CodenameError


@pytest.mark.parametrize("language", available_languages())
def test_every_list_gives_at_least_90_bits_at_the_default_length(language: str) -> None:
    wordlist = load_wordlist(language)
    # Entropy from the real count of distinct words, not from the list's nominal size.
    assert len(set(wordlist.words)) == len(wordlist.words)
    assert codename_bits(7, language) == pytest.approx(7 * math.log2(len(wordlist.words)))
    assert codename_bits(7, language) >= MIN_BITS
    codename = generate_codename(7, language)
    assert all(word in wordlist.index for word in codename.split())


def test_too_short_a_codename_is_refused() -> None:
    with pytest.raises(CodenameError, match="bits"):
        generate_codename(6)


def test_codenames_do_not_repeat() -> None:
    assert len({generate_codename() for _ in range(200)}) == 200


def test_typing_variations_are_forgiven_but_foreign_words_are_not() -> None:
    codename = generate_codename()
    assert parse_codename("  " + codename.upper().replace(" ", "   ") + "\n") == codename
    with pytest.raises(CodenameError):
        parse_codename(codename.rsplit(" ", 1)[0] + " notawordxyz")
    with pytest.raises(CodenameError):
        parse_codename(codename.rsplit(" ", 1)[0])


def test_designations_are_random_and_not_the_codename() -> None:
    designations = {generate_designation() for _ in range(50)}
    assert len(designations) > 45
    assert all(len(d.split()) == 2 for d in designations)
