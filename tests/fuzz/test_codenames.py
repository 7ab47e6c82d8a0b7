"""Property-based fuzzing of codename handling: any text is parsed or refused with a
CodenameError (nothing else), parsing is idempotent, and the ways people retype a
codename (case, spacing, Unicode composition, in every language) still find it."""

from __future__ import annotations

import unicodedata

from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from securedrop_wm.codenames import (
    available_languages,
    generate_codename,
    load_wordlist,
    parse_codename,
)
from securedrop_wm.errors import CodenameError
from tests.conftest import csrf_token, new_source

SPACES = st.sampled_from([" ", "  ", "\t", "\n", "\u00a0", "\u3000", " \r\n "])


@st.composite
def codenames(draw: st.DrawFn, words: int = 7) -> str:
    """A codename made of words from one list, as the generator would make it."""
    wordlist = load_wordlist(draw(st.sampled_from(available_languages())))
    return " ".join(draw(st.sampled_from(wordlist.words)) for _ in range(words))


@st.composite
def retyped(draw: st.DrawFn, codename: str) -> str:
    """The codename as a person might type it back: case, spacing, decomposed accents."""
    words = []
    for word in codename.split():
        case = draw(st.sampled_from([str.lower, str.upper, str.title, str.capitalize]))
        form = draw(st.sampled_from(["NFC", "NFD"]))
        words.append(unicodedata.normalize(form, case(word)))
    spaces = [draw(SPACES) for _ in words]
    return draw(SPACES) + "".join(w + s for w, s in zip(words, spaces, strict=True))


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
    assert parse_codename(codename) == codename
    assert parse_codename(data.draw(retyped(codename))) == codename


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
    # Only accepted when the changed word is itself a word of some list.
    assert (
        any(words[index].casefold() in load_wordlist(lang).index for lang in available_languages())
        or unicodedata.normalize("NFC", typed).casefold().split() == parsed.split()
    )


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
    for language in available_languages():
        codename = generate_codename(7, language)
        assert parse_codename(codename.upper()) == codename
