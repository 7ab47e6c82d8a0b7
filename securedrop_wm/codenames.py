"""Codenames: diceware words drawn with ``secrets``; designations for responders.

A codename is the source's only credential. It is shown once and never stored: the
server keeps only what Argon2id derives from it (see :mod:`securedrop_wm.kdf`). What is
derived is the *folded* codename (:func:`~securedrop_wm.codename_folding.fold`): the
words as the lists hold them after folding, so a source may type them back with the
letter variants their keyboard gives. The page shows each word in its own spelling
(:func:`draw_codename`). Lists, filters and entropy: docs/codenames.md.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal, NewType

from .codename_folding import fold
from .errors import CodenameError

Codename = NewType("Codename", str)
Designation = NewType("Designation", str)

MIN_BITS = 90.0

# Word lists shipped by the `diceware` package, by codename language. Each is checked at
# load: duplicates dropped, at least 4,096 distinct words. Their words fold to themselves
# (lowercase ASCII), so the codenames made from them derive as they always did.
_WORDLIST_FILES = {
    "en": "wordlist_en_eff.txt",
    "es": "wordlist_es.txt",
    "fr": "wordlist_fr.txt",
    "de": "wordlist_de.txt",
    "it": "wordlist_it.txt",
    "pt_BR": "wordlist_pt-br.txt",
    "ca": "wordlist_ca.txt",
}

# Lists built from wordfreq by scripts/build_wordlists.py, in securedrop_wm/wordlists/.
_BUILT = ("ar", "fa", "ur", "he", "ru", "uk", "hi", "bn", "ko", "tr", "id", "pl", "vi")

# Written right to left.
_RTL = frozenset({"ar", "fa", "ur", "he"})

#: The fewest distinct words a list may have after folding (10 bits a word).
MIN_WORDS = 1024


@dataclass(frozen=True)
class Wordlist:
    """A word list with the lookup structures codenames need.

    ``words`` are folded (what a codename is made of and what its derivation sees);
    ``shown`` gives each folded word's own spelling, to show on a page.
    """

    language: str
    words: tuple[str, ...]
    index: frozenset[str]
    shown: Mapping[str, str]

    @property
    def bits_per_word(self) -> float:
        """Entropy of one uniformly drawn word, from the count of distinct folded words."""
        return math.log2(len(self.words))


@dataclass(frozen=True)
class ShownCodename:
    """A new codename and how to show it.

    ``codename`` is what the session keeps and :func:`~securedrop_wm.sources.create_source`
    takes; ``text`` is what the page shows, in ``language`` and ``direction``.
    """

    codename: Codename
    text: str
    language: str
    direction: Literal["rtl", "ltr"]


def available_languages() -> tuple[str, ...]:
    """The seven diceware lists (Latin script) that codenames were first drawn from.

    Every list a codename may be drawn from: :func:`available_wordlists`.
    """
    return tuple(_WORDLIST_FILES)


def available_wordlists() -> tuple[str, ...]:
    """Every language a codename can be drawn in (and typed back in)."""
    return (*_WORDLIST_FILES, *_BUILT)


def wordlist_language_for(page_language: str) -> str:
    """The word list a page in ``page_language`` offers first: its own where there is one
    (an Arabic page gets Arabic words), else English (docs/codenames.md says why Chinese,
    Japanese, Burmese and Swahili pages get English words)."""
    language = page_language.replace("-", "_")
    return language if language in available_wordlists() else "en"


def direction(language: str) -> Literal["rtl", "ltr"]:
    """The direction the words of ``language``'s list are written in."""
    return "rtl" if language in _RTL else "ltr"


