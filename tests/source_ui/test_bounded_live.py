"""Bounded work per request through the real server (gunicorn, one worker): a report with
300 file parts is refused while other sources of the same worker are served, and a full
new-source lane answers "busy, try again" while returning sources log in and report."""

from __future__ import annotations

import http.cookiejar
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.test import encode_multipart

from tests.conftest import (
    CODENAME_RE,
    Responders,
    csrf_token,
    init_data_dir,
    short_tempdir,
    store_files,
)
from tests.headers.checks import headers_problems
from tests.live import LiveServer, free_port
from tests.source_ui.uploads import gpg_children, report_form

TIMEOUT = 120


def new_live_source(url: str, language: str = "en") -> tuple[requests.Session, str]:
    """A source who got a codename through the real server, logged in."""
    http = requests.Session()
    http.headers["Accept-Language"] = language
    page = http.get(f"{url}/generate", timeout=TIMEOUT)
    codename = CODENAME_RE.search(page.text)
    assert codename
    created = http.post(
        f"{url}/create", data={"csrf_token": csrf_token(page.text)}, timeout=TIMEOUT,
        allow_redirects=False,
    )  # fmt: skip
    assert created.status_code == 302, created.text
    return http, codename.group(1)


def send_report(http: requests.Session, url: str, files: int) -> requests.Response:
    token = csrf_token(http.get(f"{url}/submit", timeout=TIMEOUT).text)
    data = {"csrf_token": token, "category": "threats", "what_happened": "A threat by mail."}
    attached = [("files", (f"f{i}.txt", b"evidence %d" % i)) for i in range(files)]
    return http.post(
        f"{url}/submit", data=data, files=attached, timeout=TIMEOUT, allow_redirects=False
    )


def cookie_header(jar: http.cookiejar.CookieJar) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in jar)


