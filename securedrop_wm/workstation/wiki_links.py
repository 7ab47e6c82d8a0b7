"""The links of a report, parsed into what a responder reads: which project, which page,
diff, revision, user or contributions.

Pure text work: nothing is fetched or resolved (the workstation is offline), and the
work is bounded: at most :data:`MAX_SCAN_CHARS` of each text are read, each link is cut
at :data:`MAX_LINK_CHARS`, and at most :data:`MAX_LINKS` links are returned. No regular
expression here can backtrack over a long input: texts are split on white space and each
piece is examined with plain string operations.

What a source wrote is not trusted: a host that is not a Wikimedia project's is flagged
(:attr:`LinkWarning.NOT_WIKIMEDIA`; a look-alike such as ``fa.wikipedia.org.example.com``,
``wikipedia.org@example.com`` or a Cyrillic ``і`` is not Wikimedia), a link that is not
a web address (``javascript:``, ``data:``, ``file:``) is flagged and not parsed, and every
decoded title or name is shown with its controls, bidirectional overrides and invisible
characters made visible (:func:`securedrop_wm.filenames.visible_name`), Persian and Urdu
joiners inside words kept. The page shows the result as text, never as a link.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, unquote, urlsplit

from ..filenames import visible_name

#: Characters of each text read (the source UI caps links at 20,000 characters).
MAX_SCAN_CHARS = 200_000
#: Links returned for one report (links and description together).
MAX_LINKS = 100
#: A link longer than this is cut (and flagged) before it is parsed.
MAX_LINK_CHARS = 2_000
#: A title or user name longer than this is cut (MediaWiki's limit is 255 bytes).
MAX_TITLE_CHARS = 300
#: White-space separated pieces examined per text, links or not.
MAX_PIECES = 50_000

#: The registrable domains of Wikimedia's projects (a host is one of them or ends with
#: ``.`` and one of them).
WIKIMEDIA_DOMAINS = (
    "wikipedia.org",
    "wiktionary.org",
    "wikibooks.org",
    "wikinews.org",
    "wikiquote.org",
    "wikisource.org",
    "wikiversity.org",
    "wikivoyage.org",
    "wikimedia.org",
    "wikidata.org",
    "wikifunctions.org",
    "mediawiki.org",
    "wikimediafoundation.org",
    "w.wiki",
)


class LinkKind(enum.StrEnum):
    """What a link points at."""

    PAGE = "page"
    DIFF = "diff"
    REVISION = "revision"
    USER = "user"
    CONTRIBUTIONS = "contributions"
    SPECIAL = "special"
    FILE = "file"
    OTHER = "other"


class LinkWarning(enum.StrEnum):
    """What a responder must know before copying a link elsewhere."""

    NOT_WIKIMEDIA = "not_wikimedia"  # the host is not a Wikimedia project's
    NOT_WEB = "not_web"  # javascript:, data:, file: and the like: never to be opened
    CUT = "cut"  # longer than MAX_LINK_CHARS: parsed from its beginning only


@dataclass(frozen=True)
class WikiLink:
    """One link of a report, parsed. Every text field is safe to show as text: decoded,
    bounded, its hidden characters made visible. ``host`` is "" for a bare title
    (``Special:Diff/123``, ``[[User:Name]]``): the project is not said."""

    text: str
    kind: LinkKind
    host: str = ""
    mobile: bool = False
    title: str = ""
    diff: str = ""
    oldid: str = ""
    user: str = ""
    warnings: tuple[LinkWarning, ...] = ()


# Namespace names (lower case, spaces for underscores) in the languages of the UIs; a
# title in another namespace is a page.
_SPECIAL = frozenset(
    "special spécial especial spezial speciale speciaal specjalna ویژه خاص служебная "
    "спеціальна özel istimewa מיוחד विशेष বিশেষ 特殊 特別 특수 maalum".split()
) | {"đặc biệt"}
_USER = frozenset(
    {
        "user", "user talk", "utilisateur", "utilisatrice", "discussion utilisateur",
        "usuario", "usuaria", "usuario discusión", "usuário", "usuária",
        "usuário discussão", "benutzer", "benutzerin", "benutzer diskussion", "utente",
        "gebruiker", "użytkownik", "کاربر", "بحث کاربر", "مستخدم", "مستخدمة",
        "نقاش المستخدم", "участник", "участница", "обсуждение участника", "користувач",
        "користувачка", "обговорення користувача", "kullanıcı", "kullanıcı mesaj",
        "pengguna", "pembicaraan pengguna", "משתמש", "משתמשת", "שיחת משתמש", "صارف",
        "सदस्य", "ব্যবহারকারী", "用户", "使用者", "利用者", "사용자", "thành viên",
        "mtumiaji", "usuari",
    }
)  # fmt: skip
_FILE = frozenset(
    "file image fichier archivo datei bestand plik پرونده تصویر ملف صورة файл dosya "
    "berkas arquivo imagem קובץ فائل चित्र চিত্র 文件 ファイル 파일 picha fitxer".split()
) | {"tập tin"}
# Special pages (lower case, spaces for underscores), canonical names and a few local ones.
_DIFF = frozenset({"diff", "تفاوت", "فرق"})
_PERMALINK = frozenset(
    {"permanentlink", "permalink", "lien permanent", "پیوند پایدار", "رابط دائم",
     "постоянная ссылка", "постійне посилання", "kalıcı bağlantı", "pranala permanen"}
)  # fmt: skip
_CONTRIBUTIONS = frozenset(
    {"contributions", "contribs", "contribuciones", "contribuições", "beiträge",
     "مشارکت‌ها", "مساهمات", "вклад", "внесок", "katkılar", "kontribusi pengguna",
     "תרומות"}
)  # fmt: skip
# Not web addresses: shown flagged, never parsed (a responder must not open them).
_NOT_WEB = frozenset(
    "javascript vbscript livescript data file blob about chrome view-source jar "
    "ftp mailto tel sms intent filesystem ws wss".split()
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,19}")
# A host name with an alphabetic top-level label ("1.5/2" is no address).
_HOST = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,63}")
# A [[wiki link]] (bounded: no backtracking beyond 600 characters), else a piece.
_PIECE = re.compile(r"\[\[([^\[\]\n]{1,600})\]\]|\S+")
_IDS = re.compile(r"[0-9]{1,12}")
_OPENERS = "<([{«“‘\"'"
_CLOSERS = ">)]}»”’\"'.,;:!?،؛؟۔"
_ELLIPSIS = "…"
_PAIRS = {")": "(", "]": "[", "}": "{"}


def parse_links(links: str, description: str = "") -> list[WikiLink]:
    """The links of a report: those in its links field, then the web addresses and
    ``[[wiki links]]`` of its description, each once, in order, at most
    :data:`MAX_LINKS`. A line of the links field that holds no link is not returned."""
    found: list[WikiLink] = []
    seen: set[str] = set()
    for piece in _pieces(links[:MAX_SCAN_CHARS], bare_titles=True):
        if piece not in seen:
            seen.add(piece)
            found.append(parse_link(piece))
        if len(found) >= MAX_LINKS:
            return found
    for piece in _pieces(description[:MAX_SCAN_CHARS], bare_titles=False):
        if piece not in seen:
            seen.add(piece)
            found.append(parse_link(piece))
        if len(found) >= MAX_LINKS:
            break
    return found


def _pieces(text: str, bare_titles: bool) -> Iterator[str]:
    """The link-like pieces of ``text`` in order: each ``[[wiki link]]`` (spaces allowed)
    and each white-space separated piece that is a web address, a host with a path, a
    ``//`` address, an address of another scheme, or (``bare_titles``) a title in the
    Special, User or File namespace."""
    for count, match in enumerate(_PIECE.finditer(text)):
        if count >= MAX_PIECES:
            return
        if match.group(1) is not None:
            target = match.group(1).split("|", 1)[0].strip()
            if target:
                yield target
            continue
        piece = _trim(match.group())
        if piece and _is_link(piece, bare_titles):
            yield piece


def _trim(piece: str) -> str:
    """A piece without the quotes, brackets and punctuation around it; a closing
    bracket stays when the piece opens one (``/wiki/Foo_(bar)``). Linear: each count is
    taken once."""
    piece = piece.lstrip(_OPENERS)
    counts = {c: piece.count(c) for c in "()[]{}"}
    end = len(piece)
    while end and piece[end - 1] in _CLOSERS:
        last = piece[end - 1]
        opener = _PAIRS.get(last)
        if opener is not None and counts[opener] >= counts[last]:
            break
        if last in counts:
            counts[last] -= 1
        end -= 1
    return piece[:end]


def _is_link(piece: str, bare_titles: bool) -> bool:
    scheme, colon, rest = piece.partition(":")
    if colon and _SCHEME.fullmatch(scheme):
        lowered = scheme.lower()
        if lowered in ("http", "https") or lowered in _NOT_WEB:
            return True
    if piece.startswith("//") and len(piece) > 2:
        return True
    host = piece.split("/", 1)[0].lower()
    if "/" in piece and _HOST.fullmatch(host) or _is_wikimedia(host):
        return True
    return bare_titles and bool(colon) and _namespace(scheme) in _SPECIAL | _USER | _FILE


def parse_link(piece: str) -> WikiLink:
    """One link (an address, or a bare title such as ``Special:Diff/123``), parsed."""
    warnings: list[LinkWarning] = []
    shown = _shown(piece, MAX_LINK_CHARS)
    if len(piece) > MAX_LINK_CHARS:
        piece = piece[:MAX_LINK_CHARS]
        warnings.append(LinkWarning.CUT)
    scheme, colon, _rest = piece.partition(":")
    lowered = scheme.lower() if colon and _SCHEME.fullmatch(scheme) else ""
    if lowered in _NOT_WEB:
        return WikiLink(shown, LinkKind.OTHER, warnings=(LinkWarning.NOT_WEB, *warnings))
    if lowered in ("http", "https"):
        address = piece
    elif piece.startswith("//"):
        address = "https:" + piece
    elif (
        "/" in piece
        and _HOST.fullmatch(piece.split("/", 1)[0].lower())
        or (_is_wikimedia(piece.lower()))
    ):
        address = "https://" + piece
    else:
        return replace(_title_link(piece, {}), text=shown, warnings=tuple(warnings))
    return _address_link(address, shown, warnings)


def _address_link(address: str, shown: str, warnings: list[LinkWarning]) -> WikiLink:
    # Browsers read a backslash as a slash in a web address: so does this, or
    # ``https://example.com\@fa.wikipedia.org`` would pass for Wikipedia.
    try:
        parts = urlsplit(address.replace("\\", "/"))
        port = parts.port
    except ValueError:
        return WikiLink(shown, LinkKind.OTHER, warnings=(LinkWarning.NOT_WIKIMEDIA, *warnings))
    host = (parts.hostname or "").rstrip(".")
    labels = host.split(".")
    mobile = len(labels) >= 3 and labels[-3] == "m" and _is_wikimedia(host)
    if mobile:
        host = ".".join(labels[:-3] + labels[-2:])
    if not _is_wikimedia(host) or port not in (None, 80, 443):
        warnings.insert(0, LinkWarning.NOT_WIKIMEDIA)
    # The first fields only: a query of thousands is read no further.
    query = dict(parse_qsl("&".join(parts.query.split("&", 50)[:50]), errors="replace"))
    path = parts.path
    if host == "w.wiki" or not (path.startswith("/wiki/") or _is_script(path)):
        found = WikiLink("", LinkKind.OTHER)
    elif path.startswith("/wiki/"):
        found = _title_link(unquote(path[len("/wiki/") :], errors="replace"), query)
    else:
        found = _title_link(query.get("title", ""), query)
    return replace(
        found, text=shown, host=_shown(host, 255), mobile=mobile, warnings=tuple(warnings)
    )


def _is_script(path: str) -> bool:
    return path in ("/w/index.php", "/index.php", "/", "")


def _title_link(title: str, query: dict[str, str]) -> WikiLink:
    """What a title (decoded) and a query (``diff``, ``oldid``, ``target``) point at."""
    title = " ".join(title.replace("_", " ").split())
    diff, oldid = _revision(query.get("diff", ""), words=True), _revision(query.get("oldid", ""))
    if diff:
        return _link(LinkKind.DIFF, title, diff=diff, oldid=oldid)
    if oldid:
        return _link(LinkKind.REVISION, title, oldid=oldid)
    namespace, colon, name = title.partition(":")
    namespace = _namespace(namespace)
    if not colon or not name.strip():
        return _link(LinkKind.PAGE if title else LinkKind.OTHER, title)
    if namespace in _USER:
        return _link(LinkKind.USER, title, user=name.split("/", 1)[0].strip())
    if namespace in _FILE:
        return _link(LinkKind.FILE, title)
    if namespace not in _SPECIAL:
        return _link(LinkKind.PAGE, title)
    page, _slash, argument = name.partition("/")
    page = _namespace(page)
    if page in _DIFF:
        first, _s, second = argument.partition("/")
        if second:
            return _link(LinkKind.DIFF, title, diff=_revision(second, True), oldid=_revision(first))
        return _link(LinkKind.DIFF, title, diff=_revision(first))
    if page in _PERMALINK:
        return _link(LinkKind.REVISION, title, oldid=_revision(argument.split("/", 1)[0]))
    if page in _CONTRIBUTIONS:
        user = argument or query.get("target", "") or query.get("user", "")
        return _link(LinkKind.CONTRIBUTIONS, title, user=" ".join(user.replace("_", " ").split()))
    return _link(LinkKind.SPECIAL, title)


def _link(
    kind: LinkKind, title: str, *, diff: str = "", oldid: str = "", user: str = ""
) -> WikiLink:
    return WikiLink(
        "",
        kind,
        title=_shown(title, MAX_TITLE_CHARS),
        diff=diff,
        oldid=oldid,
        user=_shown(user, MAX_TITLE_CHARS),
    )


def _revision(value: str, words: bool = False) -> str:
    """A revision id as digits (``diff`` also takes prev, next, cur), else ""."""
    value = value.strip().lower()
    if _IDS.fullmatch(value) or words and value in ("prev", "next", "cur"):
        return value
    return ""


def _namespace(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).casefold()


def _is_wikimedia(host: str) -> bool:
    if not _HOST.fullmatch(host):
        return False
    return any(host == d or host.endswith("." + d) for d in WIKIMEDIA_DOMAINS)


def _shown(value: str, limit: int) -> str:
    """``value`` cut at ``limit`` characters, its hidden characters made visible."""
    cut = value[:limit] + _ELLIPSIS if len(value) > limit else value
    return visible_name(cut)
