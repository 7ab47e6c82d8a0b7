"""What gunicorn itself answers, before any app sees the request: raw malformed requests
over a socket against the real ``securedrop-wm serve``. No banner, the security headers,
a fixed text, and no log line; static files with validators that tell no install time."""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

import requests

from tests.live import LiveServer

from .checks import headers_problems

STATIC = Path(__file__).parents[2] / "source_ui" / "static" / "style.css"


def _raw(server: LiveServer, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send ``request`` as is; return the status line, the headers and the body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status, headers, body


def test_malformed_requests_get_headers_no_banner_and_no_log(live_server: LiveServer) -> None:
    # Given requests gunicorn refuses itself, each with a marker a log line would quote
    marker = "probe" + str(time.monotonic_ns())
    garbage = f"GARBAGE\x01{marker} / HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    too_long = f"GET /{marker}{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    bad_header = f"GET / HTTP/1.1\r\nHost: x\r\nBad\x01{marker}: y\r\n\r\n".encode()
    expected = [(garbage, "400"), (too_long, "414"), (bad_header, "400")]
    for request, code in expected:
        # When it is sent
        status, headers, body = _raw(live_server, request)
        # Then the answer names no server, carries the headers and echoes nothing
        assert status.split()[1] == code, status
        assert "Server" not in headers
        assert headers_problems(headers, [], html_csp=False) == []
        assert marker.encode() not in body
    # And the server wrote nothing about them
    time.sleep(0.5)
    log = live_server.stdout_path.read_text(errors="replace")
    assert marker not in log
    assert "Invalid request" not in log


def test_no_banner_on_any_response(live_server: LiveServer) -> None:
    for path in ("/", "/nowhere", "/static/style.css"):
        response = requests.get(live_server.url + path, timeout=30)
        assert "Server" not in response.headers, path


def test_static_validators_are_the_content_hash(live_server: LiveServer) -> None:
    # Flask's would be the file's mtime to the microsecond: when the drop was installed.
    response = requests.get(live_server.url + "/static/style.css", timeout=30)
    assert response.status_code == 200
    assert response.content == STATIC.read_bytes()
    assert response.headers["ETag"] == f'"{hashlib.sha256(STATIC.read_bytes()).hexdigest()}"'
    assert "Last-Modified" not in response.headers
    again = requests.get(
        live_server.url + "/static/style.css",
        headers={"If-None-Match": response.headers["ETag"]},
        timeout=30,
    )
    assert again.status_code == 304
    assert headers_problems(again.headers, []) == []