def test_a_300_part_report_is_refused_while_other_sources_are_served(data_dir: Path) -> None:
    with LiveServer(data_dir / "config.toml", free_port(), workers=1, threads=4) as server:
        url = server.url
        flooder, _ = new_live_source(url)
        other, _ = new_live_source(url)
        (worker,) = server.worker_pids()
        before = store_files(data_dir)
        token = csrf_token(flooder.get(f"{url}/submit", timeout=TIMEOUT).text)
        boundary, body = encode_multipart(report_form(token, 300, 8192))
        head = (
            "POST /submit HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            f"Cookie: {cookie_header(flooder.cookies)}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            sock.sendall(head + body[: 20 * 8300])
            time.sleep(0.5)
            # Twenty parts in: the flooder's request holds one gpg in the worker, no more.
            assert gpg_children(worker) <= 1
            # Another source's report and a new source's codename, in the same worker.
            sent = send_report(other, url, files=2)
            assert sent.status_code == 302, sent.text
            newcomer, _ = new_live_source(url)
            assert gpg_children(worker) <= 1
            try:
                sock.sendall(body[20 * 8300 :])
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused at the 31st part: the server stopped reading
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        status, _, rest = answer.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 413"), status
        assert b"at most 30 files in one report" in rest
        # Only the other source's report was stored: two files and its message.
        assert len(store_files(data_dir) - before) == 3
        deadline = time.monotonic() + 10
        while gpg_children(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert gpg_children(worker) == 0
        newcomer.close()
        other.close()
        flooder.close()


def test_an_upload_cut_off_after_its_first_file_part_can_be_sent_again(data_dir: Path) -> None:
    # The form token is spent when the first file part arrives, before gpg starts. A
    # connection cut after that never brings back the cookie without the token: the
    # browser keeps it, and every form shown afterwards carried it again and was refused
    # as expired, for ever (a dropped Tor circuit, or the minimum rate cutting a stall).
    with LiveServer(data_dir / "config.toml", free_port(), workers=1, threads=4) as server:
        url = server.url
        source, _ = new_live_source(url)
        token = csrf_token(source.get(f"{url}/submit", timeout=TIMEOUT).text)
        boundary, body = encode_multipart(report_form(token, 3, 600_000))
        head = (
            "POST /submit HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{server.port}\r\n"
            f"Cookie: {cookie_header(source.cookies)}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        (worker,) = server.worker_pids()
        with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
            # The worker reads the body a megabyte at a time: well into the second file.
            sock.sendall(head + body[:1_400_000])
            # Cut only once a file part is being encrypted: its token is spent by then.
            deadline = time.monotonic() + 30
            while not gpg_children(worker):
                assert time.monotonic() < deadline, "the upload never reached a file part"
                time.sleep(0.02)
        # The same browser, the same cookie: the form again, then sent.
        again = source.get(f"{url}/submit", timeout=TIMEOUT)
        assert csrf_token(again.text) != token
        sent = send_report(source, url, files=1)
        assert sent.status_code == 302 and sent.headers["Location"].endswith("/thanks"), sent.text
        source.close()


@pytest.fixture
def slow_kdf_data_dir(responders: Responders) -> Iterator[Path]:
    """A data dir whose Argon2id takes about a second (128 MiB, 6 passes): a source's
    creation is slow enough for concurrent ones to fill the new-source lane."""
    base = short_tempdir("sdwm-slow-")
    path = base / "data"
    init_data_dir(path, responders, "--kdf-memory-kib", "131072", "--kdf-time-cost", "6")
    assert "memory_kib = 131072" in (path / "config.toml").read_text()
    yield path
    subprocess.run(
        ["gpgconf", "--homedir", str(path / "gnupg"), "--kill", "gpg-agent"], check=False
    )
    shutil.rmtree(base, ignore_errors=True)


def test_a_full_new_source_lane_is_busy_while_returning_sources_are_served(
    slow_kdf_data_dir: Path,
) -> None:
    config = slow_kdf_data_dir / "config.toml"
    env = {"SDWM_NEW_SOURCE_CONCURRENCY": "1", "SDWM_NEW_SOURCE_QUEUE": "0"}
    with LiveServer(config, free_port(), workers=1, threads=8, env=env) as server:
        url = server.url
        first, codename = new_live_source(url)
        first.close()
        returning = requests.Session()
        login_token = csrf_token(returning.get(f"{url}/login", timeout=TIMEOUT).text)
        newcomers = []
        for _ in range(4):
            http = requests.Session()
            http.headers["Accept-Language"] = "de"
            page = http.get(f"{url}/generate", timeout=TIMEOUT)
            newcomers.append((http, csrf_token(page.text)))
        start = threading.Barrier(len(newcomers) + 1)
        created: list[tuple[requests.Session, requests.Response]] = []
        logged_in: list[requests.Response] = []

        def create(http: requests.Session, token: str) -> None:
            start.wait()
            response = http.post(
                f"{url}/create", data={"csrf_token": token}, timeout=TIMEOUT,
                allow_redirects=False,
            )  # fmt: skip
            created.append((http, response))

        def login() -> None:
            start.wait()
            time.sleep(0.1)  # the creations are in their lane first
            logged_in.append(
                returning.post(
                    f"{url}/login",
                    data={"csrf_token": login_token, "codename": codename},
                    timeout=TIMEOUT,
                    allow_redirects=False,
                )  # fmt: skip
            )

        threads = [threading.Thread(target=create, args=pair) for pair in newcomers]
        threads.append(threading.Thread(target=login))
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        statuses = sorted(r.status_code for _, r in created)
        assert 302 in statuses and 503 in statuses, statuses
        assert set(statuses) == {302, 503}, statuses
        # The returning source got in while the lane of new sources was full ...
        (login_response,) = logged_in
        assert login_response.status_code == 302, login_response.text
        assert login_response.headers["Location"].endswith("/replies")
        # ... and reports.
        sent = send_report(returning, url, files=1)
        assert sent.status_code == 302, sent.text
        refused, busy = next((h, r) for h, r in created if r.status_code == 503)
        assert int(busy.headers["Retry-After"]) >= 2
        assert "Gerade nutzen viele Menschen den Briefkasten" in busy.text
        assert 'lang="de"' in busy.text
        assert headers_problems(busy.headers, busy.raw.headers.getlist("Set-Cookie")) == []
        # The busy page offers the same codename again, with a fresh form token.
        assert 'action="/create"' in busy.text
        again = refused.post(
            f"{url}/create", data={"csrf_token": csrf_token(busy.text)}, timeout=TIMEOUT,
            allow_redirects=False,
        )  # fmt: skip
        assert again.status_code == 302, again.text
        for http, _token in newcomers:
            http.close()
        returning.close()
