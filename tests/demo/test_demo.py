"""The demo for real: `securedrop-wm demo up` serving both UIs over HTTP on loopback,
`demo sync` moving bundles, and a report carried from a source to a responder and a
reply carried back, each step through the forms a browser would send."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from securedrop_wm.cli import main as cli
from tests.conftest import CODENAME_RE, csrf_token, short_tempdir
from tests.live import LiveServer, free_port, is_listening

BANNER = 'class="demo-banner"'
REPORT = "Someone posted my home address on a talk page; please help."
REPLY = "We read your report and asked the stewards to suppress the edit."


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``securedrop-wm ARGS`` as a user would, in its own process."""
    result = subprocess.run(
        [sys.executable, "-m", "securedrop_wm", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert not check or result.returncode == 0, result.stdout + result.stderr
    return result


@dataclass
class RunningDemo:
    """A `demo up` process and what a test needs to reach it."""

    root: Path
    process: subprocess.Popen[bytes]
    output: Path
    source: str
    workstation: str
    ports: tuple[int, int]

    def stop(self) -> int:
        """SIGTERM, as a service manager or `kill` would; return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise


@pytest.fixture(scope="module")
def demo() -> Iterator[RunningDemo]:
    """`securedrop-wm demo up` on two free loopback ports, from an empty folder."""
    base = short_tempdir("sdwm-demo-")
    root = base / "demo"
    port, ws_port = free_port(), free_port()
    output = base / "up.out"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "securedrop_wm", "demo", "up", "--data-dir", str(root)]
            + ["--port", str(port), "--workstation-port", str(ws_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = RunningDemo(
        root,
        process,
        output,
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{ws_port}",
        (port, ws_port),
    )
    deadline = time.monotonic() + 60
    while "Ctrl-C stops both servers" not in output.read_text():
        assert process.poll() is None, output.read_text()
        assert time.monotonic() < deadline, output.read_text()
        time.sleep(0.1)
    yield running
    if process.poll() is None:
        running.stop()
    for home in ("drop/gnupg", "workstation/gnupg"):
        subprocess.run(["gpgconf", "--homedir", str(root / home), "--kill", "all"], check=False)
    shutil.rmtree(base, ignore_errors=True)


def _totp(root: Path) -> str:
    return run("demo", "totp", "--data-dir", str(root)).stdout.strip()


def _login_secret(root: Path, name: str) -> str:
    match = re.search(rf'^{name} = "([^"]+)"$', (root / "login.toml").read_text(), re.MULTILINE)
    assert match
    return match.group(1)


def test_up_prints_both_addresses_the_login_and_the_next_steps(demo: RunningDemo) -> None:
    printed = demo.output.read_text()
    assert demo.source in printed and demo.workstation in printed
    assert "responder" in printed and _login_secret(demo.root, "password") in printed
    assert "demo totp" in printed and "demo sync" in printed and "DEMO" in printed


def test_both_uis_show_the_demo_banner(demo: RunningDemo) -> None:
    for url in (demo.source + "/", demo.source + "/login", demo.workstation + "/login"):
        page = requests.get(url, timeout=10)
        assert page.status_code == 200, url
        assert BANNER in page.text and "DEMO" in page.text, url
        # after <body>, a class the strict CSP allows: no inline style
        assert re.search(r"<body[^>]*><p class=\"demo-banner\"", page.text), url
        assert "style=" not in page.text.split("</p>", 1)[0]
        assert "style-src 'self'" in page.headers["Content-Security-Policy"]
    for base in (demo.source, demo.workstation):
        assert ".demo-banner" in requests.get(base + "/static/style.css", timeout=10).text


def test_a_report_reaches_the_responder_and_the_reply_reaches_the_source(
    demo: RunningDemo,
) -> None:
    src, ws = demo.source, demo.workstation
    # Given a source who takes a codename and files a report with a file
    source = requests.Session()
    page = source.get(src + "/generate", timeout=10)
    codename = CODENAME_RE.search(page.text)
    assert codename
    form = source.post(src + "/create", data={"csrf_token": csrf_token(page.text)}, timeout=30)
    category = re.search(r'name="category" value="([^"]+)"', form.text)
    assert form.status_code == 200 and category
    sent = source.post(
        src + "/submit",
        data={
            "csrf_token": csrf_token(form.text),
            "category": category.group(1),
            "urgency": "urgent",
            "what_happened": REPORT,
            "wiki": "de.wikipedia.org",
            "links": "",
            "reply_language": "en",
        },
        files={"files": ("diff.txt", b"the revision that doxxed me", "text/plain")},
        timeout=30,
    )
    assert sent.status_code == 200 and sent.url.endswith("/thanks"), sent.text
    # When the demo carries it to the workstation
    synced = run("demo", "sync", "--data-dir", str(demo.root)).stdout
    bundles = sorted((demo.root / "inbox").glob("export-*.tar"))
    assert len(bundles) == 1 and str(bundles[0]) in synced
    # and the responder logs in with password and TOTP, and imports it
    responder = requests.Session()
    page = responder.get(ws + "/login", timeout=10)
    cases = responder.post(
        ws + "/login",
        data={
            "csrf_token": csrf_token(page.text),
            "username": "responder",
            "password": _login_secret(demo.root, "password"),
            "code": _totp(demo.root),
        },
        timeout=30,
    )
    assert cases.status_code == 200 and "Log out" in cases.text, cases.text
    page = responder.get(ws + "/import", timeout=10)
    preview = responder.post(
        ws + "/import",
        data={"csrf_token": csrf_token(page.text)},
        files={"bundle": (bundles[0].name, bundles[0].read_bytes(), "application/x-tar")},
        timeout=30,
    )
    action = re.search(r'action="(/import/[0-9a-f]{32})"', preview.text)
    assert preview.status_code == 200 and action, preview.text
    listing = responder.post(
        ws + action.group(1),
        data={"csrf_token": csrf_token(preview.text), "passphrase": "", "import": "1"},
        timeout=60,
    )
    assert "1 report(s), 1 file(s), 1 new case(s)" in listing.text, listing.text
    # Then the case holds the report's text
    case_url = re.search(r'href="(/cases/\d+)"', listing.text)
    assert case_url
    case = responder.get(ws + case_url.group(1), timeout=10)
    assert REPORT in case.text and "diff.txt" in case.text
    # When the responder replies and writes the reply bundle
    replied = responder.post(
        ws + case_url.group(1) + "/reply",
        data={"csrf_token": csrf_token(case.text), "text": REPLY},
        timeout=30,
    )
    assert replied.status_code == 200 and "queued" in replied.text
    outbox = responder.get(ws + "/outbox", timeout=10)
    written = responder.post(
        ws + "/outbox",
        data={"csrf_token": csrf_token(outbox.text), "passphrase": ""},
        timeout=30,
    )
    assert "Reply bundle 1 written" in written.text, written.text
    # and the demo carries it back
    synced = run("demo", "sync", "--data-dir", str(demo.root)).stdout
    assert "1 reply(ies) stored" in synced, synced
    assert "no report waiting" in synced  # acknowledged: nothing goes out again
    assert not list((demo.root / "inbox").glob("export-*.tar"))
    # Then the source, back with the codename, reads the reply
    back = requests.Session()
    page = back.get(src + "/login", timeout=10)
    replies = back.post(
        src + "/login",
        data={"csrf_token": csrf_token(page.text), "codename": codename.group(1)},
        timeout=30,
    )
    assert replies.url.endswith("/replies") and REPLY in replies.text, replies.text


def test_the_drop_holds_no_responder_secret_key(demo: RunningDemo) -> None:
    def secret_keys(home: Path) -> set[str]:
        # Source keys have a keybox each (securedrop_wm/source_keys.py): list them too.
        own = [arg for box in (home / "sources").glob("*.kbx") for arg in ("--keyring", box)]
        out = subprocess.run(
            ["gpg", "--homedir", home, "--batch", "--with-colons", *own, "--list-secret-keys"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
        # the fingerprint line right after each primary secret key
        return {out[i + 1].split(":")[9] for i, line in enumerate(out) if line.startswith("sec:")}

    config = (demo.root / "drop" / "config.toml").read_text()
    signing = re.search(r'^signing_fingerprint = "([0-9A-F]{40})"', config, re.MULTILINE)
    team = re.search(r'^team_fingerprint = "([0-9A-F]{40})"', config, re.MULTILINE)
    assert signing and team
    # The drop keeps only each source's own key, locked with a passphrase derived from
    # the codename (DESIGN.md, flow 2), and its signing key in a home of its own that the
    # source UI never opens: no responder's key.
    with sqlite3.connect(demo.root / "drop" / "db.sqlite") as db:
        sources = {row[0] for row in db.execute("SELECT key_fingerprint FROM sources")}
    assert sources, "the round trip made a source"
    assert secret_keys(demo.root / "drop" / "gnupg") == sources
    assert secret_keys(demo.root / "drop" / "signing") == {signing.group(1)}
    ws_secrets = secret_keys(demo.root / "workstation" / "gnupg")
    assert team.group(1) in ws_secrets and not ws_secrets & sources


def test_the_real_servers_show_no_banner(demo: RunningDemo) -> None:
    # `serve` and `workstation serve` over the demo's own folders: the banner is the
    # demo's doing, not a setting the real apps could be given.
    drop_config = demo.root / "drop" / "config.toml"
    ws_port = free_port()
    logs = demo.root.parent / "real-logs"
    with LiveServer(drop_config, free_port(), workers=1, log_dir=logs) as drop_server:
        ws_server = subprocess.Popen(
            [sys.executable, "-m", "securedrop_wm", "workstation", "serve", "--config"]
            + [str(demo.root / "workstation" / "config.toml"), "--port", str(ws_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while not is_listening(ws_port):
                assert ws_server.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
            for url in (drop_server.url + "/", f"http://127.0.0.1:{ws_port}/login"):
                page = requests.get(url, timeout=10)
                assert page.status_code == 200 and "<body>" in page.text, url
                assert BANNER not in page.text and "DEMO" not in page.text, url
        finally:
            os.killpg(ws_server.pid, signal.SIGINT)
            ws_server.wait(timeout=20)


def test_sigterm_stops_both_servers(demo: RunningDemo) -> None:
    assert demo.stop() == 0
    assert "Stopping the demo" in demo.output.read_text()
    assert not any(is_listening(port) for port in demo.ports)
    left = subprocess.run(
        ["pgrep", "-f", f"serve-one .*--data-dir {demo.root} "], capture_output=True, check=False
    )
    assert left.stdout == b""


def test_the_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "config.toml").write_text("# a real drop's settings\n")
    for args in (["up"], ["sync"], ["totp"], ["clean"]):
        result = CliRunner().invoke(cli, ["demo", *args, "--data-dir", str(folder)])
        assert result.exit_code == 1, args
        assert "was not made by `securedrop-wm demo up`" in result.output, result.output
    assert [p.name for p in folder.iterdir()] == ["config.toml"]
    missing = CliRunner().invoke(cli, ["demo", "sync", "--data-dir", str(tmp_path / "none")])
    assert missing.exit_code == 1 and "there is no demo" in missing.output


def test_init_makes_no_throwaway_keys_any_more(tmp_path: Path) -> None:
    # Throwaway keys exist only in the demo's workstation folder, never in a drop's.
    result = CliRunner().invoke(cli, ["init", "--data-dir", str(tmp_path / "d"), "--demo-keys"])
    assert result.exit_code == 2 and "No such option" in result.output
    assert not (tmp_path / "d").exists()
