"""A report's links parsed into pages, diffs and users for the responder, offline: what a
Wikimedian pastes (desktop and mobile addresses, index.php queries, Special pages, RTL
titles, percent-encoding) and what a hostile sender could (look-alike hosts, script
addresses, hidden characters, inputs large enough to stall a parser)."""

# ruff: noqa: E501 (the tables read best with one case a line)

from __future__ import annotations

import time

import pytest

from securedrop_wm.workstation.wiki_links import (
    MAX_LINK_CHARS,
    MAX_LINKS,
    LinkKind,
    LinkWarning,
    WikiLink,
    parse_link,
    parse_links,
)

K = LinkKind
NOT_WM = (LinkWarning.NOT_WIKIMEDIA,)

# (what the source wrote, kind, host, title, diff, oldid, user, warnings)
CASES: list[tuple[str, LinkKind, str, str, str, str, str, tuple[LinkWarning, ...]]] = [
    # Pages, in any script, percent-encoded or not
    ("https://en.wikipedia.org/wiki/Main_Page", K.PAGE, "en.wikipedia.org", "Main Page", "", "", "", ()),
    ("https://fa.wikipedia.org/wiki/%D8%AA%D9%87%D8%B1%D8%A7%D9%86", K.PAGE, "fa.wikipedia.org", "تهران", "", "", "", ()),
    ("https://ar.wikipedia.org/wiki/القاهرة_(مدينة)", K.PAGE, "ar.wikipedia.org", "القاهرة (مدينة)", "", "", "", ()),
    ("https://ru.wikipedia.org/wiki/Москва", K.PAGE, "ru.wikipedia.org", "Москва", "", "", "", ()),
    ("https://he.wikipedia.org/wiki/Tel_Aviv_%D7%99%D7%A4%D7%95", K.PAGE, "he.wikipedia.org", "Tel Aviv יפו", "", "", "", ()),
    ("https://en.wikipedia.org/wiki/C%2B%2B", K.PAGE, "en.wikipedia.org", "C++", "", "", "", ()),
    ("https://en.wikipedia.org/wiki/Foo%2520bar", K.PAGE, "en.wikipedia.org", "Foo%20bar", "", "", "", ()),
    ("https://www.wikidata.org/wiki/Q42", K.PAGE, "www.wikidata.org", "Q42", "", "", "", ()),
    # Mobile hosts fold to the project's
    ("https://fa.m.wikipedia.org/wiki/ایران", K.PAGE, "fa.wikipedia.org", "ایران", "", "", "", ()),
    ("https://m.wikidata.org/wiki/Q1", K.PAGE, "wikidata.org", "Q1", "", "", "", ()),
    # index.php with a title and revision ids
    ("https://fa.wikipedia.org/w/index.php?title=%D8%AA%D9%87%D8%B1%D8%A7%D9%86&diff=123&oldid=100", K.DIFF, "fa.wikipedia.org", "تهران", "123", "100", "", ()),
    ("https://en.wikipedia.org/w/index.php?title=Foo&diff=prev&oldid=555", K.DIFF, "en.wikipedia.org", "Foo", "prev", "555", "", ()),
    ("https://en.wikipedia.org/w/index.php?diff=987", K.DIFF, "en.wikipedia.org", "", "987", "", "", ()),
    ("https://en.wikipedia.org/w/index.php?title=Foo+bar&oldid=42", K.REVISION, "en.wikipedia.org", "Foo bar", "", "42", "", ()),
    ("https://en.wikipedia.org/w/index.php?title=Special:Contributions&target=Some_One", K.CONTRIBUTIONS, "en.wikipedia.org", "Special:Contributions", "", "", "Some One", ()),
    ("https://en.wikipedia.org/w/index.php?title=Foo&diff=1;DROP&oldid=x", K.PAGE, "en.wikipedia.org", "Foo", "", "", "", ()),
    # Special pages, in addresses and bare
    ("https://en.wikipedia.org/wiki/Special:Diff/123", K.DIFF, "en.wikipedia.org", "Special:Diff/123", "123", "", "", ()),
    ("Special:Diff/123", K.DIFF, "", "Special:Diff/123", "123", "", "", ()),
    ("Special:Diff/100/123", K.DIFF, "", "Special:Diff/100/123", "123", "100", "", ()),
    ("special:diff/5", K.DIFF, "", "special:diff/5", "5", "", "", ()),
    ("Special:PermanentLink/77", K.REVISION, "", "Special:PermanentLink/77", "", "77", "", ()),
    ("https://en.wikipedia.org/wiki/Special:Permalink/77", K.REVISION, "en.wikipedia.org", "Special:Permalink/77", "", "77", "", ()),
    ("Special:Contributions/192.0.2.7", K.CONTRIBUTIONS, "", "Special:Contributions/192.0.2.7", "", "", "192.0.2.7", ()),
    ("https://fa.wikipedia.org/wiki/ویژه:مشارکت‌ها/کاربر_نمونه", K.CONTRIBUTIONS, "fa.wikipedia.org", "ویژه:مشارکت‌ها/کاربر نمونه", "", "", "کاربر نمونه", ()),
    ("https://en.wikipedia.org/wiki/Special:RecentChanges", K.SPECIAL, "en.wikipedia.org", "Special:RecentChanges", "", "", "", ()),
    # User pages (subpages and talk pages name the user), files
    ("https://en.wikipedia.org/wiki/User:Example", K.USER, "en.wikipedia.org", "User:Example", "", "", "Example", ()),
    ("https://en.wikipedia.org/wiki/User_talk:Example/Archive_1", K.USER, "en.wikipedia.org", "User talk:Example/Archive 1", "", "", "Example", ()),
    ("https://fa.wikipedia.org/wiki/%DA%A9%D8%A7%D8%B1%D8%A8%D8%B1:%D9%86%D9%85%D9%88%D9%86%D9%87", K.USER, "fa.wikipedia.org", "کاربر:نمونه", "", "", "نمونه", ()),
    ("ar.wikipedia.org/wiki/مستخدم:فلان", K.USER, "ar.wikipedia.org", "مستخدم:فلان", "", "", "فلان", ()),
    ("User:Example", K.USER, "", "User:Example", "", "", "Example", ()),
    ("https://commons.wikimedia.org/wiki/File:Photo_1.jpg", K.FILE, "commons.wikimedia.org", "File:Photo 1.jpg", "", "", "", ()),
    # Not a page: the root, a short link (not resolved offline), an API path
    ("https://fa.wikipedia.org/", K.OTHER, "fa.wikipedia.org", "", "", "", "", ()),
    ("https://w.wiki/7xYz", K.OTHER, "w.wiki", "", "", "", "", ()),
    ("https://en.wikipedia.org/api/rest_v1/page", K.OTHER, "en.wikipedia.org", "", "", "", "", ()),
    # Hostile: look-alike hosts are not Wikimedia
    ("https://fa.wikipedia.org.example.com/wiki/X", K.PAGE, "fa.wikipedia.org.example.com", "X", "", "", "", NOT_WM),
    ("https://wikipedia.org@example.com/wiki/X", K.PAGE, "example.com", "X", "", "", "", NOT_WM),
    ("https://example.com\\@fa.wikipedia.org/wiki/X", K.OTHER, "example.com", "", "", "", "", NOT_WM),
    ("https://fa.wikipedіa.org/wiki/X", K.PAGE, "fa.wikipedіa.org", "X", "", "", "", NOT_WM),  # Cyrillic і
    ("https://xn--wikipedia-xyz.org/wiki/X", K.PAGE, "xn--wikipedia-xyz.org", "X", "", "", "", NOT_WM),
    ("https://en.wikipedia.org:8443/wiki/X", K.PAGE, "en.wikipedia.org", "X", "", "", "", NOT_WM),
    ("https://notwikipedia.org/wiki/X", K.PAGE, "notwikipedia.org", "X", "", "", "", NOT_WM),
    ("https://example.com/wiki/User:Victim", K.USER, "example.com", "User:Victim", "", "", "Victim", NOT_WM),
    ("https://[::1/x", K.OTHER, "", "", "", "", "", NOT_WM),
    ("https://en.wikipedia.org:99999/wiki/X", K.OTHER, "", "", "", "", "", NOT_WM),
    # Hostile: script and other non-web addresses are flagged and not parsed
    ("javascript:alert(document.cookie)", K.OTHER, "", "", "", "", "", (LinkWarning.NOT_WEB,)),
    ("JaVaScRiPt:alert(1)//https://en.wikipedia.org/wiki/X", K.OTHER, "", "", "", "", "", (LinkWarning.NOT_WEB,)),
    ("data:text/html;base64,PHNjcmlwdD4=", K.OTHER, "", "", "", "", "", (LinkWarning.NOT_WEB,)),
    ("file:///etc/passwd", K.OTHER, "", "", "", "", "", (LinkWarning.NOT_WEB,)),
    # Hostile: hidden characters in a title are shown, not obeyed
    ("https://en.wikipedia.org/wiki/User:Adm%E2%80%AEnimi", K.USER, "en.wikipedia.org", "User:Adm⟨U+202E⟩nimi", "", "", "Adm⟨U+202E⟩nimi", ()),
    ("https://en.wikipedia.org/wiki/A%00B%1B", K.PAGE, "en.wikipedia.org", "A⟨U+0000⟩B⟨U+001B⟩", "", "", "", ()),
    ("https://en.wikipedia.org/wiki/Pay%E2%80%8Bpal", K.PAGE, "en.wikipedia.org", "Pay⟨U+200B⟩pal", "", "", "", ()),
    ("https://en.wikipedia.org/wiki/%FF%FE", K.PAGE, "en.wikipedia.org", "\ufffd\ufffd", "", "", "", ()),
]  # fmt: skip


