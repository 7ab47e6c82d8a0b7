"""Every responder page in every responder language, in headless Chromium with JavaScript
off, through the real workstation server (``securedrop-wm workstation serve``): a
screenshot for a person to look at (artifacts/journalist/a11y/<lang>/<page>.png), and what
a machine can check on the spot: the right ``<html lang dir>``, no script, nothing from
another site, a ``dir="auto"`` on every text input and text area, no sideways scrolling on
a 360 px phone, and no serious or critical accessibility violation (axe-core, vendored in
tests/i18n/vendor, run as tests/i18n/test_pages.py runs it).

The languages are whatever catalogs journalist_ui/translations holds when the test runs,
plus English. One login (a TOTP code is good once) serves every language: each language
walks in its own browser context with the session cookie and its own Accept-Language, a
couple of languages at once.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from journalist_ui import TRANSLATIONS
from sdwm_web.i18n import catalog_locales
from securedrop_wm.drop import Drop
from securedrop_wm.translations import html_lang, text_direction
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.browser_journalist.test_responder_flow import ws_server  # noqa: F401 (fixture)
from tests.i18n.test_pages import AxeRunner, scripts_in
from tests.workstation.fixtures import ADMIN, ADMIN_PASSWORD, Station, export, source_reports

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "journalist" / "a11y"
WALKING_AT_ONCE = 2
PHONE_WIDTH = 360
PHONE_SHOTS = {"cases", "case"}  # also photographed as a phone shows them
SCREEN = {"width": 1100, "height": 800}
ARABIC_REPORT = "نشر شخص ما عنواني على صفحة نقاش. — Someone posted my address."
# (page, status it must answer with); how to reach each one is in Walk.steps.
PAGES = [
    ("login", 200),
    ("cases", 200),
    ("case", 200),
    ("search", 200),
    ("import", 200),
    ("import-preview", 200),
    ("outbox", 200),
    ("stats", 200),
    ("transparency", 200),
    ("audit", 200),
    ("retention", 200),
    ("accounts", 200),
    ("keys", 200),
    ("account", 200),
    ("error-404", 404),
]


def responder_languages() -> list[str]:
    """English and every responder catalog present now (more arrive without a change here);
    ``A11Y_LANGUAGES="en ar"`` walks only those, to check one change quickly."""
    chosen = os.environ.get("A11Y_LANGUAGES", "").split()
    return chosen or sorted(catalog_locales(TRANSLATIONS))


@dataclass
class Shot:
    """One page as the responder's browser received it, and what is wrong with it."""

    name: str
    status: int
    html: str
    urls: list[str]
    axe: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass
class Visit:
    """Everything one language's walk saw."""

    shots: list[Shot] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _TextFields(HTMLParser):
    """Text inputs and text areas without ``dir="auto"`` (typed text takes the page's
    direction otherwise: Arabic typed left to right on an English page). A field for
    digits only (``inputmode="numeric"``: a code, a case number) has no direction."""

    TEXT_TYPES = {None, "text", "search"}

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        text_input = tag == "input" and a.get("type") in self.TEXT_TYPES
        text_input = text_input and a.get("inputmode") != "numeric"
        if (text_input or tag == "textarea") and a.get("dir") != "auto":
            self.found.append(f"{tag}[name={a.get('name')}]")


def text_fields_without_dir(html: str) -> list[str]:
    parser = _TextFields()
    parser.feed(html)
    return parser.found


