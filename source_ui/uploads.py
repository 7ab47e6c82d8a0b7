"""Streaming uploads: a file part's bytes go straight into gpg, never to a temp file.

Werkzeug's form parser asks the request for a stream to write each file part into, and
by default spools large parts to a temporary file on disk. Here, for the report form of a
logged-in source, that stream is an :class:`~securedrop_wm.crypto.EncryptingWriter`:
memory stays flat whatever the file size, and only ciphertext reaches the disk. Every
other file part is counted and dropped. Whatever is not committed by the end of the
request is removed.
"""

from __future__ import annotations

import io
from typing import IO, Any

from flask import Flask, current_app, g, request, session
from flask.wrappers import Request
from werkzeug.formparser import FormDataParser

from sdwm_web.services import DROP, service
from securedrop_wm.drop import Drop
from securedrop_wm.errors import ReportError
from securedrop_wm.sources import PendingFile, abort_files, start_file

UPLOAD_ENDPOINT = "source.submit"
# How much of the body to ask the server for at once. Werkzeug asks for 64 KiB; gunicorn
# (27) reads ahead up to 1 MiB and copies what is left of that on every such read, so a
# fast upload cost the worker about 2 CPU-s per 500 MiB, more than gpg. Asking for a
# megabyte at a time took that to about 1.4 (bench/upload.py).
_BODY_READ_SIZE = 1024 * 1024


class _RawBody(io.RawIOBase):
    """The request body as a raw stream, for an :class:`io.BufferedReader` to read in bulk."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _BulkReadFormDataParser(FormDataParser):
    """Parses forms as Werkzeug does, pulling the body from the server in large reads."""

    def parse(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> Any:
        buffered = io.BufferedReader(_RawBody(stream), _BODY_READ_SIZE)
        return super().parse(buffered, mimetype, content_length, options)


class _Discard:
    """A sink for file parts nobody asked for."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def tell(self) -> int:
        return self.size

    def read(self, size: int = -1) -> bytes:
        return b""

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


class UploadRequest(Request):
    """A request whose file parts are encrypted as they stream in."""

    form_data_parser_class = _BulkReadFormDataParser

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        # Werkzeug types this as IO[bytes] but only writes, seeks and reads the stream:
        # our sinks have exactly those methods, not all of IO's (hence the ignores).
        if self.endpoint != UPLOAD_ENDPOINT or "sid" not in session or not filename:
            return _Discard()  # type: ignore[return-value]
        try:
            pending = start_file(service(current_app, DROP, Drop), filename)
        except ReportError as e:
            g.setdefault("upload_errors", []).append(e)
            return _Discard()  # type: ignore[return-value]
        g.setdefault("pending_files", []).append(pending)
        return pending.writer  # type: ignore[return-value]


def pending_files() -> list[PendingFile]:
    """The files of this request being encrypted, in the order they arrived."""
    files: list[PendingFile] = g.get("pending_files", [])
    return files


def upload_errors() -> list[ReportError]:
    """Why file parts of this request were refused, in the order they arrived.

    The errors themselves, not their English text: the view tells the source why in the
    page's language (a :class:`~securedrop_wm.errors.FileNameError` carries its reason).
    """
    errors: list[ReportError] = g.get("upload_errors", [])
    return errors


def init_uploads(app: Flask) -> None:
    """Make sure no half-written ciphertext outlives its request."""

    @app.teardown_request
    def _discard_uncommitted(_exc: BaseException | None) -> None:
        files = pending_files()
        if files:
            abort_files(files)
            # Its temporary files came and went: the folder's times are to the second.
            service(current_app, DROP, Drop).store.settle()

    _ = request  # the parser is driven by Flask; nothing else to install


def form_value(name: str, default: str = "") -> Any:
    """A form field as text, stripped of surrounding whitespace."""
    return (request.form.get(name) or default).strip()
