"""Every source page in every language, in headless Chromium with JavaScript off, through
the real server: a screenshot for a person to look at (artifacts/i18n/<lang>/<page>.png),
and what a machine can check on the spot: translated, right direction, no script, nothing
from another site, under 100 KB on the wire, no sideways scrolling on a phone, and no
serious or critical accessibility violation (axe-core 4.14, vendored in vendor/).

One server, one browser and one source for the whole module. Each language walks the
pages a source sees, in order, in its own browser context; a few languages walk at once
(the server and the browser spend most of a walk waiting), and each language's test then
reports what its walk found.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from sqlalchemy import select

from securedrop_wm.drop import open_drop
from securedrop_wm.models import Source
from securedrop_wm.settings import Settings, load_settings
from securedrop_wm.sources import add_reply
from securedrop_wm.translations import html_lang, load_translations, text_direction
from source_ui.sessions import EncryptedSessionInterface, SessionStore, SourceSession
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import Responders, init_data_dir, short_tempdir
from tests.i18n.catalogs import ROOT
from tests.live import LiveServer, free_port

pytestmark = pytest.mark.browser

LANGUAGES = Settings.languages
TRANSLATIONS = ROOT / "source_ui" / "translations"
ARTIFACTS = ROOT / "artifacts" / "i18n"
AXE = Path(__file__).with_name("vendor") / "axe.min.js"
# What a browser asks for, per language: zh_Hans and zh_Hant arrive as region tags.
ACCEPT = {"zh_Hans": "zh-CN", "zh_Hant": "zh-TW", "pt_BR": "pt-BR"}
WALKING_AT_ONCE = 2
MAX_PAGE_BYTES = 100 * 1024
PHONE_WIDTH = 360
SCREEN = {"width": 1000, "height": 800}
REPLY = "We read your report and will help. — مرحبا — Мы на связи."
# (page, heading it must show, translated; status it must answer with)
PAGES = [
    ("landing", "Report an incident safely", 200),
    ("safety", "How to stay safe while reporting", 200),
    ("generate", "Your codename", 200),
    ("login", "Enter your codename", 200),
    ("login-error", "Enter your codename", 401),
    ("error-404", "Something went wrong", 404),
    ("replies", "Your reports and the replies", 200),
    ("delete-reply", "Delete this reply?", 200),
    ("message", "Send a message", 200),
    ("files", "Send files one at a time", 200),
    ("submit", "Tell us what happened", 200),
    ("thanks", "Thank you. Your report was received.", 200),
    ("thanks-danger", "Your report was received. Now, your safety first:", 200),
    ("logged-out", "You are logged out", 200),
    ("session-expired", "Your session expired", 401),
]


@dataclass
class Shot:
    """One page as a source received it, and what is wrong with it."""

    name: str
    status: int
    html: str
    bytes_on_wire: int
    urls: list[str]
    axe: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class Visit:
    """Everything one language's walk saw."""

    shots: list[Shot] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass
class Visits:
    """Every language's walk, and axe's verdict on a page broken on purpose."""

    languages: dict[str, Visit]
    control: dict[str, str]


@pytest.fixture(scope="module")
def visits(responders: Responders) -> Iterator[Visits]:
    """Start the server, make a source with a reply, walk every language, stop."""
    base = short_tempdir("sdwm-i18n-")
    config = init_data_dir(base / "data", responders)
    settings = load_settings(config, environ={})
    try:
        with LiveServer(config, free_port()) as server:
            yield asyncio.run(_visit_all(server.url, settings))
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(settings.gpg_home), "--kill", "gpg-agent"],
            check=False,
        )
        shutil.rmtree(base, ignore_errors=True)


async def _visit_all(url: str, settings: Settings) -> Visits:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            codename = await _new_source(browser, url, settings)
            slots = asyncio.Semaphore(WALKING_AT_ONCE)

            async def visit(lang: str) -> Visit:
                async with slots:
                    return await _visit(browser, url, settings, lang, codename)

            results = await asyncio.gather(*(visit(lang) for lang in LANGUAGES))
            control = await _control(browser, url, results[0])
        finally:
            await browser.close()
    return Visits(dict(zip(LANGUAGES, results, strict=True)), control)


async def _control(browser: Browser, url: str, visit: Visit) -> dict[str, str]:
    """axe on the first captured page with its language dropped and an image without a
    text alternative added: what a screen-reader user would trip on."""
    broken = visit.shots[0].html.replace(' lang="', ' data-lang="', 1)
    broken = broken.replace("<main", '<img src="/static/none.png"><main', 1)
    context = await browser.new_context(bypass_csp=True)
    try:
        axe = await AxeRunner.start(await context.new_page(), url)
        return {v["id"]: v["impact"] for v in await axe.run(broken)}
    finally:
        await context.close()