@pytest.mark.parametrize(
    ("written", "kind", "host", "title", "diff", "oldid", "user", "warnings"),
    CASES,
    ids=[c[0][:60] for c in CASES],
)
def test_a_link_is_read_as_a_wikimedian_means_it(
    written: str,
    kind: LinkKind,
    host: str,
    title: str,
    diff: str,
    oldid: str,
    user: str,
    warnings: tuple[LinkWarning, ...],
) -> None:
    found = parse_link(written)
    assert (found.kind, found.host, found.title) == (kind, host, title)
    assert (found.diff, found.oldid, found.user) == (diff, oldid, user)
    assert found.warnings == warnings


def test_a_persian_joiner_inside_a_word_stays_and_a_mobile_host_is_said() -> None:
    found = parse_link("https://fa.m.wikipedia.org/wiki/می‌خواهم")
    assert found.title == "می‌خواهم" and "⟨" not in found.title
    assert found.mobile and found.host == "fa.wikipedia.org"


# (the links field, the description, the links found as (kind, host, title))
TEXTS: list[tuple[str, str, list[tuple[LinkKind, str, str]]]] = [
    # one a line, with the punctuation and brackets people put around them
    (
        "See <https://en.wikipedia.org/wiki/Foo_(bar)>.\n"
        "and (https://fa.wikipedia.org/wiki/X), also «Special:Diff/9»؛",
        "",
        [
            (K.PAGE, "en.wikipedia.org", "Foo (bar)"),
            (K.PAGE, "fa.wikipedia.org", "X"),
            (K.DIFF, "", "Special:Diff/9"),
        ],
    ),
    # wiki syntax, with spaces and a label; a repeated link once
    (
        "[[User:Some One|him]] then [[Special:Contributions/Some One]]",
        "He edited https://en.wikipedia.org/wiki/X and [[User:Some One]] again.",
        [
            (K.USER, "", "User:Some One"),
            (K.CONTRIBUTIONS, "", "Special:Contributions/Some One"),
            (K.PAGE, "en.wikipedia.org", "X"),
        ],
    ),
    # prose is not a link: no fractions, "and/or", abbreviations, or bare "User:" in
    # the description
    ("1.5/2 and/or e.g./x Note: nothing", "User:Someone wrote 3/4 of it.", []),
    # a link in the description of a report without links
    ("", "They outed me on https://fa.m.wikipedia.org/wiki/بحث_کاربر:من", [
        (K.USER, "fa.wikipedia.org", "بحث کاربر:من"),
    ]),
    # a protocol-relative address and a bare host
    ("//en.wikipedia.org/wiki/A fa.wikipedia.org/wiki/B", "", [
        (K.PAGE, "en.wikipedia.org", "A"),
        (K.PAGE, "fa.wikipedia.org", "B"),
    ]),
]  # fmt: skip


