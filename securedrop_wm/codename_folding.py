"""Folding: the one spelling of a codename that its key derivation sees.

People type the same word in several ways: capitals, decomposed accents, the Arabic or
the Persian form of yeh and kaf, with or without harakat and tatweel, with a zero-width
non-joiner or without, ё or е, a typographic apostrophe. :func:`fold` maps all of them to
one string. The word lists are deduplicated under the same fold and their entropy is
counted after it (docs/codenames.md), so forgiving a variant never costs a bit that the
entropy figures claim.

A word of the seven diceware lists (lowercase ASCII letters, ``'`` and ``-``) folds to
itself, so every codename made before folding existed still derives the same lookup id
(tests/core/test_codename_lists.py checks every word).
"""

from __future__ import annotations

import unicodedata

# Before NFKC: characters that NFKC would turn into a space and a combining mark.
_PRE = str.maketrans({"\u00b4": "'", "`": "'", "\u02cb": "'"})

# Characters that carry no letter: dropped wherever they are.
_DROPPED = frozenset(
    "\u0640"  # Arabic tatweel (kashida), typed to stretch a word
    "\u0670"  # Arabic superscript alef
    "\u061c"  # Arabic letter mark
    "\u00ad"  # soft hyphen
    "\u200b\u200c\u200d"  # zero-width space, non-joiner, joiner
    "\u200e\u200f\u2060\ufeff"  # LRM, RLM, word joiner, BOM
    "\u093c\u09bc"  # Devanagari and Bengali nukta (often left out)
    + "".join(chr(c) for c in range(0x064B, 0x0660))  # harakat, hamza above and below
    + "".join(chr(c) for c in range(0x06D6, 0x06EE))  # Quranic annotation signs
    + "".join(chr(c) for c in range(0x0591, 0x05C8) if chr(c) not in "\u05be\u05c0\u05c3\u05c6")
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))  # variation selectors
)

# One letter for the forms a keyboard or a habit gives of it.
_LETTERS = str.maketrans(
    {
        # Arabic, Persian and Urdu: yeh, alef maksura, Farsi yeh, yeh barree.
        "\u0649": "\u064a",
        "\u06cc": "\u064a",
        "\u06d2": "\u064a",
        "\u06d0": "\u064a",
        # Kaf and keheh.
        "\u06a9": "\u0643",
        "\u06aa": "\u0643",
        # Teh marbuta and the heh forms: heh goal, do-chashmi heh, heh with yeh above, ae.
        "\u0629": "\u0647",
        "\u06c3": "\u0647",
        "\u06c1": "\u0647",
        "\u06be": "\u0647",
        "\u06c0": "\u0647",
        "\u06d5": "\u0647",
        # Alef wasla and other alef forms (hamza and madda forms decompose under NFD and
        # lose their mark with the harakat).
        "\u0671": "\u0627",
        "\u0672": "\u0627",
        "\u0673": "\u0627",
        "\u0675": "\u0627",
        # Urdu noon ghunna, typed as noon on an Arabic or Persian keyboard.
        "\u06ba": "\u0646",
        # Hebrew final forms, typed as the plain letter now and then.
        "\u05da": "\u05db",
        "\u05dd": "\u05de",
        "\u05df": "\u05e0",
        "\u05e3": "\u05e4",
        "\u05e5": "\u05e6",
        # Latin letters that are not a base letter plus a mark.
        "\u0131": "i",  # Turkish dotless i: "I" casefolds to "i", not to it
        "\u0142": "l",
        "\u0111": "d",
        # Devanagari candrabindu, written as anusvara by many.
        "\u0901": "\u0902",
        # Apostrophes and hyphens.
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
        "\u02bb": "'",
        "\u2032": "'",
        "\u02b9": "'",
        "\u05f3": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2212": "-",
    }
)

# Latin letters that look like Cyrillic ones, in a word that has a Cyrillic letter.
_LATIN_TO_CYRILLIC = str.maketrans("aceopxyi", "асеорхуі")
_CYRILLIC = range(0x0400, 0x0530)
_COMBINING_LATIN = range(0x0300, 0x0370)


def fold(text: str) -> str:
    """The folded form of ``text``: words separated by single spaces.

    Case, Unicode composition and compatibility forms, the letter variants listed above,
    accents on Latin letters, ё, and characters without a letter are forgiven.
    """
    text = unicodedata.normalize("NFKC", text.translate(_PRE)).casefold()
    text = unicodedata.normalize("NFD", text)
    kept: list[str] = []
    for char in text:
        if char in _DROPPED:
            continue
        if ord(char) in _COMBINING_LATIN and kept and _drops_mark(kept[-1], char):
            continue
        kept.append(char)
    folded = unicodedata.normalize("NFC", "".join(kept).translate(_LETTERS))
    return " ".join(_unmix(word) for word in folded.split())


def _drops_mark(base: str, mark: str) -> bool:
    """Whether a combining mark after ``base`` is one people leave out: any accent on a
    Latin letter, and the diaeresis of Cyrillic ё."""
    if base < "\u0250" and base.isalpha():
        return True
    return base == "\u0435" and mark == "\u0308"


def _unmix(word: str) -> str:
    """Latin look-alikes typed inside a Cyrillic word become the Cyrillic letters."""
    if word.isascii() or not any(ord(c) in _CYRILLIC for c in word):
        return word
    return word.translate(_LATIN_TO_CYRILLIC)
