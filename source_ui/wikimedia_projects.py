"""The Wikimedia projects the report form suggests for "which project and language".

A suggestion list only (an HTML ``<datalist>``): the source may type anything, in any
language ("Persian Wikipedia", "fa.wikipedia", a chapter's wiki). The project names are
proper names and stay as they are in every language; only the last entry is words.
"""

from __future__ import annotations

from securedrop_wm.translations import N_

#: The projects' own names, as their sites spell them, in the order the form lists them.
PROJECT_NAMES: tuple[str, ...] = (
    "Wikipedia",
    "Wiktionary",
    "Wikibooks",
    "Wikinews",
    "Wikiquote",
    "Wikisource",
    "Wikiversity",
    "Wikivoyage",
    "Wikimedia Commons",
    "Wikidata",
    "Meta-Wiki",
    "MediaWiki.org",
    "Wikispecies",
    "Wikifunctions",
    "Wikimedia Incubator",
)
#: The suggestion after the projects, translated where the form shows it.
AFFILIATE_WIKI = N_("An affiliate's own wiki")

__all__ = ["AFFILIATE_WIKI", "PROJECT_NAMES"]
