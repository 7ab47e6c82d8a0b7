"""What every response of every app must carry, as one function that lists what is wrong.

Used for the source UI, the transfer API and the journalist UI: a route added later is
checked without anyone remembering to add it, because the tests walk ``app.url_map``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from http.cookies import Morsel, SimpleCookie

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter, Rule
from werkzeug.test import TestResponse

# Values a route's placeholders take when a test walks every route; anything unknown
# becomes a random UUID, which no route accepts as an existing object.
PLACEHOLDERS = {"lang": "fr", "filename": "style.css", "path": "style.css"}

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
#: The source UI's language cookie (source_ui/i18n.py): the one cookie that may be
#: SameSite=Lax and outlive the browser, because it holds a locale name and nothing else.
LANGUAGE_COOKIE = "sdwm_lang"
_LOCALE_NAME = re.compile(r"[a-z]{2,3}(_[A-Z][a-z]{3}|_[A-Z]{2})?")
_HOST_SOURCE = re.compile(r"(?:https?:|wss?:|\*|data:|blob:)")


def routes(app: Flask) -> Iterator[tuple[Rule, str]]:
    """Every rule of ``app`` with a concrete path to request it."""
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        values = {arg: _placeholder(rule, arg) for arg in rule.arguments}
        yield rule, rule.build(values, append_unknown=False)[1]  # type: ignore[index]


def walk(
    app: Flask, client: FlaskClient, token_page: str, last: tuple[str, ...] = ()
) -> tuple[list[str], set[str]]:
    """Request every route with GET and POST (with a fresh CSRF token from ``token_page``),
    the endpoints in ``last`` (a logout) at the end; return the problems and endpoints."""
    problems: list[str] = []
    seen = set()
    for rule, path in sorted(routes(app), key=lambda r: r[0].endpoint in last):
        seen.add(rule.endpoint)
        for method in ("GET", "POST"):
            token = CSRF.search(client.get(token_page).text)
            data = {"csrf_token": token.group(1)} if token else {}
            with client.open(path, method=method, data=data) as response:
                label = f"{method} {path} -> {response.status_code}"
                if response.status_code >= 500:
                    problems.append(f"{label}: server error")
                problems += [f"{label}: {p}" for p in header_problems(response)]
    return problems, seen


def _placeholder(rule: Rule, arg: str) -> object:
    if isinstance(rule._converters.get(arg), IntegerConverter):
        return 1
    return PLACEHOLDERS.get(arg, str(uuid.uuid4()))


def header_problems(response: TestResponse, *, html_csp: bool = True) -> list[str]:
    """What is wrong with the security headers and cookies of a test client's response.

    :param html_csp: also require ``form-action`` to be pinned (apps with forms).
    """
    return headers_problems(response.headers, response.headers.getlist("Set-Cookie"), html_csp)


def headers_problems(
    headers: Mapping[str, str], set_cookies: Iterable[str], html_csp: bool = True
) -> list[str]:
    """What is wrong with a response's headers and its ``Set-Cookie`` lines."""
    problems = []
    csp = headers.get("Content-Security-Policy", "")
    if not csp:
        problems.append("no Content-Security-Policy")
    else:
        directives = {d.split()[0]: d.split()[1:] for d in (p.strip() for p in csp.split(";")) if d}
        if "unsafe-" in csp:
            problems.append(f"CSP allows unsafe-*: {csp}")
        if directives.get("default-src") != ["'none'"]:
            problems.append(f"CSP default-src is not 'none': {csp}")
        if directives.get("frame-ancestors") != ["'none'"]:
            problems.append(f"CSP frame-ancestors is not 'none': {csp}")
        if _HOST_SOURCE.search(csp):
            problems.append(f"CSP allows another origin or scheme: {csp}")
        if "script-src" in directives and directives["script-src"] != ["'none'"]:
            problems.append(f"CSP allows scripts: {csp}")
        if html_csp and directives.get("form-action") not in (["'self'"], ["'none'"]):
            problems.append(f"CSP does not pin form-action: {csp}")
    if "no-store" not in headers.get("Cache-Control", ""):
        problems.append(f"Cache-Control lacks no-store: {headers.get('Cache-Control')!r}")
    if headers.get("X-Content-Type-Options") != "nosniff":
        problems.append("X-Content-Type-Options is not nosniff")
    if headers.get("Referrer-Policy") != "no-referrer":
        problems.append(f"Referrer-Policy is {headers.get('Referrer-Policy')!r}")
    if "Server" in headers:
        problems.append(f"Server header names the server: {headers['Server']}")
    for line in set_cookies:
        problems += cookie_problems(line)
    return problems


def cookie_problems(set_cookie: str) -> list[str]:
    """What is wrong with one ``Set-Cookie`` line.

    A live cookie must be HttpOnly, SameSite=Strict, host-only (no Domain) and die with
    the browser (no Expires, no Max-Age). A cookie being deleted (empty value, expiry in
    the past) must still be HttpOnly and SameSite=Strict so the deletion matches it.
    The source UI's language cookie has rules of its own (:func:`_language_cookie_problems`).
    """
    jar: SimpleCookie = SimpleCookie()
    jar.load(set_cookie)
    problems = []
    for name, morsel in jar.items():
        where = f"cookie {name}"
        deleting = morsel.value == "" or morsel["max-age"] == "0"
        if name == LANGUAGE_COOKIE:
            problems += _language_cookie_problems(morsel.value, morsel, deleting)
            continue
        if not morsel["httponly"]:
            problems.append(f"{where} is not HttpOnly")
        if str(morsel["samesite"]).lower() != "strict":
            problems.append(f"{where} is not SameSite=Strict")
        if morsel["domain"]:
            problems.append(f"{where} names a Domain: {morsel['domain']}")
        if not deleting and (morsel["expires"] or morsel["max-age"]):
            problems.append(f"{where} outlives the browser: {set_cookie}")
    return problems


def _language_cookie_problems(value: str, morsel: Morsel[str], deleting: bool) -> list[str]:
    """The language cookie: HttpOnly, SameSite=Lax (sent on a link from another site),
    host-only, for the whole site, and its value a locale name only."""
    problems = []
    if not morsel["httponly"]:
        problems.append("language cookie is not HttpOnly")
    if str(morsel["samesite"]).lower() != "lax":
        problems.append("language cookie is not SameSite=Lax")
    if morsel["domain"]:
        problems.append(f"language cookie names a Domain: {morsel['domain']}")
    if morsel["path"] != "/":
        problems.append(f"language cookie is not for the whole site: {morsel['path']!r}")
    if not deleting and not _LOCALE_NAME.fullmatch(value):
        problems.append(f"language cookie holds more than a locale name: {value!r}")
    return problems