@pytest.mark.parametrize(("links", "description", "expected"), TEXTS)
def test_the_links_of_a_report_are_found_in_order(
    links: str, description: str, expected: list[tuple[LinkKind, str, str]]
) -> None:
    found = parse_links(links, description)
    assert [(f.kind, f.host, f.title) for f in found] == expected


def test_what_is_shown_of_a_link_is_the_link_as_written_with_hidden_characters_visible() -> None:
    found = parse_links("https://en.wikipedia.org/wiki/X\u202e\u0007")
    assert found == [
        WikiLink(
            "https://en.wikipedia.org/wiki/X⟨U+202E⟩⟨U+0007⟩",
            K.PAGE,
            host="en.wikipedia.org",
            title="X⟨U+202E⟩⟨U+0007⟩",
        )
    ]


HOSTILE = [
    ("one very long link", "https://en.wikipedia.org/wiki/" + "A" * 500_000, ""),
    ("a million dots", "a." * 500_000 + "/x", ""),
    ("unclosed wiki links", "[[ a " * 100_000, "[[" * 200_000),
    ("many links", " ".join(f"https://x{i}.org/wiki/P" for i in range(100_000)), ""),
    ("a huge query", "https://en.wikipedia.org/w/index.php?" + "a=1&" * 200_000, ""),
    ("control characters", "\x00\x1b\x7f" * 200_000, "\u202e" * 200_000),
    ("closing brackets", "https://x.org/" + ")" * 199_900, "a/" + "." * 199_990),
    ("nested brackets", "https://en.wikipedia.org/wiki/" + "(" * 100_000 + ")" * 100_000, ""),
    ("deep percent-encoding", "https://en.wikipedia.org/wiki/" + "%25" * 300_000, ""),
]


@pytest.mark.parametrize(("what", "links", "description"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_input_is_read_in_bounded_time_and_bounded_output(
    what: str, links: str, description: str
) -> None:
    start = time.monotonic()
    found = parse_links(links, description)
    assert time.monotonic() - start < 2.0, what
    assert len(found) <= MAX_LINKS
    for link in found:
        # the ellipsis and the ⟨U+XXXX⟩ of hidden characters are the only growth
        assert len(link.text) <= MAX_LINK_CHARS * 10
        assert len(link.title) <= 300 * 10 and len(link.host) <= 256 * 10


def test_a_link_longer_than_the_limit_is_cut_and_said_so() -> None:
    [found] = parse_links("https://en.wikipedia.org/wiki/" + "A" * 5_000)
    assert LinkWarning.CUT in found.warnings
    assert found.text.endswith("…") and len(found.text) == MAX_LINK_CHARS + 1
    assert found.title.endswith("…")
