"""The whole source flow in Debian's Chromium, headless, with JavaScript off.

Tor Browser at its "Safest" level runs no JavaScript: every step must work with plain
HTML forms. Screenshots of each step go to ``artifacts/browser/``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Request, Response, sync_playwright

from tests.browser.chromium import launch_chromium
from tests.conftest import Responders, store_files
from tests.live import LiveServer
from tests.security.source_http import stored_rows

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"


@pytest.fixture
def browser(live_server: LiveServer) -> Iterator[Browser]:
    """Debian's Chromium, closed before the server stops (so no keep-alive holds it up)."""
    with sync_playwright() as p:
        browser = launch_chromium(p)
        yield browser
        browser.close()


class Visit:
    """A page in a JavaScript-free context that records every request and document."""

    def __init__(self, browser: Browser, name: str) -> None:
        self.context = browser.new_context(java_script_enabled=False)
        self.page: Page = self.context.new_page()
        self.requests: list[str] = []
        self.documents: list[Response] = []
        self.page.on("request", self._on_request)
        self.page.on("response", self._on_response)
        self.name = name
        self.shots = 0

    def _on_request(self, request: Request) -> None:
        self.requests.append(request.url)

    def _on_response(self, response: Response) -> None:
        if response.request.resource_type == "document":
            self.documents.append(response)

    def step(self, label: str) -> str:
        """Screenshot the page; check it has no script; return its HTML."""
        self.page.wait_for_load_state("load")
        self.shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(
            path=ARTIFACTS / f"{self.name}-{self.shots:02d}-{label}.png", full_page=True
        )
        html = self.page.content()
        assert "<script" not in html.lower(), f"{label}: page has a script"
        return html

    def close(self) -> None:
        self.context.close()


def cli(config: Path, *args: str) -> str:
    """Run the real ``securedrop-wm`` command; return its output."""
    return subprocess.run(
        [sys.executable, "-m", "securedrop_wm", "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_report_login_read_and_delete_reply(
    live_server: LiveServer,
    browser: Browser,
    data_dir: Path,
    responders: Responders,
    tmp_path: Path,
) -> None:
    config = data_dir / "config.toml"
    screenshot = tmp_path / "screenshot of the threat.png"
    screenshot.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(300_000))
    notes = tmp_path / "notes-ü.txt"
    notes.write_bytes(b"Diffs: https://en.wikipedia.org/w/index.php?diff=1\n" * 50)
    visit = Visit(browser, "flow")
    page = visit.page
    try:
        # Given: a source on the landing page gets a codename and continues.
        page.goto(live_server.url + "/")
        visit.step("landing")
        page.get_by_role("link", name="Make a report").click()
        visit.step("codename")
        codename = page.locator("#codename").inner_text().strip()
        assert len(codename.split()) >= 7
        page.get_by_role("button", name="I have saved my codename, continue").click()
        assert page.url == live_server.url + "/submit"

        # When: they fill in the report form and attach two files.
        page.locator("input[name=category][value=doxxing]").check()
        page.locator("input[name=urgency][value=urgent]").check()
        what = "My home address was posted on a talk page by an account that follows me."
        page.fill("#what_happened", what)
        page.set_input_files("#files", [screenshot, notes])
        visit.step("report-form")
        page.get_by_role("button", name="Send report").click()

        # Then: the thanks page counts the two files.
        html = visit.step("thanks")
        assert page.url == live_server.url + "/thanks"
        assert "2 files were encrypted and stored" in html
        report_files = store_files(data_dir)
        assert len(report_files) == 3  # the message and two files

        # When: they log out and come back with the codename.
        page.get_by_role("button", name="Log out").click()
        assert "You are logged out" in visit.step("logged-out")
        page.goto(live_server.url + "/login")
        page.fill("#codename", codename)
        page.get_by_role("button", name="Continue").click()
        visit.step("replies-none")
        assert page.url == live_server.url + "/replies"
        assert page.locator("#no-replies").is_visible()

        # When: a responder adds a reply with the CLI, and the source reloads.
        (designation,) = [line.split("\t")[0] for line in cli(config, "list-sources").splitlines()]
        reply = "We have your report. Please do not reply to the account; we are on it."
        cli(config, "add-reply", designation, "-m", reply)
        (reply_file,) = store_files(data_dir) - report_files
        page.reload()
        visit.step("replies-one")
        assert page.get_by_text(reply).is_visible()
        assert not page.locator("#no-replies").is_visible()

        # Then: deleting it removes it from the page and its ciphertext from the disk.
        # (it asks first: nothing is deleted until the source confirms)
        page.get_by_role("link", name="Delete this reply").click()
        visit.step("reply-delete-confirm")
        assert (data_dir / "store" / reply_file).exists()
        page.get_by_role("button", name="Yes, delete it for good").click()
        html = visit.step("reply-deleted")
        assert page.url == live_server.url + "/replies"
        assert reply not in html
        assert page.locator("#no-replies").is_visible()
        assert not (data_dir / "store" / reply_file).exists()
        assert store_files(data_dir) == report_files
    finally:
        visit.close()

    # Every request went to the drop itself, and every page carried the strict CSP.
    server = urlsplit(live_server.url).netloc
    assert visit.requests
    assert {urlsplit(u).netloc for u in visit.requests} == {server}, visit.requests
    assert visit.documents
    for response in visit.documents:
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "unsafe-" not in csp

    # And the stored report decrypts, with the responders' key, to what was sent.
    subs = stored_rows(data_dir, "submissions")
    by_name = {s["store_name"]: s for s in subs}
    assert set(by_name) == report_files
    (message_row,) = [s for s in subs if s["kind"] == "message"]
    message = json.loads(responders.decrypt(data_dir / "store" / message_row["store_name"]))
    assert message["category"] == "doxxing"
    assert message["urgency"] == "urgent"
    assert message["what_happened"] == what
    sent = {screenshot.name: screenshot.read_bytes(), notes.name: notes.read_bytes()}
    assert sorted(f["name"] for f in message["files"]) == sorted(sent)
    file_rows = {s["uuid"]: s for s in subs if s["kind"] == "file"}
    for entry in message["files"]:
        row = file_rows[entry["submission"]]
        assert responders.decrypt(data_dir / "store" / row["store_name"]) == sent[entry["name"]]
        assert entry["size"] == len(sent[entry["name"]])
