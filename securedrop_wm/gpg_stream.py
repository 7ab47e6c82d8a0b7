"""Streaming encryption: chunks pushed into an :class:`EncryptingWriter` reach gpg (and only
ciphertext the disk) through a small bounded queue."""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .errors import CryptoError, EncryptionError, StoreFullError
from .gpg_support import _CHUNK

if TYPE_CHECKING:
    from .crypto import GnuPG


class Readable(Protocol):
    """Anything gpg can read plaintext from in chunks."""

    def read(self, size: int = -1, /) -> bytes: ...


class EncryptingWriter:
    """A writable sink: each chunk written is handed to a gpg process encrypting to a file.

    Memory is bounded by a small queue between the writer and gpg, whatever the size of
    the stream. :meth:`close` waits for gpg and reports failure; :meth:`abort` discards.
    """

    _QUEUE_CHUNKS = 16

    def __init__(self, gpg: GnuPG, recipients: Sequence[str], output: Path) -> None:
        self.output = output
        self.size = 0
        self._queue: queue.Queue[bytes] = queue.Queue(self._QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._closed = False
        self._reader = _QueueReader(self._queue)
        self._thread = threading.Thread(target=self._run, args=(gpg, list(recipients)), daemon=True)
        self._thread.start()

    def _run(self, gpg: GnuPG, recipients: list[str]) -> None:
        try:
            gpg.encrypt_stream(self._reader, recipients, self.output)
        except BaseException as e:  # noqa: BLE001 - handed to the writer's thread
            self._error = e
        finally:
            self._reader.finished = True

    def write(self, data: bytes) -> int:
        """Queue ``data`` for encryption; blocks while gpg catches up."""
        if self._closed:
            raise ValueError("write to a closed EncryptingWriter")
        for start in range(0, len(data), _CHUNK):
            chunk = bytes(data[start : start + _CHUNK])
            while True:
                if not self._thread.is_alive():
                    self._raise_failure()
                try:
                    self._queue.put(chunk, timeout=0.2)
                    break
                except queue.Full:
                    continue
        self.size += len(data)
        return len(data)

    def close(self) -> None:
        """Finish the stream and wait for gpg.

        :raises EncryptionError: or :class:`StoreFullError` when gpg failed.
        """
        if self._closed:
            return
        self._closed = True
        self._put_end()
        self._thread.join()
        if self._error is not None:
            self._raise_failure()

    def abort(self) -> None:
        """Stop and remove whatever was written. Safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._reader.cancelled = True
            self._put_end()
            self._thread.join()
        self.output.unlink(missing_ok=True)

    def _put_end(self) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(b"", timeout=0.2)
                return
            except queue.Full:
                continue

    def _raise_failure(self) -> None:
        self._closed = True
        self.output.unlink(missing_ok=True)
        error = self._error
        if isinstance(error, CryptoError | StoreFullError):
            raise error
        raise EncryptionError(f"encryption stopped: {error}")

    # Werkzeug's form parser treats the sink as a file object.
    def seek(self, offset: int, whence: int = 0) -> int:
        return self.size

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        return None


class _QueueReader:
    """The read side of :class:`EncryptingWriter`: what python-gnupg copies into gpg."""

    def __init__(self, chunks: queue.Queue[bytes]) -> None:
        self._chunks = chunks
        self.finished = False
        self.cancelled = False
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        if self._eof:
            return b""
        chunk = self._chunks.get()
        if not chunk or self.cancelled:
            self._eof = True
            # A cancelled stream must not end as a valid ciphertext: make gpg fail.
            if self.cancelled:
                raise OSError("upload cancelled")
            return b""
        return chunk

    def close(self) -> None:
        return None


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        size = len(self._view) if size < 0 else size
        chunk = self._view[self._pos : self._pos + size]
        self._pos += len(chunk)
        return bytes(chunk)

    def close(self) -> None:
        return None
