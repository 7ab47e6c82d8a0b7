"""How long a client may take: slow and stalled connections are dropped, slow uploads are not.

A thread of the web server is the scarce thing: a client that opens a connection and
then sends nothing, or half a request, or a body one byte at a time, must not keep one.
Two rules, applied by :class:`~securedrop_wm.server.DropWorker`:

- **The request head waits outside the threads.** A new or kept-alive connection is read
  by the worker's event loop, without blocking, until its request line and headers are
  complete and, when a body is announced, its first body byte has arrived. Only then
  does a thread take it. Whatever has not arrived within :attr:`ConnectionLimits.head_seconds`
  gets a 408 and is closed. A thousand such connections cost a file descriptor and a
  few hundred bytes each, no thread.
- **A body must keep a minimum average rate.** While a thread reads a body,
  :class:`PacedSocket` keeps a credit of seconds: it starts at ``grace_seconds``, the
  time passing spends it, every byte received adds ``1 / min_rate`` seconds, up to
  ``max_stall_seconds``. When it runs out the connection is cut. A body dripped a byte
  every 50 seconds is cut after ``grace_seconds``; a real upload over Tor at 50 KiB/s
  (500 MiB in about three hours) earns credit 25 times faster than it spends it, and
  may pause for up to ``max_stall_seconds`` when its circuit hiccups. A per-read
  timeout alone would keep a drip alive for ever.

What this does not stop: a client that does send at the minimum rate holds its thread
as long as it keeps paying. Holding every thread of a drop with ``W`` workers of ``T``
threads costs ``W × T × min_rate`` bytes per second, sent without pause
(docs/threat-model.md).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

_HEAD_END = b"\r\n\r\n"


@dataclass(frozen=True)
class ConnectionLimits:
    """The time a client may take, and how fast a body must come."""

    #: For the request line, the headers and (when a body is announced) its first byte.
    head_seconds: float = 20.0
    #: The credit a body starts with, in seconds.
    grace_seconds: float = 30.0
    #: The longest a body may pause, however much it sent before.
    max_stall_seconds: float = 60.0
    #: Bytes per second a body must average.
    min_rate: int = 2048
    #: A head larger than this is handed to the HTTP parser, which refuses it.
    max_head_bytes: int = 16 * 1024
    #: Seconds a response may wait for the client to read it.
    send_stall_seconds: float = 300.0


class PacedSocket:
    """A socket's ``recv`` that cuts a body sent slower than the minimum rate.

    Only reads go through it (gunicorn's request parser takes it as its source); the
    response is written to the socket itself. When the credit runs out the socket is
    shut down and ``recv`` returns ``b""``, which the parser and the app see as a client
    that went away: the upload is discarded, nothing is stored, nothing is logged.
    """

    def __init__(
        self,
        sock: socket.socket,
        limits: ConnectionLimits,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sock = sock
        self._limits = limits
        self._clock = clock
        self._credit = limits.grace_seconds
        self._last = clock()
        #: Whether the connection was cut for being too slow.
        self.cut = False

    def _spend(self) -> float:
        now = self._clock()
        self._credit -= now - self._last
        self._last = now
        return self._credit

    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes, or ``b""`` when the client closed or was too slow."""
        if self.cut or self._spend() <= 0:
            return self._cut()
        self._sock.settimeout(self._credit)
        try:
            data = self._sock.recv(size)
        except TimeoutError:
            return self._cut()
        finally:
            if not self.cut:
                self._sock.settimeout(self._limits.send_stall_seconds)
        self._spend()
        self._credit = min(
            self._limits.max_stall_seconds, self._credit + len(data) / self._limits.min_rate
        )
        return data

    def _cut(self) -> bytes:
        if not self.cut:
            self.cut = True
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already gone
        return b""


def head_is_ready(buffer: bytes | bytearray, max_head_bytes: int) -> bool:
    """Whether a thread may take a request whose first bytes are ``buffer``.

    Ready when the head is complete and, if it announces a body, a body byte is there
    too; or when the head is already too large (the parser then answers 431 or 414).
    A client that says ``Expect: 100-continue`` waits for the server before sending its
    body: its complete head is enough.
    """
    end = buffer.find(_HEAD_END)
    if end < 0:
        return len(buffer) > max_head_bytes
    if len(buffer) > end + len(_HEAD_END):
        return True
    return not _announces_body(bytes(buffer[:end]))


def _announces_body(head: bytes) -> bool:
    body = continues = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == b"expect":
            continues = value == b"100-continue"
        elif name == b"transfer-encoding":
            body = True
        elif name == b"content-length":
            body = value not in (b"", b"0")
    return body and not continues
