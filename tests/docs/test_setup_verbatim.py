"""The setup docs, followed to the letter: from empty folders to a source reading a reply.

The command blocks of docs/server.md and docs/workstation.md that are marked
``<!-- docs-test: NAME -->`` just before a ```` ```sh ```` fence are run by bash exactly
as written (``set -eu``), each in the folder of its machine: ``server/`` for ``server-*``
blocks, ``workstation-machine/`` for ``workstation-*`` ones. A block marked
``<!-- docs-test: NAME background -->`` is a server that runs until stopped: it is
started as written, the address it prints is read, and it is stopped at the end.

What the docs ask a person to do in a web page is done over HTTP, as a browser with
JavaScript off does it: a page is fetched, its form read (hidden fields, the CSRF token),
the fields a person types filled in, the form posted. The person's other acts:

- carrying files between machines: the setup page's file fields read ``server.asc`` from
  the server's folder, the keys the setup-done page shows are saved as ``team.asc`` and
  ``workstation.asc`` in the server's folder, the export bundle is uploaded from there,
  and the reply bundle is downloaded into it, under the name the page gives it;
- reading what a command or a page prints: the server's fingerprint, the setup token,
  the TOTP secret (the code is computed as an authenticator app does), the codename.

Nothing in a command is substituted. The environment holds ``PATH`` with this
checkout's ``.venv/bin`` first, a throwaway ``HOME``, and ``SDWM_KDF``, which makes
Argon2id cheap (a setting override, docs/configuration.md): commands are run as written.
The servers listen on the docs' default ports, 8080 and 8081; if another program holds
one, the test is skipped.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pyotp
import pytest
import requests

from tests.conftest import short_tempdir
from tests.live import is_listening

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARKER = re.compile(
    r"^<!-- docs-test: ([a-z0-9-]+)( background)? -->\n```sh\n(.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
# Every block the walk below runs, in order; a marked block it does not run is an error.
BLOCKS = (
    "server-init",
    "workstation-init",
    "workstation-serve",
    "server-keys",
    "server-serve",
    "server-export",
    "server-import-replies",
)
ADMIN, PASSWORD = "alice", "a long enough admin password"
REPORT = "An account keeps posting my home address on my user talk page."
REPLY = "We read your report. Do not answer from work; we are on it."


@dataclass(frozen=True)
class Block:
    name: str
    background: bool
    script: str
    source: str


def marked_blocks() -> dict[str, Block]:
    blocks: dict[str, Block] = {}
    for path in sorted(DOCS.glob("*.md")):
        for match in MARKER.finditer(path.read_text()):
            name = match.group(1)
            assert name not in blocks, f"{name} is marked twice ({path.name})"
            blocks[name] = Block(name, bool(match.group(2)), match.group(3), path.name)
    return blocks


# -- the person's shell -----------------------------------------------------------------


@dataclass
class Shell:
    """Runs the docs' blocks as a person types them, one folder per machine."""

    base: Path
    env: dict[str, str]
    blocks: dict[str, Block]
    ran: list[str] = field(default_factory=list)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def folder(self, name: str) -> Path:
        path = self.base / ("server" if name.startswith("server-") else "workstation-machine")
        path.mkdir(exist_ok=True)
        return path

    def run(self, name: str) -> str:
        block = self.blocks[name]
        assert not block.background, name
        self.ran.append(name)
        done = subprocess.run(
            ["bash", "-euc", block.script],
            cwd=self.folder(name),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{block.source}, {name}:\n{block.script}\n{output}"
        return output

    def start(self, name: str, timeout: float = 60) -> str:
        """Start a background block; return the http address it prints, once it answers."""
        block = self.blocks[name]
        assert block.background, name
        self.ran.append(name)
        log = self.base / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["bash", "-euc", block.script],
                cwd=self.folder(name),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.servers.append(process)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            assert process.poll() is None, f"{block.source}, {name} exited:\n{text}"
            address = re.search(r"http://127\.0\.0\.1:(\d+)/", text)
            if address and is_listening(int(address.group(1))):
                return address.group(0).rstrip("/")
            time.sleep(0.1)
        raise AssertionError(f"{name} did not answer in time:\n{log.read_text()}")

    def stop(self) -> None:
        for process in self.servers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


# -- the person's browser ---------------------------------------------------------------


@dataclass
class Form:
    action: str
    fields: dict[str, str]  # hidden inputs and other defaults, as the page has them
    names: set[str]  # every field the form has


class _Forms(HTMLParser):
    """The forms of a page and what a browser sends for untouched fields: hidden and
    text inputs' values, checked radio buttons and boxes, textareas' contents."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(a.get("action", ""), {}, set()))
        elif self.forms and tag in ("input", "textarea", "select", "button") and "name" in a:
            form, name, kind = self.forms[-1], a["name"], a.get("type", "text")
            form.names.add(name)
            if tag == "textarea":
                self._textarea = name
                form.fields[name] = ""
            elif tag == "input" and kind in ("radio", "checkbox"):
                if "checked" in a:
                    form.fields[name] = a.get("value", "on")
            elif tag == "input" and kind not in ("file", "submit", "button", "password"):
                form.fields[name] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.forms[-1].fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None


class Browser:
    """A requests session that fills in and posts the forms of the pages it gets."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.page = ""
        self.url = ""

    def get(self, path: str) -> str:
        response = self.session.get(self.base + path, timeout=60)
        assert response.status_code == 200, (path, response.status_code, response.text)
        self.page, self.url = response.text, response.url
        return self.page

    def submit(
        self,
        action: str,
        typed: dict[str, str] | None = None,
        files: dict[str, Path | None] | None = None,
    ) -> str:
        """Post the form of the current page whose action is ``action``: what a person
        types in ``typed``, the files they choose in ``files`` (``None``: none chosen)."""
        parser = _Forms()
        parser.feed(self.page)
        forms = [f for f in parser.forms if f.action == action]
        assert forms, f"no form posts to {action} on this page:\n{self.page}"
        form = forms[0]
        typed, files = typed or {}, files or {}
        unknown = (set(typed) | set(files)) - form.names
        assert not unknown, f"the form {action} has no field {unknown}"
        upload = {
            name: (path.name, path.read_bytes()) if path else ("", b"")
            for name, path in files.items()
        }
        response = self.session.post(
            self.base + action, data={**form.fields, **typed}, files=upload or None, timeout=120
        )
        assert response.status_code == 200, (action, response.status_code, response.text)
        self.page, self.url = response.text, response.url
        return self.page

    def download(self, path: str, folder: Path) -> Path:
        """Save a download under the name the server gives it, as a browser does."""
        response = self.session.get(self.base + path, timeout=60)
        assert response.status_code == 200, (path, response.status_code)
        name = re.search(r"filename=\"?([^\";]+)", response.headers["Content-Disposition"])
        assert name, response.headers
        target = folder / Path(name.group(1)).name
        target.write_bytes(response.content)
        return target


def _text(pattern: str, page: str) -> str:
    match = re.search(pattern, page, re.DOTALL)
    assert match, f"{pattern!r} not on the page:\n{page}"
    return html.unescape(match.group(1))


# -- the walk ---------------------------------------------------------------------------


@pytest.fixture
def shell() -> Iterator[Shell]:
    for port in (8080, 8081):
        if is_listening(port):
            pytest.skip(f"port {port} is in use: the docs' servers listen there")
    base = short_tempdir("sdwm-docs-")
    home = base / "home"
    home.mkdir()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "SDWM_KDF": "{ memory_kib = 1024, time_cost = 1 }",
    }
    s = Shell(base, env, marked_blocks())
    yield s
    s.stop()
    for gnupg in base.glob("*/*/gnupg"):
        subprocess.run(["gpgconf", "--homedir", str(gnupg), "--kill", "gpg-agent"], check=False)
    shutil.rmtree(base, ignore_errors=True)


