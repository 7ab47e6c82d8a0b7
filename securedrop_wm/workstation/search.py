"""Full-text search over the cases: report text, wiki, links, a report's project and
region, file names, notes, labels and replies, in an SQLite FTS5 table of the case
database (``search_index``).

Triggers (migrations 0008 and 0009) keep the index current whoever writes those tables: an
import, a note, a reply, a label, a purge. A row's rowid is its source row's id * 8 plus
the code of its kind (:data:`KINDS`), so a trigger finds it without a scan. Deleting a
case removes its rows through its children's triggers (SQLite fires them for rows a
foreign key's ON DELETE CASCADE removes, too).

An FTS5 index keeps the words of deleted rows in its older segments until they are
merged, and Debian 12's SQLite (3.40) has no contentless delete: after a purge,
:func:`forget_purged` rebuilds the index into one fresh segment (FTS5 "optimize": the
deleted rows' entries are dropped as the segments are merged), vacuums the database and
truncates its write-ahead log, so that purged words are no longer in its files.
:func:`rebuild` fills the index again from the tables it covers (a repair, for an
index that lost its triggers).
"""

from __future__ import annotations

import logging
import re
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .errors import CaseError
from .services import Workstation

#: What a hit was found in, and the code its rowid ends with.
KINDS = {
    "details": 0,  # a report's project and region (migration 0009)
    "text": 1,
    "wiki": 2,
    "links": 3,
    "file": 4,
    "note": 5,
    "reply": 6,
    "labels": 7,
}
#: The triggers migrations 0008 and 0009 create; a batch migration recreating a table
#: drops its own.
TRIGGERS = (
    "search_reports_ai",
    "search_reports_au",
    "search_reports_ad",
    "search_files_ai",
    "search_files_au",
    "search_files_ad",
    "search_notes_ai",
    "search_notes_au",
    "search_notes_ad",
    "search_replies_ai",
    "search_replies_au",
    "search_replies_ad",
    "search_labels_ai",
    "search_labels_ad",
    "search_details_ai",
    "search_details_au",
    "search_details_ad",
)
MAX_QUERY_CHARS = 500
MAX_HITS = 200
SNIPPET_TOKENS = 24
log = logging.getLogger(__name__)
EMPTY_QUERY = "type a word to search for"
LONG_QUERY = "a search may have at most {n} characters"
BAD_QUERY = "this search cannot be run: {reason}"
_TERM = re.compile(r'"([^"]*)"|(\S+)')
# Each statement fills the index with one kind of row (as the migrations' triggers do).
_POPULATE = (
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8 + 1, text, "
        "case_id, 'text' FROM reports WHERE text != ''"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8 + 2, wiki, "
        "case_id, 'wiki' FROM reports WHERE wiki != ''"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8 + 3, links, "
        "case_id, 'links' FROM reports WHERE links != ''"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT s.id * 8 + 4, "
        "s.filename, r.case_id, 'file' FROM submissions s JOIN reports r ON r.id = "
        "s.report_id WHERE s.kind = 'file' AND s.filename != ''"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8 + 5, text, "
        "case_id, 'note' FROM notes"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8 + 6, text, "
        "case_id, 'reply' FROM outgoing_replies"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT cl.case_id * 8 + 7, "
        "group_concat(l.name, ' '), cl.case_id, 'labels' FROM case_labels cl JOIN labels "
        "l ON l.id = cl.label_id GROUP BY cl.case_id"
    ),
    (
        "INSERT INTO search_index(rowid, body, case_id, kind) SELECT id * 8, "
        "trim(project || ' ' || region), case_id, 'details' FROM reports "
        "WHERE project != '' OR region != ''"
    ),
)


class SearchError(CaseError):
    """Raised when a search cannot be run (empty, too long, or refused by the index)."""


@dataclass(frozen=True)
class Hit:
    """One place a search found its words: the case, what it was found in
    (a key of :data:`KINDS`), and a snippet as parts of plain text, each marked whether
    it is a match. The parts are the stored text as it is: the page escapes them and adds
    the highlighting itself, so nothing in them is ever markup."""

    case_id: int
    designation: str
    kind: str
    parts: tuple[tuple[str, bool], ...]


@dataclass(frozen=True)
class Results:
    """What a search found, best first, and in how many cases."""

    query: str
    hits: Sequence[Hit]
    truncated: bool

    @property
    def cases(self) -> list[tuple[int, str]]:
        """The cases found, each once, in the order of their best hit."""
        seen: dict[int, str] = {}
        for hit in self.hits:
            seen.setdefault(hit.case_id, hit.designation)
        return list(seen.items())


