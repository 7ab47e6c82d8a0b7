"""Property-based fuzzing of codename handling: any text is parsed or refused with a
CodenameError (nothing else), parsing is idempotent, the ways people retype a codename
(case, spacing, Unicode composition, letter variants, in every language) still find it,
and whatever the parsing before folding accepted is parsed to the same codename."""

from __future__ import annotations

import unicodedata

from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from securedrop_wm.codename_folding import fold
from securedrop_wm.codenames import (
    Codename,
    available_languages,
    available_wordlists,
    draw_codename,
    load_wordlist,
    parse_codename,
    words_for,
)
from securedrop_wm.errors import CodenameError
from tests.conftest import csrf_token, new_source

SPACES = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u3000", " \r\n "])


# Letters and the other forms a keyboard or a habit gives of them (they fold alike).
VARIANTS = {
    "\u064a": ["\u06cc", "\u0649"],  # Arabic yeh: Farsi yeh, alef maksura
    "\u06cc": ["\u064a"],
    "\u0643": ["\u06a9"],  # kaf and keheh
    "\u06a9": ["\u0643"],
    "\u0629": ["\u0647"],  # teh marbuta typed as heh
    "\u0623": ["\u0627", "\u0625"],  # alef with hamza: bare alef
    "\u0627": ["\u0623", "\u0671", "\u0640\u0627"],  # wasla, after a tatweel
    "\u0435": ["\u0451", "e"],  # Cyrillic е: ё, a Latin e
    "\u0456": ["i"],  # Ukrainian і: a Latin i
    "'": ["\u2019", "\u02bc"],
    "\u0131": ["I", "i"],  # Turkish dotless i
}
# Marks and joiners people add or leave out inside a word.
INSERTS = ["\u064e", "\u0651", "\u0640", "\u200c", "\u200d", "\u05b8"]


@st.composite
def codenames(draw: st.DrawFn, base: int = 7) -> str:
    """A codename made of shown words from one list, as the page shows it."""
    language = draw(st.sampled_from(available_wordlists()))
    shown = list(load_wordlist(language).shown.values())
    return " ".join(draw(st.sampled_from(shown)) for _ in range(words_for(language, base)))


@st.composite
def retyped(draw: st.DrawFn, codename: str) -> str:
    """The codename as a person might type it back: case, spacing, decomposed accents,
    the other forms of a letter, harakat, tatweel and joiners."""
    words = []
    for word in codename.split():
        word = "".join(
            draw(st.sampled_from([c, *VARIANTS[c]])) if c in VARIANTS else c for c in word
        )
        if draw(st.booleans()) and len(word) > 1:
            at = draw(st.integers(min_value=1, max_value=len(word) - 1))
            word = word[:at] + draw(st.sampled_from(INSERTS)) + word[at:]
        case = draw(st.sampled_from([str.lower, str.upper, str.title, str.capitalize]))
        form = draw(st.sampled_from(["NFC", "NFD", "NFKD"]))
        words.append(unicodedata.normalize(form, case(word)))
    spaces = [draw(SPACES) for _ in words]
    return draw(SPACES) + "".join(w + s for w, s in zip(words, spaces, strict=True))


def parse_before_folding(text: str, words: int = 7) -> Codename | None:
    """How a typed codename was parsed before folding existed (the seven first lists)."""
    parts = unicodedata.normalize("NFC", text).strip().casefold().split()
    if len(parts) != words or len(text) > 40 * words:
        return None
    for language in available_languages():
        if all(p in load_wordlist(language).index for p in parts):
            return Codename(" ".join(parts))
    return None


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400), words=st.integers(min_value=7, max_value=20))
def test_any_text_is_a_codename_or_a_codename_error(text: str, words: int) -> None:
    try:
        parsed = parse_codename(text, words)
    except CodenameError:
        return
    assert parse_codename(parsed, words) == parsed
    assert len(parsed.split()) == words


@settings(max_examples=300, deadline=None)
@given(data=st.data(), codename=codenames())
def test_retyped_codenames_parse_to_the_same_codename(data: st.DataObject, codename: str) -> None:
    parsed = parse_codename(codename)
    assert parsed == fold(codename)
    assert parse_codename(data.draw(retyped(codename))) == parsed


@settings(max_examples=300, deadline=None)
@given(
    data=st.data(),
    language=st.sampled_from(available_languages()),
    noise=st.text(max_size=3),
)
def test_what_parsed_before_folding_parses_the_same(
    data: st.DataObject, language: str, noise: str
) -> None:
    words = load_wordlist(language).words
    codename = " ".join(data.draw(st.sampled_from(words)) for _ in range(7))
    for typed in (data.draw(retyped(codename)), codename + noise, noise + codename):
        before = parse_before_folding(typed)
        if before is not None:
            assert parse_codename(typed) == before


@settings(max_examples=200, deadline=None)
@given(codename=codenames(), index=st.integers(min_value=0, max_value=6), junk=st.text(max_size=8))
def test_a_changed_word_is_not_taken_for_another_codename(
    codename: str, index: int, junk: str
) -> None:
    words = codename.split()
    words[index] = words[index] + junk.strip()
    typed = " ".join(words)
    try:
        parsed = parse_codename(typed)
    except CodenameError:
        return
    # Only accepted when the changed word is itself a word of some list, or folds to the
    # word it was (a mark or a joiner added).
    assert fold(typed) == parsed
    assert any(fold(words[index]) in load_wordlist(lang).index for lang in available_wordlists())


def test_a_source_gets_back_in_however_they_retype_their_codename(client: FlaskClient) -> None:
    codename = new_source(client)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/submit").text)})

    @settings(max_examples=15, deadline=None)
    @given(data=st.data())
    def log_in(data: st.DataObject) -> None:
        typed = data.draw(retyped(codename))
        token = csrf_token(client.get("/login").text)
        response = client.post("/login", data={"csrf_token": token, "codename": typed})
        assert response.status_code == 302 and response.location.endswith("/replies")
        client.post("/logout", data={"csrf_token": csrf_token(client.get("/replies").text)})

    log_in()


def test_generated_codenames_parse_in_every_language() -> None:
    for language in available_wordlists():
        drawn = draw_codename(language)
        assert parse_codename(drawn.codename.upper()) == drawn.codename
        assert parse_codename(drawn.text.upper()) == drawn.codename
