"""A source driven over real HTTP with ``requests``, and what the drop stored for them.

Used by the security tests, which need the real gunicorn stack but no browser.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from tests.conftest import CODENAME_RE, csrf_token

_CHUNK = 256 * 1024


class _SourceAddressAdapter(HTTPAdapter):
    """Connects from a chosen local address, so the client's IP is one nothing else uses."""

    def __init__(self, source_address: str) -> None:
        self._source_address = (source_address, 0)
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = self._source_address
        super().init_poolmanager(*args, **kwargs)


def chunks_of(data: bytes, size: int = _CHUNK) -> Iterator[bytes]:
    """``data`` in pieces, as a file is read and sent."""
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])


class StreamedMultipart:
    """A multipart/form-data body built on the fly: fields first, then one file.

    Requests sends an iterable with a length as a plain ``Content-Length`` body, chunk
    by chunk, as Tor Browser does; the file is never assembled in one buffer here.
    ``on_progress(sent)`` runs after each chunk of the file, while the server waits.
    """

    def __init__(
        self,
        fields: Sequence[tuple[str, str]],
        filename: str,
        chunks: Iterable[bytes],
        size: int,
        on_progress: Callable[[int], None] | None = None,
    ) -> None:
        self.boundary = "sdwm-" + secrets.token_hex(16)
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode("utf-8")
            + b"\r\n"
            for name, value in fields
        )
        self._head = (
            head
            + (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="files"; '
                f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
        )
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._chunks = chunks
        self._size = size
        self._on_progress = on_progress

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        sent = 0
        for chunk in self._chunks:
            sent += len(chunk)
            yield chunk
            if self._on_progress is not None:
                self._on_progress(sent)
        if sent != self._size:
            raise ValueError(f"the file gave {sent} bytes, not the {self._size} announced")
        yield self._tail


@dataclass
class HttpSource:
    """One source's browser-less visit: a cookie jar, the last page, its CSRF token."""

    base_url: str
    headers: dict[str, str]
    source_address: str = "127.0.0.1"

    def __post_init__(self) -> None:
        self.http = requests.Session()
        self.http.headers.update(self.headers)
        self.http.mount("http://", _SourceAddressAdapter(self.source_address))
        self.page = ""

    def get(self, path: str) -> requests.Response:
        response = self.http.get(self.base_url + path, timeout=30)
        self.page = response.text
        return response

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        """Post a form with the CSRF token of the page last shown."""
        response = self.http.post(
            self.base_url + path, data={"csrf_token": csrf_token(self.page), **data}, timeout=60
        )
        self.page = response.text
        return response

    def new_codename(self) -> str:
        """Get a codename and continue to the report form; return the codename."""
        self.get("/generate")
        match = CODENAME_RE.search(self.page)
        assert match, "the codename page shows no codename"
        response = self.post("/create", {})
        assert response.url.endswith("/submit"), response.url
        return match.group(1)

    def submit(
        self,
        fields: dict[str, str],
        filename: str,
        content: bytes | tuple[Iterable[bytes], int],
        on_progress: Callable[[int], None] | None = None,
        allow_redirects: bool = True,
    ) -> requests.Response:
        """Send the report form (from the page last shown) with one streamed file.

        :param content: the file's bytes, or an iterable of chunks and the total size.
        """
        assert self.page, "show the report form first"
        chunks, size = (chunks_of(content), len(content)) if isinstance(content, bytes) else content
        body = StreamedMultipart(
            [("csrf_token", csrf_token(self.page)), *fields.items()],
            filename,
            chunks,
            size,
            on_progress,
        )
        response = self.http.post(
            self.base_url + "/submit",
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=3600,
            allow_redirects=allow_redirects,
        )
        self.page = response.text
        return response

    def login(self, codename: str) -> requests.Response:
        self.get("/login")
        return self.post("/login", {"codename": codename})

    def logout(self) -> requests.Response:
        return self.post("/logout", {})

    def close(self) -> None:
        self.http.close()


def stored_rows(data_dir: Path, table: str) -> list[dict[str, Any]]:
    """Rows of one table of the drop's SQLite database, read with the standard library."""
    if not re.fullmatch(r"[a-z_]+", table):
        raise ValueError(table)
    db = sqlite3.connect(f"file:{data_dir / 'db.sqlite'}?mode=ro", uri=True)
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY id")]  # noqa: S608
    finally:
        db.close()