async def _new_source(browser: Browser, url: str, settings: Settings) -> str:
    """A source made through the real pages, with one reply from the team (added with
    the core's ``add_reply``, as the responders' side would)."""
    context = await browser.new_context(java_script_enabled=False)
    page = await context.new_page()
    await page.goto(f"{url}/generate?words=en")
    codename = await page.inner_text("#codename")
    async with page.expect_navigation():
        await page.click("main form button[type=submit]")
    await context.close()
    drop = open_drop(settings, run_migrations=False)
    try:
        with drop.sessions() as db:
            designation = db.scalars(select(Source.designation)).one()
        add_reply(drop, designation, REPLY)
    finally:
        drop.close()
    return codename


async def _visit(browser: Browser, url: str, settings: Settings, lang: str, codename: str) -> Visit:
    visit = Visit()
    started = time.monotonic()
    context = await browser.new_context(
        java_script_enabled=False,
        locale=ACCEPT.get(lang, lang.replace("_", "-")),
        viewport=SCREEN,
    )
    # axe needs JavaScript, which the source's context has off: it runs in a second
    # context, JavaScript on and CSP bypassed to let it in, on the very bytes the
    # source's browser received (the answer to a form cannot be asked for twice), with
    # the page's own stylesheet from the live server.
    axe_context = await browser.new_context(bypass_csp=True, viewport=SCREEN)
    try:
        walk = Walk(lang, url, settings, await context.new_page())
        axe = await AxeRunner.start(await axe_context.new_page(), url)
        try:
            await walk.all_pages(codename)
        except Exception as e:  # reported by this language's test, with the others' results
            visit.problems.append(f"walk stopped after {len(walk.shots)} pages: {e!r}")
        for shot in walk.shots:
            violations = await axe.run(shot.html)
            shot.axe = {v["id"]: v["impact"] for v in violations}
            shot.problems.extend(
                f"axe {v['impact']}: {v['id']} ({v['help']}) at {v['nodes']}"
                for v in violations
                if v["impact"] in ("serious", "critical")
            )
        visit.shots = walk.shots
    finally:
        await context.close()
        await axe_context.close()
    visit.seconds = time.monotonic() - started
    return visit


class AxeRunner:
    """axe-core loaded once into a page of the server's origin; each check replaces the
    document, and axe (a global of the window) stays."""

    def __init__(self, page: Page) -> None:
        self.page = page

    @classmethod
    async def start(cls, page: Page, url: str) -> AxeRunner:
        await page.goto(f"{url}/")
        await page.add_script_tag(path=str(AXE))
        return cls(page)

    async def run(self, html: str) -> list[dict[str, Any]]:
        await self.page.set_content(html, wait_until="load")
        result: list[dict[str, Any]] = await self.page.evaluate(
            """async () => {
                const r = await axe.run(document, {resultTypes: ['violations']});
                return r.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')),
                }));
            }"""
        )
        return result