def picture() -> bytes:
    """A 640 x 480 PNG: its size shows in the file's metadata on the case page."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (640, 480), (40, 90, 160)).save(out, format="PNG")
    return out.getvalue()


class Walk:
    """A responder's visit in one language, page after page, each one captured."""

    def __init__(self, lang: str, url: str, bundle: Path, case: str, page: Page) -> None:
        self.lang = lang
        self.url = url
        self.bundle = bundle
        self.case = case
        self.page = page
        self.shots: list[Shot] = []
        self.folder = ARTIFACTS / lang
        self.folder.mkdir(parents=True, exist_ok=True)

    async def all_pages(self, anonymous: Page) -> None:
        url = self.url
        year = time.gmtime().tm_year
        steps: dict[str, Callable[[Page], Awaitable[Any]]] = {
            "cases": lambda p: p.goto(f"{url}/"),
            "case": self._case,
            "search": lambda p: p.goto(f"{url}/search?q=address"),
            "import": lambda p: p.goto(f"{url}/import"),
            "import-preview": self._upload,
            "outbox": lambda p: p.goto(f"{url}/outbox"),
            "stats": lambda p: p.goto(f"{url}/stats"),
            "transparency": lambda p: p.goto(f"{url}/stats/report?year={year}"),
            "audit": lambda p: p.goto(f"{url}/audit"),
            "retention": lambda p: p.goto(f"{url}/retention"),
            "accounts": lambda p: p.goto(f"{url}/admin/accounts"),
            "keys": lambda p: p.goto(f"{url}/keys"),
            "account": lambda p: p.goto(f"{url}/account"),
            "error-404": lambda p: p.goto(f"{url}/no-such-page"),
        }
        # The login page as someone not logged in sees it.
        await self._capture(anonymous, "login", 200, lambda p: p.goto(f"{url}/login"))
        for name, status in PAGES[1:]:
            await self._capture(self.page, name, status, steps[name])

    async def _case(self, p: Page) -> None:
        """The case, with what is folded open (a file's metadata), as a reader opens it."""
        await p.goto(f"{self.url}{self.case}")
        for summary in await p.locator("details > summary").all():
            await summary.click()

    async def _upload(self, p: Page) -> None:
        await p.goto(f"{self.url}/import")
        await p.set_input_files("input[name=bundle]", str(self.bundle))
        async with p.expect_navigation():
            await p.click("main form[enctype] button[type=submit]")

    async def _capture(
        self, page: Page, name: str, status: int, action: Callable[[Page], Awaitable[Any]]
    ) -> None:
        """Do ``action``; record what came over the wire, check and photograph the page."""
        responses: list[Any] = []

        def record(response: Any) -> None:
            responses.append(response)

        page.on("response", record)
        try:
            await action(page)
            await page.wait_for_load_state("load")
        finally:
            page.remove_listener("response", record)
        document = [r for r in responses if r.request.resource_type == "document"][-1]
        shot = Shot(name, document.status, await document.text(), [r.url for r in responses])
        if shot.status != status:
            shot.problems.append(f"status {shot.status}, not {status} ({page.url})")
        await self._check(page, shot)
        await page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)
        self.shots.append(shot)

    async def _check(self, p: Page, shot: Shot) -> None:
        expected = (html_lang(self.lang), text_direction(self.lang))
        got = (await p.get_attribute("html", "lang"), await p.get_attribute("html", "dir"))
        if got != expected:
            shot.problems.append(f"<html lang dir> is {got}, not {expected}")
        if await p.locator("h1").count() != 1:
            shot.problems.append("has no single <h1>")
        found = scripts_in(shot.html) + ["<script>"] * await p.locator("script").count()
        if found:
            shot.problems.append(f"carries script: {found}")
        foreign = [u for u in shot.urls if not u.startswith(self.url + "/")]
        if foreign:
            shot.problems.append(f"loads from other sites: {foreign}")
        undirected = text_fields_without_dir(shot.html)
        if undirected:
            shot.problems.append(f'text fields without dir="auto": {undirected}')
        await p.set_viewport_size({"width": PHONE_WIDTH, "height": 740})
        overflow = await p.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if shot.name in PHONE_SHOTS:
            await p.screenshot(path=str(self.folder / f"{shot.name}-phone.png"), full_page=True)
        await p.set_viewport_size(SCREEN)
        if overflow > 0:
            shot.problems.append(f"scrolls sideways by {overflow}px on a {PHONE_WIDTH}px phone")


async def _log_in(
    browser: Browser, url: str, station: Station, bundle: Path
) -> tuple[list[Any], str]:
    """Log in as the admin, import ``bundle`` through the pages; the session's cookies and
    the path of the first case's page."""
    context = await browser.new_context(java_script_enabled=False, locale="en")
    try:
        p = await context.new_page()
        await p.goto(f"{url}/login")
        await p.fill("input[name=username]", ADMIN)
        await p.fill("input[name=password]", ADMIN_PASSWORD)
        await p.fill("input[name=code]", station.code())
        async with p.expect_navigation():
            await p.click("main form button[type=submit]")
        await p.goto(f"{url}/import")
        await p.set_input_files("input[name=bundle]", str(bundle))
        async with p.expect_navigation():
            await p.click("main form[enctype] button[type=submit]")
        async with p.expect_navigation():
            await p.click("button[name=import]")
        assert "2 new case(s)" in await p.inner_text("main")
        case = await p.get_attribute("td.designation a >> nth=0", "href")
        assert case and re.fullmatch(r"/cases/\d+", case), case
        return await context.cookies(), case
    finally:
        await context.close()


