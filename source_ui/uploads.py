"""Streaming uploads: a file part's bytes go straight into gpg, never to a temp file.

Werkzeug's form parser asks the request for a stream to write each file part into, and
by default spools large parts to a temporary file on disk. Here, for the report form of a
logged-in source, that stream is an :class:`~securedrop_wm.crypto.EncryptingWriter`:
memory stays flat whatever the file size, and only ciphertext reaches the disk. Every
other file part is counted and dropped. Whatever is not committed by the end of the
request is removed.

The work a request can start is bounded: the form's single-use token is checked (and
spent) before the first file part starts a gpg, each file part is finished before the
next one starts (one gpg per request at a time), and a report with more file parts than
``max_files_per_report`` is refused at the first part too many, with nothing kept.

Two forms upload: the report form (``source.submit``, up to ``max_files_per_report``
files) and the one-file form (``source.send_file``, exactly one file per request, so that
a dropped connection loses one file, not a report).

Each file is encrypted to the keys of the desks its report goes to (securedrop_wm/desks.py),
known before its first byte: on the report form, the ``desk`` and ``also_central`` fields,
which the form sends before its files; on the one-file form, the desks of the source's
previous report (a follow-up). A desk choice that is missing or unknown refuses the file
(nothing of it is kept) and the view says why.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import IO, Any

from flask import Flask, current_app, g, request, session
from flask.wrappers import Request
from flask_wtf.csrf import CSRFError, validate_csrf
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from sdwm_web.services import DROP, SETTINGS, service
from securedrop_wm.desks import route
from securedrop_wm.drop import Drop
from securedrop_wm.errors import ReportError
from securedrop_wm.kdf import SourceId, SourcePassphrase
from securedrop_wm.settings import Settings
from securedrop_wm.sources import (
    PendingFile,
    SourceLogin,
    abort_files,
    follow_up_desks,
    start_file,
)

from .sessions import SessionStore

UPLOAD_ENDPOINT = "source.submit"
#: The one-file form: each request carries one file, stored as its own follow-up.
ONE_FILE_ENDPOINT = "source.send_file"
#: The endpoints whose file parts are encrypted as they arrive.
UPLOAD_ENDPOINTS = (UPLOAD_ENDPOINT, ONE_FILE_ENDPOINT)
# How much of the body to ask the server for at once. Werkzeug asks for 64 KiB; gunicorn
# (27) reads ahead up to 1 MiB and copies what is left of that on every such read, so a
# fast upload cost the worker about 2 CPU-s per 500 MiB, more than gpg. Asking for a
# megabyte at a time took that to about 1.4 (bench/upload.py).
_BODY_READ_SIZE = 1024 * 1024
#: Where :func:`init_uploads` keeps the store that spends form tokens.
FORM_TOKENS = "source_ui.form_tokens"

#: The form fields parsed before a file part: (name, value) in the order they came.
Fields = Sequence[tuple[str, str]]


class TooManyFilesError(Exception):
    """A report with more file parts than ``max_files_per_report``: refused whole.

    Carries the form's text fields parsed so far (the report form sends them before its
    files), so the form can come back with what the source typed.
    """

    def __init__(self, limit: int, fields: Fields) -> None:
        super().__init__(f"more than {limit} files in one report")
        self.limit = limit
        self.fields = dict(fields)


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


class _FieldsFirstMultiPartParser(MultiPartParser):
    """Werkzeug's multipart parser (3.1), which also tells the stream factory of a file
    part the fields parsed before it: that is where the form token is, so it is checked
    before any file part starts work. The loop is Werkzeug's, with ``fields=`` added."""

    def start_file_streaming(self, event: File, total_content_length: int | None) -> IO[bytes]:
        factory: Callable[..., IO[bytes]] = self.stream_factory
        return factory(
            total_content_length=total_content_length,
            filename=event.filename,
            content_type=event.headers.get("content-type"),
            content_length=0,
            fields=tuple(self._fields),
        )

    def parse(
        self, stream: IO[bytes], boundary: bytes, content_length: int | None
    ) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
        current_part: Field | File
        field_size: int | None = None
        container: Any = None
        decoder = MultipartDecoder(
            boundary, max_form_memory_size=self.max_form_memory_size, max_parts=self.max_form_parts
        )
        self._fields: list[tuple[str, str]] = []
        files: list[tuple[str, FileStorage]] = []
        while True:
            data = stream.read(self.buffer_size)
            decoder.receive_data(data or None)
            event = decoder.next_event()
            while not isinstance(event, Epilogue | NeedData):
                if isinstance(event, Field):
                    current_part, field_size, container = event, 0, []
                elif isinstance(event, File):
                    current_part, field_size = event, None
                    container = self.start_file_streaming(event, content_length)
                elif isinstance(event, Data):
                    if self.max_form_memory_size is not None and field_size is not None:
                        field_size += len(event.data)
                        if field_size > self.max_form_memory_size:
                            raise RequestEntityTooLarge()
                    if isinstance(container, list):
                        container.append(event.data)
                    else:
                        container.write(event.data)
                    if not event.more_data:
                        if isinstance(current_part, Field):
                            charset = self.get_part_charset(current_part.headers)
                            value = b"".join(container).decode(charset, "replace")
                            self._fields.append((current_part.name, value))
                        else:
                            container.seek(0)
                            files.append(
                                (
                                    current_part.name,
                                    FileStorage(
                                        container,
                                        current_part.filename,
                                        current_part.name,
                                        headers=current_part.headers,
                                    ),
                                )
                            )
                event = decoder.next_event()
            if not data:
                break
        return self.cls(self._fields), self.cls(files)


