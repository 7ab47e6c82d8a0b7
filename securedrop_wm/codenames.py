"""Codenames: diceware words drawn with ``secrets``; designations for responders.

A codename is the source's only credential. It is shown once and never stored: the
server keeps only what Argon2id derives from it (see :mod:`securedrop_wm.kdf`).
"""

from __future__ import annotations

import math
import secrets
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import NewType

from .errors import CodenameError

Codename = NewType("Codename", str)
Designation = NewType("Designation", str)

MIN_BITS = 90.0

# Word lists shipped by the `diceware` package, by codename language. Each is checked at
# load: duplicates dropped, at least 4,096 distinct words.
_WORDLIST_FILES = {
    "en": "wordlist_en_eff.txt",
    "es": "wordlist_es.txt",
    "fr": "wordlist_fr.txt",
    "de": "wordlist_de.txt",
    "it": "wordlist_it.txt",
    "pt_BR": "wordlist_pt-br.txt",
    "ca": "wordlist_ca.txt",
}


@dataclass(frozen=True)
class Wordlist:
    """A diceware list with the lookup structures codenames need."""

    language: str
    words: tuple[str, ...]
    index: frozenset[str]

    @property
    def bits_per_word(self) -> float:
        """Entropy of one uniformly drawn word, from the list's real size."""
        return math.log2(len(self.words))


def available_languages() -> tuple[str, ...]:
    """Languages a codename can be drawn in."""
    return tuple(_WORDLIST_FILES)


@cache
def load_wordlist(language: str = "en") -> Wordlist:
    """Load and validate the diceware list for ``language``.

    :raises CodenameError: if there is no list for the language or it is unfit.
    """
    try:
        name = _WORDLIST_FILES[language]
    except KeyError:
        raise CodenameError(f"no codename word list for language {language!r}") from None
    text = resources.files("diceware").joinpath("wordlists", name).read_text("utf-8")
    # A list may repeat a word once case is folded; entropy counts distinct words only.
    words = tuple(
        dict.fromkeys(_normalize(line.split()[-1]) for line in text.splitlines() if line.strip())
    )
    if len(words) < 4096:
        raise CodenameError(f"word list {name} is unfit: only {len(words)} distinct words")
    index = frozenset(words)
    return Wordlist(language, words, index)


def codename_bits(words: int, language: str = "en") -> float:
    """Entropy in bits of a codename of ``words`` words in ``language``."""
    return words * load_wordlist(language).bits_per_word


def generate_codename(words: int = 7, language: str = "en") -> Codename:
    """Draw a codename of ``words`` words with ``secrets``.

    :raises CodenameError: if that many words carry fewer than 90 bits.
    """
    wordlist = load_wordlist(language)
    if words * wordlist.bits_per_word < MIN_BITS:
        raise CodenameError(
            f"{words} words of the {language} list carry only "
            f"{words * wordlist.bits_per_word:.1f} bits; at least {MIN_BITS:.0f} are required"
        )
    return Codename(" ".join(secrets.choice(wordlist.words) for _ in range(words)))


def parse_codename(text: str, words: int = 7) -> Codename:
    """Normalize what a source typed into a codename, or refuse it.

    Case, surrounding and repeated whitespace and Unicode composition are forgiven; every
    word must be from one of the shipped lists.

    :raises CodenameError: when the text cannot be a codename.
    """
    parts = _normalize(text).split()
    if len(parts) != words or len(text) > 40 * words:
        raise CodenameError(f"a codename has exactly {words} words")
    for language in _WORDLIST_FILES:
        index = load_wordlist(language).index
        if all(p in index for p in parts):
            return Codename(" ".join(parts))
    raise CodenameError("the codename contains a word that is not in any word list")


def generate_designation() -> Designation:
    """A random, human-friendly name for responders ("sturdy lantern"), not derived from
    the codename, so knowing one tells nothing about the other."""
    base = resources.files("diceware").joinpath("wordlists")
    adjectives = base.joinpath("wordlist_en_adjectives.txt").read_text("utf-8").split()
    nouns = base.joinpath("wordlist_en_nouns.txt").read_text("utf-8").split()
    return Designation(f"{secrets.choice(adjectives)} {secrets.choice(nouns)}")


def _normalize(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().casefold()
