"""A language choice that holds, in Debian's Chromium with JavaScript off, following the
links as a person would (issue 17, part 4): the picker at the top of the page, the same
codename after a language switch, the language kept after logout, and an arrival by a
language link on another site.

Screenshots of each step go to ``artifacts/browser/``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_source_flow import Visit
from tests.live import LiveServer, free_port

pytestmark = pytest.mark.browser

#: Another site for the arrival test: Chromium resolves this name to the loopback, so
#: the link really crosses sites (127.0.0.1 on another port would be the same site).
OTHER_SITE = "wiki.example"
RTL_WORDS = {"ar", "fa", "he", "ur"}


@pytest.fixture
def browser(live_server: LiveServer) -> Iterator[Browser]:
    """Debian's Chromium (tests/browser/chromium.py), with one more host name mapped to
    the loopback; closed before the server stops."""
    with sync_playwright() as p:
        args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {OTHER_SITE} 127.0.0.1"]
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield browser
        browser.close()


def tor_browser_visit(browser: Browser, name: str) -> Visit:
    """A JavaScript-free, 400 px wide page whose browser asks for English, as Tor
    Browser does whatever its user reads."""
    visit = Visit(browser, name)
    visit.context.close()
    visit.context = browser.new_context(
        java_script_enabled=False,
        locale="en-US",
        viewport={"width": 400, "height": 800},
    )
    visit.page = visit.context.new_page()
    visit.page.on("request", visit._on_request)
    visit.page.on("response", visit._on_response)
    return visit


def page_lang(page: Page) -> tuple[str | None, str | None]:
    html = page.locator("html")
    return html.get_attribute("lang"), html.get_attribute("dir")


def choose_with_the_top_picker(visit: Visit, language_name: str, label: str) -> None:
    """Use the picker at the top of the page: it leads to the list of languages, each in
    its own name; follow the one wanted."""
    page = visit.page
    picker = page.locator("#language-picker")
    box = picker.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 800, "picker not in the first screen"
    picker.click()
    assert urlsplit(page.url).fragment == "languages"
    visit.step(f"{label}-list")
    page.locator("#languages").get_by_role("link", name=language_name, exact=True).click()
    visit.step(label)


def test_the_language_holds_and_the_codename_stays(
    live_server: LiveServer, browser: Browser
) -> None:
    visit = tor_browser_visit(browser, "language")
    page = visit.page
    try:
        # Given a source on the landing page, in English (what Tor Browser asks for)
        page.goto(live_server.url + "/")
        visit.step("landing")
        assert page_lang(page) == ("en", "ltr")

        # When they switch to Arabic with the picker at the top of the page
        choose_with_the_top_picker(visit, "العربية", "arabic")
        assert page_lang(page) == ("ar", "rtl")
        assert urlsplit(page.url).path == "/"

        # And go to the codename page, and note the codename
        page.locator('a.button.primary[href="/generate"]').click()
        visit.step("codename-arabic")
        assert urlsplit(page.url).path == "/generate"
        codename_element = page.locator("#codename")
        codename = codename_element.inner_text().strip()
        words = codename_element.get_attribute("lang") or ""
        assert len(codename.split()) >= 7
        expected_dir = "rtl" if words.split("-")[0] in RTL_WORDS else "ltr"
        assert codename_element.get_attribute("dir") == expected_dir
        # (its words run in their own direction whatever the page's)
        box = codename_element.bounding_box()
        assert box is not None

        # When they switch to French with the picker
        choose_with_the_top_picker(visit, "Français", "codename-french")
        # Then the page is French and shows the same codename
        assert page_lang(page) == ("fr", "ltr")
        assert urlsplit(page.url).path == "/generate"
        assert page.locator("#codename").inner_text().strip() == codename
        if words != "fr":
            # a codename in French words is offered, never swapped in silently
            assert page.locator("#codename-offer").is_visible()
            assert (
                page.locator('#codename-offer input[name="words"]').get_attribute("value") == "fr"
            )

        # When they continue with it, then log out
        page.locator('form[action="/create"] button').click()
        visit.step("submit-french")
        assert urlsplit(page.url).path == "/submit"
        assert page_lang(page) == ("fr", "ltr")
        page.locator('form[action="/logout"] button').click()
        visit.step("logged-out-french")
        assert urlsplit(page.url).path == "/logged-out"
        assert page_lang(page) == ("fr", "ltr")
        assert page.locator("#login-again").is_visible()
        assert "sdwm" not in {c["name"] for c in visit.context.cookies()}  # session gone

        # And come back later in the same browser
        page.goto(live_server.url + "/")
        visit.step("back-french")
        # Then the drop still speaks French, and the codename they noted lets them in
        assert page_lang(page) == ("fr", "ltr")
        page.locator('a[href="/login"]').first.click()
        page.fill("#codename", codename)
        page.locator('form[action="/login"] button[type="submit"]').first.click()
        visit.step("replies-french")
        assert urlsplit(page.url).path == "/replies"
        assert page_lang(page) == ("fr", "ltr")
    finally:
        visit.close()

    server = urlsplit(live_server.url).netloc
    assert {urlsplit(u).netloc for u in visit.requests} == {server}, visit.requests


class _OtherSite(BaseHTTPRequestHandler):
    """A page of another site with a language link to the drop."""

    drop_url = ""

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        body = (
            '<!doctype html><html lang="en"><title>Help for contributors</title>'
            f'<p><a id="drop-ar" href="{self.drop_url}/language/ar?next=/">'
            "Report an incident (in Arabic)</a></p></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def other_site(live_server: LiveServer) -> Iterator[str]:
    """Another site, on another loopback port and host name, linking to the drop."""
    handler = type("OtherSite", (_OtherSite,), {"drop_url": live_server.url})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{OTHER_SITE}:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_language_link_from_another_site_lands_in_that_language(
    live_server: LiveServer, browser: Browser, other_site: str
) -> None:
    visit = tor_browser_visit(browser, "arrival")
    page = visit.page
    try:
        # Given a page of another site with a link to the drop in Arabic
        page.goto(other_site)
        # When the source follows it
        with page.expect_navigation(url=live_server.url + "/"):
            page.locator("#drop-ar").click()
        visit.step("arrived-arabic")
        # Then the first page of the drop is in Arabic (the session cookie, SameSite=Strict,
        # is not sent on the redirect after a cross-site click; the language cookie is)
        assert page_lang(page) == ("ar", "rtl")
        landing = [d for d in visit.documents if urlsplit(d.url).path == "/"]
        assert landing
        cookie_header = landing[-1].request.all_headers().get("cookie", "")
        assert "sdwm_lang=ar" in cookie_header
        assert "sdwm=" not in cookie_header
        # and it stays Arabic as they go on
        page.locator('a[href="/safety"]').first.click()
        assert page_lang(page) == ("ar", "rtl")
    finally:
        visit.close()
