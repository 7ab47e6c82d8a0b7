"""A source's visit over the source UI's unix socket, run inside the container.

Usage: ``python3 source_client.py SOCKET get PATH`` prints the status code;
``python3 source_client.py SOCKET submit TEXT`` makes a codename and submits a report
with TEXT, printing the final status code. Standard library only: the container's
own Python runs it, as tor would reach the socket.
"""

from __future__ import annotations

import http.client
import re
import socket
import sys
import urllib.parse


class UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.socket_path)


class Browser:
    """Just enough of a browser: one cookie jar, forms posted url-encoded."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.cookies: dict[str, str] = {}

    def request(self, method: str, url: str, form: dict[str, str] | None = None) -> tuple[int, str]:
        for _ in range(5):
            conn = UnixConnection(self.path)
            headers = {"Host": "localhost"}
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            body = None
            if form is not None:
                body = urllib.parse.urlencode(form)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, url, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            for header, value in resp.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name.strip()] = rest.split(";", 1)[0]
            conn.close()
            if resp.status in (301, 302, 303) and resp.getheader("Location"):
                method, form = "GET", None
                url = urllib.parse.urlsplit(resp.getheader("Location")).path or "/"
                continue
            return resp.status, text
        raise RuntimeError("too many redirects")


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match:
        raise RuntimeError("no CSRF token on the page")
    return match.group(1)


def main() -> int:
    path, action, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    browser = Browser(path)
    if action == "get":
        status, _ = browser.request("GET", arg)
        print(status)
        return 0
    status, page = browser.request("GET", "/generate")
    assert status == 200, status
    status, page = browser.request("POST", "/create", {"csrf_token": _csrf(page)})
    assert status == 200, status
    category = re.search(r'name="category" value="([^"]+)"', page)
    assert category, "no category on the report form"
    status, page = browser.request(
        "POST",
        "/submit",
        {
            "csrf_token": _csrf(page),
            "category": category.group(1),
            "urgency": "routine",
            "what_happened": arg,
            "wiki": "",
            "links": "",
            "reply_language": "en",
        },
    )
    print(status)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
