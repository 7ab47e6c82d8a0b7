"""Coverage-guided fuzzing of codename parsing: any text becomes a codename or a
CodenameError, nothing else; a parsed codename parses to itself.

Run: python -m fuzz.codenames [-max_total_time=SECONDS] [CORPUS_DIR]
"""

from __future__ import annotations

import atheris

with atheris.instrument_imports():
    from securedrop_wm.codenames import available_wordlists, load_wordlist, parse_codename
    from securedrop_wm.errors import CodenameError

from fuzz.common import run

LISTS = [load_wordlist(language).words for language in available_wordlists()]


def test(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    words = fdp.ConsumeIntInRange(7, 20)
    if fdp.ConsumeBool():
        text = fdp.ConsumeUnicodeNoSurrogates(400)
    else:  # words from the lists, joined and edited: reaches the deeper checks
        wordlist = LISTS[fdp.ConsumeIntInRange(0, len(LISTS) - 1)]
        parts = [wordlist[fdp.ConsumeIntInRange(0, len(wordlist) - 1)] for _ in range(words)]
        text = fdp.ConsumeUnicodeNoSurrogates(3).join(parts) + fdp.ConsumeUnicodeNoSurrogates(8)
    try:
        parsed = parse_codename(text, words)
    except CodenameError:
        return
    if parse_codename(parsed, words) != parsed or len(parsed.split()) != words:
        raise AssertionError(f"parsing is not stable for {text!r}")


if __name__ == "__main__":
    run(test)
