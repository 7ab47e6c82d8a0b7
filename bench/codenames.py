"""What typing a codename back costs since the lists in other scripts and the folding of
typed variants (issue 17), beside the previous design, in one run.

- first use in a fresh process: loading (and folding) every word list, the previous
  design's seven lists against today's twenty (a worker pays it once);
- one parse of a typed codename, once the lists are loaded: the previous design's
  normalization (NFC, casefold) and lookup in seven lists, against today's folding and
  lookup: an English codename, and an Arabic one typed with variant letters (ي for ی,
  ك for ک, harakat, tatweel), which only today's code accepts.

The login itself is dominated by Argon2id (bench/kdf.py): these are the parts around it.

Run from the repository root:  python -m bench.codenames [--runs 2000]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from functools import cache
from importlib import resources

from securedrop_wm import codenames

_OLD_FILES = (
    "wordlist_en_eff.txt",
    "wordlist_es.txt",
    "wordlist_fr.txt",
    "wordlist_de.txt",
    "wordlist_it.txt",
    "wordlist_pt-br.txt",
    "wordlist_ca.txt",
)


def _old_normalize(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip().casefold()


@cache
def _old_indexes() -> tuple[frozenset[str], ...]:
    """The previous design's seven lists, loaded as it did (distinct normalized words)."""
    base = resources.files("diceware").joinpath("wordlists")
    lists = []
    for name in _OLD_FILES:
        text = base.joinpath(name).read_text("utf-8")
        lists.append(
            frozenset(
                _old_normalize(line.split()[-1]) for line in text.splitlines() if line.strip()
            )
        )
    return tuple(lists)


def old_parse(text: str, words: int = 7) -> str:
    """The previous design's parse_codename (securedrop_wm/codenames.py before issue 17)."""
    parts = _old_normalize(text).split()
    if len(parts) != words or len(text) > 40 * words:
        raise ValueError("not a codename")
    for index in _old_indexes():
        if all(p in index for p in parts):
            return " ".join(parts)
    raise ValueError("a word is in no list")


def _variant_arabic(shown: str) -> str:
    """What a source may type for an Arabic codename: Arabic yeh and kaf, a fatha on
    each word's first letter, a tatweel in the middle."""
    typed = []
    for word in shown.split():
        word = word.replace("ی", "ي").replace("ک", "ك")
        word = word[0] + "\u064e" + word[1:]
        middle = len(word) // 2
        typed.append(word[:middle] + "\u0640" + word[middle:])
    return " ".join(typed)


def median_us(run: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def first_use_ms(code: str, runs: int = 5) -> float:
    """Median wall time of ``code`` in a fresh interpreter, minus the interpreter's start."""

    def timed(snippet: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", snippet], check=True)
        return time.perf_counter() - start

    imports = (
        "import unicodedata, functools, importlib.resources\nfrom securedrop_wm import codenames\n"
    )
    base = statistics.median(timed(imports) for _ in range(runs))
    return (statistics.median(timed(imports + code) for _ in range(runs)) - base) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()

    english = codenames.draw_codename("en").text
    arabic = codenames.draw_codename("ar")
    typed_arabic = _variant_arabic(arabic.text)
    assert codenames.parse_codename(typed_arabic) == arabic.codename
    assert old_parse(english) == codenames.parse_codename(english)

    print("first use in a fresh process (load every list), median of 5:")
    old_load = first_use_ms("from bench.codenames import _old_indexes\n_old_indexes()")
    new_load = first_use_ms("codenames.parse_codename(" + repr(english) + ")")
    print(f"  previous design, 7 lists: {old_load:8.0f} ms")
    print(f"  today, {len(codenames.available_wordlists())} lists:       {new_load:8.0f} ms")

    print(f"one parse once loaded, median of {args.runs}:")
    rows = [
        ("previous design, English codename", lambda: old_parse(english)),
        ("today, English codename", lambda: codenames.parse_codename(english)),
        (
            "today, Arabic codename typed with variants",
            lambda: codenames.parse_codename(typed_arabic),
        ),
    ]
    for label, run in rows:
        print(f"  {label:45s} {median_us(run, args.runs):8.1f} µs")


if __name__ == "__main__":
    main()