@cache
def load_wordlist(language: str = "en") -> Wordlist:
    """Load and validate the word list for ``language``.

    :raises CodenameError: if there is no list for the language or it is unfit.
    """
    if language in _WORDLIST_FILES:
        name = _WORDLIST_FILES[language]
        text = resources.files("diceware").joinpath("wordlists", name).read_text("utf-8")
        raw = [line.split()[-1] for line in text.splitlines() if line.strip()]
        minimum = 4096
    elif language in _BUILT:
        name = f"{language}.txt"
        text = resources.files(__package__).joinpath("wordlists", name).read_text("utf-8")
        raw = [line.strip() for line in text.splitlines()]
        raw = [word for word in raw if word and not word.startswith("#")]
        minimum = MIN_WORDS
    else:
        raise CodenameError(f"no codename word list for language {language!r}")
    # A list may repeat a word once folded; entropy counts distinct folded words only.
    shown: dict[str, str] = {}
    for word in raw:
        shown.setdefault(fold(word), word if language in _BUILT else fold(word))
    words = tuple(shown)
    if len(words) < minimum or any(not w or " " in w for w in words):
        raise CodenameError(f"word list {name} is unfit: only {len(words)} distinct words")
    return Wordlist(language, words, frozenset(words), shown)


def codename_bits(words: int, language: str = "en") -> float:
    """Entropy in bits of a codename of ``words`` words in ``language``."""
    return words * load_wordlist(language).bits_per_word


def words_for(language: str = "en", base_words: int = 7) -> int:
    """How many words a codename in ``language`` has: ``base_words`` (the deployment's
    ``codename_words``), or more where the list is short, so that it carries at least
    :data:`MIN_BITS` bits."""
    needed = math.ceil(MIN_BITS / load_wordlist(language).bits_per_word)
    return max(base_words, needed)


def generate_codename(words: int = 7, language: str = "en") -> Codename:
    """Draw a codename of :func:`words_for` ``(language, words)`` folded words with
    ``secrets``: ``words``, or more where the list is short, so never under 90 bits.

    :raises CodenameError: if there is no list for ``language``.
    """
    wordlist = load_wordlist(language)
    count = words_for(language, words)
    return Codename(" ".join(secrets.choice(wordlist.words) for _ in range(count)))


def draw_codename(language: str = "en", base_words: int = 7) -> ShownCodename:
    """A new codename in ``language``, of :func:`words_for` words, ready to show.

    :raises CodenameError: if there is no list for ``language``.
    """
    codename = generate_codename(base_words, language)
    return ShownCodename(
        codename, shown_codename(codename, language), language, direction(language)
    )


def shown_codename(codename: Codename, language: str) -> str:
    """``codename`` spelt as ``language``'s list spells its words (for a page)."""
    shown = load_wordlist(language).shown
    return " ".join(shown.get(word, word) for word in codename.split())


def parse_codename(text: str, words: int = 7) -> Codename:
    """Fold what a source typed into a codename, or refuse it.

    Case, whitespace, Unicode composition and the letter variants of
    :func:`~securedrop_wm.codename_folding.fold` are forgiven; every word must be from
    one list, and the count must be that list's (:func:`words_for` with ``words``).

    :raises CodenameError: when the text cannot be a codename.
    """
    counts = {language: words_for(language, words) for language in available_wordlists()}
    if len(text) > 40 * max(counts.values()):
        raise CodenameError(f"a codename has at least {words} words")
    parts = fold(text).split()
    if len(parts) not in counts.values():
        raise CodenameError(f"a codename has at least {words} words")
    for language, count in counts.items():
        index = load_wordlist(language).index
        if len(parts) == count and all(p in index for p in parts):
            return Codename(" ".join(parts))
    raise CodenameError("the codename contains a word that is not in any word list")


def generate_designation() -> Designation:
    """A random, human-friendly name for responders ("sturdy lantern"), not derived from
    the codename, so knowing one tells nothing about the other."""
    base = resources.files("diceware").joinpath("wordlists")
    adjectives = base.joinpath("wordlist_en_adjectives.txt").read_text("utf-8").split()
    nouns = base.joinpath("wordlist_en_nouns.txt").read_text("utf-8").split()
    return Designation(f"{secrets.choice(adjectives)} {secrets.choice(nouns)}")
