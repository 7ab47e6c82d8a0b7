"""Characters that make a file name read as another: controls, bidirectional overrides
and isolates, zero-width and other invisible format characters.

``report\u202efdp.exe`` reads as ``reportexe.pdf``; ``invoice\u200b.pdf`` looks like
``invoice.pdf``. The drop server refuses such names; the workstation shows names it
already holds with each of these characters made visible as ``⟨U+202E⟩``.
"""

from __future__ import annotations

import unicodedata

# Other (control, format, surrogate) and line or paragraph separators: none is seen as
# itself, and several reorder or hide what comes around them.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
# Zero-width non-joiner and joiner: part of the spelling of Persian, Urdu, Hindi,
# Bengali words and of emoji. Allowed inside such words only, not next to ASCII.
_JOINERS = frozenset({"\u200c", "\u200d"})
_JOINABLE = ("L", "M", "So")


def hidden_characters(name: str) -> list[int]:
    """The positions in ``name`` of characters a reader would not see as themselves;
    empty if there is none."""
    return [i for i, c in enumerate(name) if _is_hidden(name, i, c)]


def visible_name(name: str) -> str:
    """``name`` with each hidden character written as ``⟨U+XXXX⟩``, to show a name that
    came from a source without letting it disguise itself."""
    hidden = set(hidden_characters(name))
    return "".join(f"⟨U+{ord(c):04X}⟩" if i in hidden else c for i, c in enumerate(name))


def _is_hidden(name: str, index: int, char: str) -> bool:
    if unicodedata.category(char) not in _HIDDEN_CATEGORIES:
        return False
    if char not in _JOINERS or index == 0 or index == len(name) - 1:
        return True
    return not all(
        ord(n) > 127 and unicodedata.category(n).startswith(_JOINABLE)
        for n in (name[index - 1], name[index + 1])
    )