def fts_query(typed: str) -> str:
    """The FTS5 query for what a responder typed: every word, or "quoted phrase", as an
    FTS5 string (so no operator, column filter or stray quote has a meaning), all of
    them required.

    :raises SearchError: nothing to search for, or too long.
    """
    if len(typed) > MAX_QUERY_CHARS:
        raise SearchError(LONG_QUERY.format(n=MAX_QUERY_CHARS))
    terms = []
    for phrase, word in _TERM.findall(typed):
        term = (phrase or word).strip()
        if re.search(r"\w", term):  # punctuation alone has no token to find
            terms.append('"' + term.replace('"', '""') + '"')
    if not terms:
        raise SearchError(EMPTY_QUERY)
    return " ".join(terms)


def _parts(snippet: str, start: str, end: str) -> tuple[tuple[str, bool], ...]:
    """A snippet with ``start``/``end`` markers around matches, as (text, match) parts."""
    parts: list[tuple[str, bool]] = []
    rest = snippet
    while rest:
        before, found, after = rest.partition(start)
        if before:
            parts.append((before, False))
        if not found:
            break
        match, closed, rest = after.partition(end)
        if match:
            parts.append((match, True))
        if not closed:
            break
    return tuple(parts)


def search(ws: Workstation, typed: str, limit: int = MAX_HITS) -> Results:
    """The places where every word (or phrase) of ``typed`` occurs, best first.

    :raises SearchError: an empty or overlong search, or one the index refuses.
    """
    query = fts_query(typed)
    # Markers no stored text can contain (random, new for each search): the snippet is
    # cut at them into parts, and the page marks the matching parts itself.
    token = secrets.token_hex(8)
    start, end = f"S{token}S", f"E{token}E"
    sql = text(
        "SELECT s.case_id, c.designation, s.kind, "
        "snippet(search_index, 0, :start, :end, '…', :tokens) "
        "FROM search_index s JOIN cases c ON c.id = s.case_id "
        "WHERE search_index MATCH :query ORDER BY rank LIMIT :limit"
    )
    params = {"start": start, "end": end, "tokens": SNIPPET_TOKENS, "query": query}
    try:
        with ws.sessions() as db:
            rows = db.execute(sql, {**params, "limit": limit + 1}).all()
    except OperationalError as e:
        reason = str(e.orig) if isinstance(e.orig, sqlite3.Error) else "refused"
        raise SearchError(BAD_QUERY.format(reason=reason)) from e
    hits = [
        Hit(int(case_id), str(designation), str(kind), _parts(str(snip), start, end))
        for case_id, designation, kind, snip in rows[:limit]
    ]
    return Results(typed, hits, truncated=len(rows) > limit)


def outside_index(name: str | None, type_: str, parent_names: object) -> bool:
    """Alembic's ``include_name`` hook: leave out the FTS5 table and its shadow tables,
    which no model describes (autogenerate would otherwise drop them)."""
    is_index = type_ == "table" and (
        name == "search_index" or str(name).startswith("search_index_")
    )
    return not is_index


def missing_triggers(db: Session) -> list[str]:
    """The index's triggers that are not in the database (none, normally)."""
    rows = db.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
    present = {str(name) for (name,) in rows}
    return [name for name in TRIGGERS if name not in present]


def merge(db: Session) -> None:
    """Rewrite the index as one segment, without the entries of deleted rows (in the
    caller's transaction)."""
    db.execute(text("INSERT INTO search_index(search_index) VALUES ('optimize')"))


def rebuild(db: Session) -> int:
    """Fill the index again from the tables it covers and merge it into one segment
    (in the caller's transaction); return how many rows it holds."""
    db.execute(text("DELETE FROM search_index"))
    for statement in _POPULATE:
        db.execute(text(statement))
    merge(db)
    return int(db.scalar(text("SELECT count(*) FROM search_index")) or 0)


def forget_purged(ws: Workstation, purged: Sequence[str]) -> bool:
    """After a purge that removed cases (``purged``: their designations), leave none of
    their words in the database files: rebuild the index, vacuum the database (freed
    pages are zeroed: the engine sets ``secure_delete``), and truncate the write-ahead
    log. Does nothing when nothing was purged. Return whether the log was truncated
    (a reader that outlasted the busy wait keeps it; the next purge tries again): the
    purge itself has happened either way, so this never raises for that.
    """
    if not purged:
        return True
    with ws.write() as db:
        merge(db)
    bind = ws.sessions.kw.get("bind")
    if bind is None or bind.dialect.name != "sqlite":
        return True
    with bind.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        conn.exec_driver_sql("VACUUM")
        busy, _log, _done = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    if busy:
        log.warning("after a purge, the write-ahead log could not be truncated (busy)")
    return not busy