async def _visit(
    browser: Browser, url: str, cookies: list[Any], lang: str, bundle: Path, case: str
) -> Visit:
    visit = Visit()
    started = time.monotonic()
    locale = lang.replace("_", "-")
    context = await browser.new_context(java_script_enabled=False, locale=locale, viewport=SCREEN)
    anonymous = await browser.new_context(java_script_enabled=False, locale=locale, viewport=SCREEN)
    # axe needs JavaScript: it runs in a third context on the very bytes the responder's
    # browser received (a form's answer cannot be asked for twice), see tests/i18n.
    axe_context = await browser.new_context(bypass_csp=True, viewport=SCREEN)
    try:
        await context.add_cookies(cookies)
        walk = Walk(lang, url, bundle, case, await context.new_page())
        axe = await AxeRunner.start(await axe_context.new_page(), url)
        try:
            await walk.all_pages(await anonymous.new_page())
        except Exception as e:  # reported with what the walk saw until then
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
        for c in (context, anonymous, axe_context):
            await c.close()
    visit.seconds = time.monotonic() - started
    return visit


# The header's rules of the stylesheet before this one: the "Log out" button was white on
# the browser's light grey button (about 1.1:1).
OLD_HEADER_CSS = "header { background: #1f3a5a; color: #fff; } header button { color: #fff; }"


async def _control(browser: Browser, url: str, visit: Visit) -> dict[str, str]:
    """axe on the first logged-in page as it was styled before: the check must see the
    unreadable log-out button."""
    context = await browser.new_context(bypass_csp=True, viewport=SCREEN)
    try:
        await context.route(
            "**/static/style.css",
            lambda route: route.fulfill(body=OLD_HEADER_CSS, content_type="text/css"),
        )
        axe = await AxeRunner.start(await context.new_page(), url)
        return {v["id"]: v["impact"] for v in await axe.run(visit.shots[1].html)}
    finally:
        await context.close()


async def _visit_all(
    url: str, station: Station, bundle: Path, languages: list[str]
) -> tuple[dict[str, Visit], dict[str, str]]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            cookies, case = await _log_in(browser, url, station, bundle)
            slots = asyncio.Semaphore(WALKING_AT_ONCE)

            async def visit(lang: str) -> Visit:
                async with slots:
                    return await _visit(browser, url, cookies, lang, bundle, case)

            results = await asyncio.gather(*(visit(lang) for lang in languages))
            control = await _control(browser, url, results[0])
        finally:
            await browser.close()
    return dict(zip(languages, results, strict=True)), control


def test_text_fields_without_dir_are_found() -> None:
    page = (
        '<input name="a" dir="auto"><input name="b"><input type="search" name="c">'
        '<input type="password" name="d"><textarea name="e"></textarea>'
        '<input name="h" inputmode="numeric">'
        '<textarea name="f" dir="auto"></textarea><input type="hidden" name="g">'
    )
    assert text_fields_without_dir(page) == ["input[name=b]", "input[name=c]", "textarea[name=e]"]


def test_every_responder_page_in_every_language(
    ws_server: str,  # noqa: F811 (the fixture imported above)
    station: Station,
    drop: Drop,
    tmp_path: Path,
) -> None:
    source_reports(drop, ARABIC_REPORT, files=[(picture(), "صورة.png")], urgency="danger")
    source_reports(drop, "Someone is following my edits.", urgency="urgent", category="threats")
    bundle = export(drop, tmp_path)
    languages = responder_languages()
    visits, control = asyncio.run(_visit_all(ws_server, station, bundle, languages))
    # The check sees the contrast this page had before (about 1.1:1).
    assert control.get("color-contrast") == "serious"
    failures = []
    for lang, visit in visits.items():
        pages = {s.name: {"axe": s.axe, "problems": s.problems} for s in visit.shots}
        (ARTIFACTS / lang / "report.json").write_text(
            json.dumps({"seconds": round(visit.seconds, 1), "pages": pages}, indent=1)
        )
        failures += [f"{lang}: {p}" for p in visit.problems]
        failures += [f"{lang} {s.name}: {p}" for s in visit.shots for p in s.problems]
        if [s.name for s in visit.shots] != [name for name, _ in PAGES]:
            failures.append(f"{lang}: walked {[s.name for s in visit.shots]}")
    assert failures == []