def test_every_marked_block_is_one_the_walk_runs() -> None:
    blocks = marked_blocks()
    assert sorted(blocks) == sorted(BLOCKS)
    assert all(b.source in ("server.md", "workstation.md") for b in blocks.values())


@pytest.mark.slow
def test_from_empty_folders_to_a_source_reading_a_reply(shell: Shell) -> None:
    server = shell.folder("server-init")
    # docs/server.md, 1: the data dir and the server's public key, with its fingerprint
    output = shell.run("server-init")
    fingerprint = _text(r"Server signing key fingerprint: ([0-9A-F ]{50})\n", output)
    assert (server / "server.asc").is_file()

    # docs/workstation.md, Set up: init, serve, the setup page
    output = shell.run("workstation-init")
    token = _text(r"setup token: (\S+)", output)
    workstation = Browser(shell.start("workstation-serve"))
    assert workstation.base == "http://127.0.0.1:8081"
    workstation.get("/setup")
    done = workstation.submit(
        "/setup",
        {
            "token": token,
            "server_fingerprint": fingerprint,
            "username": ADMIN,
            "password": PASSWORD,
            # A new drop: its server has no team key yet (docs/workstation.md, Set up)
            "new_drop": "1",
        },
        # New team and workstation keys; the server's key file as carried over
        {"team_key": None, "signing_key": None, "server_key": server / "server.asc"},
    )
    totp = _text(r'id="totp-secret">([A-Z2-7]+)<', done)
    for name, element in (("team.asc", "team-key"), ("workstation.asc", "workstation-key")):
        key = _text(rf'<pre class="message" id="{element}">(.*?)</pre>', done)
        assert key.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----"), key
        (server / name).write_text(key)
    # The page names the commands that take the keys on the server: the docs' ones
    for command in _text(r"<pre>(securedrop-wm .*?)</pre>", done).splitlines():
        assert command in shell.blocks["server-keys"].script.splitlines(), command

    # docs/server.md, 3 and 4: the keys registered, the source UI served
    output = shell.run("server-keys")
    assert "is the team key now" in output and "is the workstation key now" in output
    source = Browser(shell.start("server-serve"))
    assert source.base == "http://127.0.0.1:8080"

    # A source gets a codename and reports
    page = source.get("/generate")
    codename = _text(r'id="codename"[^>]*>([^<]+)<', page)
    source.submit("/create")
    source.get("/submit")
    category = _text(r'name="category" value="(harassment)"', source.page)
    source.submit("/submit", {"category": category, "what_happened": REPORT})
    assert source.url == f"{source.base}/thanks", source.page

    # docs/server.md, 5: the export bundle, imported on the workstation's page
    shell.run("server-export")
    workstation.get("/login")
    workstation.submit(
        "/login", {"username": ADMIN, "password": PASSWORD, "code": pyotp.TOTP(totp).now()}
    )
    workstation.get("/import")
    preview = workstation.submit("/import", files={"bundle": server / "export-1.tar"})
    confirm = _text(r'action="(/import/[0-9a-f]{32})"', preview)
    imported = workstation.submit(confirm, {"passphrase": "", "import": "1"})
    assert "1 new case(s)" in imported, imported
    case = _text(r'href="(/cases/\d+)"', workstation.get("/"))
    page = workstation.get(case)
    assert html.escape(REPORT, quote=False) in page
    workstation.submit(f"{case}/reply", {"text": REPLY})
    workstation.get("/outbox")
    workstation.submit("/outbox", {"passphrase": ""})
    bundle = workstation.download(_text(r'href="(/outbox/\d+\.tar)"', workstation.page), server)
    assert bundle.name in shell.blocks["server-import-replies"].script

    # The server takes the reply bundle; the source comes back and reads the reply
    output = shell.run("server-import-replies")
    assert "1 reply(ies) stored" in output, output
    returning = Browser(source.base)
    returning.get("/login")
    returning.submit("/login", {"codename": codename})
    page = returning.get("/replies")
    assert html.escape(REPLY, quote=False) in page
    assert shell.ran == list(BLOCKS)
