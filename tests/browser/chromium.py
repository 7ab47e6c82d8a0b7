"""Debian's Chromium for browser tests: headless, never a browser downloaded by Playwright.

Import from here rather than repeating the flags: ``launch_chromium(p)`` inside
``with sync_playwright() as p``, then ``browser.new_context(java_script_enabled=False)``
for source pages (Tor Browser at "Safest" runs no JavaScript).
"""

from __future__ import annotations

from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch_chromium(playwright: Playwright) -> Browser:
    """Start Debian's Chromium headless, with nothing phoning home."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
