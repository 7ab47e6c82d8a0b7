"""A source without a browser, over real HTTP: for load, crash and disk-full runs.

Files are random bytes made while they are sent, hashed on the way, so a run can send
gigabytes without holding them and still check afterwards that every accepted file
decrypts to exactly what was sent.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import requests

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
CODENAME = re.compile(r'id="codename"[^>]*>([^<]+)<')
_CHUNK = 256 * 1024


class RandomFile:
    """``size`` random bytes, made chunk by chunk as they are read, with ``marker`` (if
    any) written in plain text at the start and across a chunk edge.

    ``on_chunk(sent)`` runs after each chunk, while the server is still receiving.
    """

    def __init__(
        self,
        name: str,
        size: int,
        marker: bytes = b"",
        on_chunk: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        self.size = size
        self.marker = marker
        self.on_chunk = on_chunk
        self._hash = hashlib.sha256()
        self.sent = 0

    @property
    def sha256(self) -> str:
        """SHA-256 of what was sent (complete once the whole file was read)."""
        return self._hash.hexdigest()

    def chunks(self) -> Iterator[bytes]:
        marker = self.marker
        # At the start, and across the first chunk edge (where a naive scan misses it).
        offsets = [0, _CHUNK - len(marker) // 2] if self.size >= _CHUNK + len(marker) else [0]
        while self.sent < self.size:
            start, n = self.sent, min(_CHUNK, self.size - self.sent)
            chunk = bytearray(os.urandom(n))
            for offset in offsets if marker else []:
                lo, hi = max(offset, start), min(offset + len(marker), start + n)
                if lo < hi:
                    chunk[lo - start : hi - start] = marker[lo - offset : hi - offset]
            self._hash.update(chunk)
            self.sent += n
            yield bytes(chunk)
            if self.on_chunk is not None:
                self.on_chunk(self.sent)


@dataclass
class Multipart:
    """A multipart/form-data body of text fields and at most one :class:`RandomFile`,
    streamed with a ``Content-Length`` as a browser sends it."""

    fields: list[tuple[str, str]]
    file: RandomFile | None = None
    boundary: str = field(default_factory=lambda: "sdwm-load-" + secrets.token_hex(12))

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def _head(self) -> bytes:
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode("utf-8")
            + b"\r\n"
            for name, value in self.fields
        ]
        if self.file is not None:
            parts.append(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{self.file.name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode()
            )
        return b"".join(parts)

    def _tail(self) -> bytes:
        return (b"\r\n" if self.file is not None else b"") + f"--{self.boundary}--\r\n".encode()

    def __len__(self) -> int:
        size = self.file.size if self.file is not None else 0
        return len(self._head()) + size + len(self._tail())

    def __iter__(self) -> Iterator[bytes]:
        yield self._head()
        if self.file is not None:
            yield from self.file.chunks()
        yield self._tail()


class SourceClient:
    """One source's visit: a cookie jar and the CSRF token of the last page shown."""

    def __init__(self, base_url: str, timeout: float = 600) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.http = requests.Session()
        # A fresh connection per request: a kept-alive one the server has just timed out
        # would fail the next request for a reason no source would meet (browsers retry).
        self.http.headers["Connection"] = "close"
        self.page = ""

    def get(self, path: str) -> requests.Response:
        response = self.http.get(self.base_url + path, timeout=self.timeout)
        self.page = response.text
        return response

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        """Post a form with the CSRF token of the page last shown."""
        response = self.http.post(
            self.base_url + path, data={"csrf_token": self.token(), **data}, timeout=self.timeout
        )
        self.page = response.text
        return response

    def token(self) -> str:
        match = CSRF.search(self.page)
        return match.group(1) if match else ""

    def new_codename(self) -> tuple[str | None, requests.Response]:
        """Get a codename and continue to the report form.

        :returns: the codename (``None`` when the server did not create the source) and
            the last response.
        """
        self.get("/generate")
        match = CODENAME.search(self.page)
        response = self.post("/create", {})
        if match is None or not response.url.endswith("/submit"):
            return None, response
        return match.group(1), response

    def login(self, codename: str) -> requests.Response:
        """Log in again with a codename; lands on the replies page when it worked."""
        self.get("/login")
        return self.post("/login", {"codename": codename})

    def report(self, text: str, file: RandomFile | None = None, **fields: str) -> requests.Response:
        """Show the report form, then send it; lands on /thanks when it was accepted."""
        self.get("/submit")
        body = Multipart(
            [
                ("csrf_token", self.token()),
                ("category", fields.pop("category", "harassment")),
                ("urgency", fields.pop("urgency", "routine")),
                ("what_happened", text),
                *fields.items(),
            ],
            file,
        )
        response = self.http.post(
            self.base_url + "/submit",
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=self.timeout,
        )
        self.page = response.text
        return response

    def close(self) -> None:
        self.http.close()


def accepted(response: requests.Response) -> bool:
    """Whether a report was stored: the browser lands on the thank-you page."""
    return response.status_code == 200 and response.url.endswith("/thanks")