class _Scripts(HTMLParser):
    """What could run code in a page: script elements and on* attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.found.append("<script>")
        self.found.extend(f"{tag}[{name}]" for name, _ in attrs if name.startswith("on"))


def scripts_in(html: str) -> list[str]:
    parser = _Scripts()
    parser.feed(html)
    return parser.found


def expired_cookie(settings: Settings, lang: str) -> str:
    """A session cookie as the server wrote it for a visit in ``lang`` that ended long ago
    (the expiry page keeps the language chosen in it)."""
    lifetime = settings.session_minutes * 60
    then = lambda: time.time() - 10 * lifetime  # noqa: E731
    # A store of its own: the record the cookie names is unknown to the server's store.
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:  # noqa: S108
        store = SessionStore(
            Path(folder) / "sessions.sqlite",
            idle=lifetime,
            absolute=lifetime,
            token_lifetime=lifetime,
            clock=then,
        )
        past = EncryptedSessionInterface(settings.session_key, lifetime, store, clock=then)
        app = Flask("expired-cookie")
        app.config["SESSION_COOKIE_NAME"] = "sdwm"
        response = Response()
        past.save_session(app, SourceSession({"lang": lang, "sid": "gone"}), response)
    return response.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)[1]


class Walk:
    """A source's visit in one language, page after page, each one captured."""

    def __init__(self, lang: str, url: str, settings: Settings, page: Page) -> None:
        self.lang = lang
        self.url = url
        self.settings = settings
        self.page = page
        self.t = load_translations(TRANSLATIONS, lang)
        self.shots: list[Shot] = []
        self.folder = ARTIFACTS / lang
        self.folder.mkdir(parents=True, exist_ok=True)

    async def all_pages(self, codename: str) -> None:
        """The pages of a source's visit, in the order a source meets them."""
        url = self.url
        steps: dict[str, Callable[[Page], Awaitable[Any]]] = {
            # The language is chosen the way a source does it: with the link.
            "landing": lambda p: p.goto(f"{url}/language/{self.lang}?next=/"),
            "safety": lambda p: p.goto(f"{url}/safety"),
            "generate": lambda p: p.goto(f"{url}/generate"),
            "login": lambda p: p.goto(f"{url}/login"),
            "login-error": self._log_in("abacus " * 7),
            "error-404": lambda p: p.goto(f"{url}/no-such-page"),
            "replies": self._log_in(codename),
            "delete-reply": lambda p: p.click("a.button[href*='/delete']"),
            "message": lambda p: p.goto(f"{url}/message"),
            "files": lambda p: p.goto(f"{url}/files"),
            "submit": lambda p: p.goto(f"{url}/submit"),
            "thanks": self._report("routine"),
            "thanks-danger": self._report("danger"),
            "logged-out": self._log_out,
            "session-expired": self._come_back_too_late,
        }
        for name, heading, status in PAGES:
            await self._capture(name, heading, status, steps[name])

    async def _capture(
        self, name: str, heading: str, status: int, action: Callable[[Page], Awaitable[Any]]
    ) -> None:
        """Do ``action``; record what came over the wire, check and photograph the page."""
        responses: list[Any] = []

        def record(response: Any) -> None:
            responses.append(response)

        self.page.on("response", record)
        try:
            await action(self.page)
            await self.page.wait_for_load_state("load")
        finally:
            self.page.remove_listener("response", record)
        document = [r for r in responses if r.request.resource_type == "document"][-1]
        sizes = [await r.request.sizes() for r in responses]
        shot = Shot(
            name=name,
            status=document.status,
            html=await document.text(),
            bytes_on_wire=sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes),
            urls=[r.url for r in responses],
        )
        if shot.status != status:
            shot.problems.append(f"status {shot.status}, not {status}")
        await self._check(shot, heading)
        await self.page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)
        self.shots.append(shot)

    async def _check(self, shot: Shot, heading: str) -> None:
        p = self.page
        expected = (html_lang(self.lang), text_direction(self.lang))
        got = (await p.get_attribute("html", "lang"), await p.get_attribute("html", "dir"))
        if got != expected:
            shot.problems.append(f"<html lang dir> is {got}, not {expected}")
        h1 = (await p.inner_text("h1")).strip()
        if h1 != self.t.gettext(heading):
            shot.problems.append(f"heading {h1!r} is not the translation of {heading!r}")
        found = scripts_in(shot.html) + ["<script>"] * await p.locator("script").count()
        if found:
            shot.problems.append(f"carries script: {found}")
        foreign = [u for u in shot.urls if not u.startswith(self.url + "/")]
        if foreign:
            shot.problems.append(f"loads from other sites: {foreign}")
        if shot.bytes_on_wire >= MAX_PAGE_BYTES:
            shot.problems.append(f"weighs {shot.bytes_on_wire} bytes on the wire")
        await p.set_viewport_size({"width": PHONE_WIDTH, "height": 740})
        overflow = await p.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        await p.set_viewport_size(SCREEN)
        if overflow > 0:
            shot.problems.append(f"scrolls sideways by {overflow}px on a {PHONE_WIDTH}px phone")

    def _log_in(self, codename: str) -> Callable[[Page], Awaitable[None]]:
        async def act(p: Page) -> None:
            await p.goto(f"{self.url}/login")
            await p.fill("#codename", codename)
            async with p.expect_navigation():
                await p.click("main form button[type=submit]")

        return act

    def _report(self, urgency: str) -> Callable[[Page], Awaitable[None]]:
        async def act(p: Page) -> None:
            await p.goto(f"{self.url}/submit")
            await p.check("input[name=category][value=harassment]")
            await p.check(f"input[name=urgency][value={urgency}]")
            await p.fill("#what_happened", "Someone posted my address on a talk page.")
            async with p.expect_navigation():
                await p.click("main form button[type=submit]")

        return act

    async def _log_out(self, p: Page) -> None:
        async with p.expect_navigation():
            await p.click("header form button[type=submit]")

    async def _come_back_too_late(self, p: Page) -> None:
        context: BrowserContext = p.context
        cookie = {
            "name": "sdwm",
            "value": expired_cookie(self.settings, self.lang),
            "url": self.url,
        }
        await context.add_cookies([cookie])  # type: ignore[list-item]
        await p.goto(f"{self.url}/login")


def test_the_accessibility_check_sees_a_broken_page(visits: Visits) -> None:
    assert visits.control.get("html-has-lang") == "serious"
    assert visits.control.get("image-alt") == "critical"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_source_page_in_every_language(lang: str, visits: Visits) -> None:
    visit = visits.languages[lang]
    report = {
        s.name: {"bytes_on_wire": s.bytes_on_wire, "axe": s.axe, "problems": s.problems}
        for s in visit.shots
    }
    (ARTIFACTS / lang / "report.json").write_text(
        json.dumps({"seconds": round(visit.seconds, 1), "pages": report}, indent=1)
    )
    assert visit.problems == []
    assert [s.name for s in visit.shots] == [name for name, _, _ in PAGES]
    assert all((ARTIFACTS / lang / f"{s.name}.png").stat().st_size > 0 for s in visit.shots)
    assert [f"{s.name}: {p}" for s in visit.shots for p in s.problems] == []
