"""Helpers of the upload tests: the report form as a browser sends it, a body that
watches the server's gpg children while it streams, and that count itself."""

from __future__ import annotations

import io
import os
from pathlib import Path

from flask.testing import FlaskClient
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import TestResponse, encode_multipart


def gpg_children(pid: int | None = None) -> int:
    """How many gpg processes ``pid`` (this process) has running now."""
    parent = str(pid or os.getpid())
    count = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ")".
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = stat[stat.rindex(")") + 2 :].split()[1]
        if ppid == parent and comm == "gpg":
            count += 1
    return count


class WatchedBody(io.RawIOBase):
    """A request body handed out 64 KiB at a time, counting this process's gpg children
    each time the server asks for more (that is, while the upload streams)."""

    def __init__(self, body: bytes, chunk: int = 64 * 1024) -> None:
        self._body = memoryview(body)
        self._chunk = chunk
        self._pos = 0
        self.gpg_seen: list[int] = []

    def readable(self) -> bool:
        return True

    # The test client measures the body by seeking to its end and back.
    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._body)}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        self.gpg_seen.append(gpg_children())
        n = min(len(buffer), self._chunk, len(self._body) - self._pos)
        buffer[:n] = self._body[self._pos : self._pos + n]
        self._pos += n
        return n


def report_form(token: str | None, files: int, size: int, token_last: bool = False) -> MultiDict:
    """The report form as a browser sends it: the token first, text fields, then files."""
    values: MultiDict = MultiDict()
    if token is not None and not token_last:
        values.add("csrf_token", token)
    values.add("category", "harassment")
    values.add("urgency", "routine")
    values.add("what_happened", "Someone keeps reverting my edits and writing to me.")
    for i in range(files):
        values.add("files", FileStorage(io.BytesIO(os.urandom(size)), filename=f"part-{i}.bin"))
    if token is not None and token_last:
        values.add("csrf_token", token)
    return values


def post_watched(
    client: FlaskClient, values: MultiDict, headers: dict[str, str] | None = None
) -> tuple[TestResponse, WatchedBody]:
    """POST the report form, its body streamed through a :class:`WatchedBody`."""
    boundary, body = encode_multipart(values)
    watched = WatchedBody(body)
    response = client.post(
        "/submit",
        input_stream=watched,
        content_length=len(body),
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=headers or {},
    )
    return response, watched