class _BulkReadFormDataParser(FormDataParser):
    """Parses forms as Werkzeug does, pulling the body from the server in large reads,
    telling each file part's stream factory the fields that came before it."""

    def parse(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str] | None = None,
    ) -> Any:
        buffered = io.BufferedReader(_RawBody(stream), _BODY_READ_SIZE)
        return super().parse(buffered, mimetype, content_length, options)

    def _parse_multipart(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> Any:
        parser = _FieldsFirstMultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts,
            cls=self.cls,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


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
        fields: Fields = (),
    ) -> IO[bytes]:
        # Werkzeug types this as IO[bytes] but only writes, seeks and reads the stream:
        # our sinks have exactly those methods, not all of IO's (hence the ignores).
        if (
            self.endpoint not in UPLOAD_ENDPOINTS
            or "sid" not in session
            or not filename
            or g.get("upload_refused")
        ):
            return _Discard()  # type: ignore[return-value]
        parts = g.get("file_parts", 0) + 1
        g.file_parts = parts
        limit = service(current_app, SETTINGS, Settings).max_files_per_report
        if self.endpoint == ONE_FILE_ENDPOINT:
            limit = 1
        if parts > limit:
            g.upload_refused = True
            abort_files(g.pop("pending_files", []))
            raise TooManyFilesError(limit, fields)
        if parts == 1:
            try:
                _spend_form_token(fields)
            except CSRFError:
                g.upload_refused = True
                raise
        files = pending_files()
        if files:
            # One gpg per request at a time: the previous part is complete, finish it.
            files[-1].writer.close()
        try:
            # The report form sends the desk choice before its files (submit.html): each
            # file is encrypted to the chosen desks only, as the report will be.
            # The one-file form's file is a follow-up: the desks of the previous report.
            drop = service(current_app, DROP, Drop)
            if self.endpoint == UPLOAD_ENDPOINT:
                desks = report_desks(_first(fields, "desk"), _first(fields, "also_central"))
            else:
                login = SourceLogin(SourceId(session["sid"]), SourcePassphrase(session["pp"]))
                desks = follow_up_desks(drop, login)
            pending = start_file(drop, filename, desks)
        except ReportError as e:
            g.setdefault("upload_errors", []).append(e)
            return _Discard()  # type: ignore[return-value]
        g.setdefault("pending_files", []).append(pending)
        return pending.writer  # type: ignore[return-value]


def report_desks(desk: str, also_central: str) -> tuple[str, ...]:
    """The desks a new report goes to, from the report form's ``desk`` and
    ``also_central`` fields (``desk`` may be empty on a drop with one desk).

    :raises UnknownDeskError: no desk chosen on a drop with several, or an unknown one.
    """
    settings = service(current_app, SETTINGS, Settings)
    return route(settings, desk.strip() or None, also_central.strip() == "1")


def _first(fields: Fields, name: str) -> str:
    """The first value of the field ``name`` among ``fields`` ("" if absent), as
    ``request.form.get`` gives it once the whole form is parsed."""
    return next((value for key, value in fields if key == name), "")


def _spend_form_token(fields: Fields) -> None:
    """Check the form's token among the fields parsed so far and spend it, before a file
    part starts any work; the CSRF hooks then see it spent by this request.

    :raises CSRFError: when the token is missing, invalid, expired or spent.
    """
    name = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    posted = next((value for key, value in fields if key == name), None)
    try:
        validate_csrf(posted)
    except ValueError as e:  # wtforms.ValidationError, untyped
        raise CSRFError(e.args[0]) from None
    token = session.get("csrf_token")
    store = current_app.extensions[FORM_TOKENS]
    if not isinstance(token, str) or not isinstance(store, SessionStore) or not store.spend(token):
        raise CSRFError("form token already used")
    g.form_token_spent = token


def form_token_spent_here(token: str) -> bool:
    """Whether this request already spent ``token`` (while its file parts arrived)."""
    return bool(g.get("form_token_spent") == token)


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


def init_uploads(app: Flask, tokens: SessionStore) -> None:
    """Make sure no half-written ciphertext outlives its request; ``tokens`` spends the
    form token of an upload before its first file part."""
    app.extensions[FORM_TOKENS] = tokens

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
