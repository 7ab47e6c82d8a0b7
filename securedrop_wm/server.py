"""Running a WSGI app under gunicorn with the drop's rules: no access log, quiet errors.

The rules are written once, in :func:`gunicorn_policy`; :class:`DropWorker` is the part
of them gunicorn has no setting for (no banner, headers and silence on its own errors).
"""

from __future__ import annotations

import errno
import os
import resource
import selectors
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.http import errors as http_errors
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.util import write_nonblock
from gunicorn.workers.gthread import TConn, ThreadWorker

from .connections import ConnectionLimits, PacedSocket, head_is_ready
from .settings import CONFIG_ENV

# What any response of any app carries, gunicorn's own error responses included: never
# cached, never sniffed, never framed, no referrer, not readable by another origin. The
# CSP is the strictest there is. ``sdwm_web.headers`` builds each app's headers on it.
BASE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",  # for HTTP/1.0 caches, which ignore Cache-Control
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}

# gunicorn's own failures (a header the app set that it refuses, a bad setting), though
# some are ParseExceptions: a 500, and logged.
_SERVER_ERRORS = (
    http_errors.InvalidResponseHeader,
    http_errors.InvalidResponseHeaderName,
    http_errors.ConfigurationProblem,
)
# What gunicorn answers a request it cannot parse with (its own table, minus the text
# that echoes the request). Anything else it fails on is a 500.
_CLIENT_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (http_errors.LimitRequestLine, 414, "URI Too Long"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden"),
    (http_errors.ParseException, 400, "Bad Request"),
)


def _bannerless_headers(resp: Any) -> list[str]:
    return [line for line in _default_headers(resp) if not line.startswith("Server:")]


_default_headers = gunicorn_wsgi.Response.default_headers


@dataclass
class _Head:
    """A connection whose request head is still arriving, read by the event loop."""

    conn: Any
    deadline: float
    buffer: bytearray = field(default_factory=bytearray)


# How much of a head the event loop reads at once.
_HEAD_READ_SIZE = 16 * 1024
# File descriptors a worker may hold: one per connection, stalled ones included.
_WANTED_FILES = 65536


class DropWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker that names no server, keeps its own errors quiet, and
    gives a thread only to a request that has arrived (:mod:`.connections`).

    gunicorn sends ``Server: gunicorn`` before any header the app sets, and answers a
    request it cannot parse itself: a bare page without the security headers, and a
    WARNING log line quoting the request (which may carry whatever a client sent). This
    worker drops the banner, answers those requests with :data:`BASE_HEADERS` and a
    fixed text, and logs nothing about them: a malformed request is a client's mistake
    or a probe, and neither belongs on the server's disk or journal.
    """

    limits = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads: dict[Any, _Head] = {}
        self._head_order: deque[_Head] = deque()  # by deadline: all wait equally long

    def init_process(self) -> None:
        # gunicorn builds its Response objects inside ``wsgi.create``, out of a
        # worker's reach: the banner goes from the class, in this worker process only.
        gunicorn_wsgi.Response.default_headers = _bannerless_headers
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = _WANTED_FILES if hard == resource.RLIM_INFINITY else min(hard, _WANTED_FILES)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        super().init_process()

    # -- the request head, read by the event loop ------------------------------------

    def accept(self, listener: Any) -> None:
        try:
            client, address = listener.accept()
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        self.nr_conns += 1
        self._await_head(TConn(self.cfg, client, address, listener.getsockname()))

    def on_client_socket_readable(self, conn: Any, client: Any) -> None:
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._await_head(conn)

    def _await_head(self, conn: Any) -> None:
        conn.sock.setblocking(False)
        head = _Head(conn, time.monotonic() + self.limits.head_seconds)
        self._heads[conn] = head
        self._head_order.append(head)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_head, head))

    def _read_head(self, head: _Head, _sock: Any) -> None:
        try:
            data = head.conn.sock.recv(_HEAD_READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._end_head(head)
            return
        head.buffer += data
        if head_is_ready(head.buffer, self.limits.max_head_bytes):
            self.poller.unregister(head.conn.sock)
            del self._heads[head.conn]
            head.conn.sdwm_head = bytes(head.buffer)
            head.conn.data_ready = True
            self.enqueue_req(head.conn)

    def _end_head(self, head: _Head, answer: bytes = b"") -> None:
        del self._heads[head.conn]
        try:
            self.poller.unregister(head.conn.sock)
        except (KeyError, ValueError, OSError):
            pass  # not registered any more
        if answer:
            try:
                head.conn.sock.send(answer)
            except OSError:
                pass  # the client is gone or not reading: nothing more to tell it
        self.nr_conns -= 1
        head.conn.close()

    def murder_pending(self) -> None:
        """Close what gunicorn would, and every head that took too long (with a 408)."""
        super().murder_pending()
        now = time.monotonic()
        while self._head_order:
            head = self._head_order[0]
            waiting = self._heads.get(head.conn) is head
            if waiting and head.deadline > now:
                break
            self._head_order.popleft()
            if waiting:
                self._end_head(head, error_response(408, "Request Timeout"))

    def handle(self, conn: Any) -> Any:
        """Serve a request whose head arrived: give the parser what the event loop read,
        and the socket through :class:`PacedSocket`, which cuts a body sent too slowly."""
        conn.sock.setblocking(True)
        conn.init()
        head: bytes = getattr(conn, "sdwm_head", b"")
        conn.sdwm_head = b""
        unreader = conn.parser.unreader
        unreader.unread(head)
        unreader.sock = PacedSocket(conn.sock, self.limits)
        return super().handle(conn)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status, reason = _client_error(exc) or (500, "Internal Server Error")
        if status == 500:
            # The app's own errors are answered by the app; this is gunicorn failing:
            # logged, without the request.
            self.log.error("Error handling a request: %s", type(exc).__name__)
        try:
            write_nonblock(client, error_response(status, reason))
        except Exception:  # noqa: BLE001, S110 - the client is gone; nothing to tell it
            pass


def _client_error(exc: BaseException) -> tuple[int, str] | None:
    if isinstance(exc, _SERVER_ERRORS):
        return None
    for kind, status, reason in _CLIENT_ERRORS:
        if isinstance(exc, kind):
            return status, reason
    return None


def error_response(status: int, reason: str) -> bytes:
    """The raw HTTP response the worker sends for a request it cannot serve."""
    body = f"{status} {reason}\n".encode("ascii")
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Connection: close",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in BASE_HEADERS.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, app_uri: str, options: dict[str, Any]) -> None:
        self.app_uri = app_uri
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from gunicorn.util import import_app

        return import_app(self.app_uri)


def gunicorn_policy(*, timeout: int = 3600, loglevel: str = "warning") -> dict[str, Any]:
    """The gunicorn settings that keep it from recording anything about a request, for
    ``serve`` and ``serve-transfer`` and for the deployed server's gunicorn config files
    (Ansible's ``app.conf.py.j2`` imports this), which add where to listen and how many
    workers and threads.

    :param timeout: seconds a worker may spend on one request before it is killed.
    :param loglevel: gunicorn's own messages at this level and above go to stderr.
    """
    return {
        # gthread, without a banner and without a log line for a malformed request.
        "worker_class": "securedrop_wm.server.DropWorker",
        # Uploads over Tor are slow: a worker busy with one must not be killed as hung.
        "timeout": timeout,
        "graceful_timeout": 10,
        "accesslog": None,
        "disable_redirect_access_to_syslog": True,
        "errorlog": "-",
        "loglevel": loglevel,
        "capture_output": False,
        # Heartbeat files in memory, not on the data disk.
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,  # noqa: S108
        # Connections waiting for their head cost no thread (DropWorker): let a worker
        # hold many, so that a thousand stalled ones do not lock real sources out.
        "worker_connections": 4096,
        "limit_request_line": 4094,
        "limit_request_fields": 50,
        # No control socket (~/.gunicorn/gunicorn.ctl): one less surface, nothing outside
        # the data dir.
        "control_socket_disable": True,
        "forwarded_allow_ips": "",
        "proxy_allow_ips": "",
    }


def gunicorn_options(host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    """The drop's policy, listening on ``host:port``."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        **gunicorn_policy(),
    }


def run_gunicorn(
    app_uri: str, config_path: Path, host: str, port: int, workers: int, threads: int
) -> None:
    """Serve ``app_uri`` (``module:attribute``) until interrupted."""
    os.environ[CONFIG_ENV] = str(config_path)
    _Gunicorn(app_uri, gunicorn_options(host, port, workers, threads)).run()
