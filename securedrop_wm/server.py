"""Running a WSGI app under gunicorn with the drop's rules: no access log, quiet errors.

The rules are written once, in :func:`gunicorn_policy`; :class:`DropWorker` is the part
of them gunicorn has no setting for (no banner, headers and silence on its own errors).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.http import errors as http_errors
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.util import write_nonblock
from gunicorn.workers.gthread import ThreadWorker

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


class DropWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker that names no server and keeps its own errors quiet.

    gunicorn sends ``Server: gunicorn`` before any header the app sets, and answers a
    request it cannot parse itself: a bare page without the security headers, and a
    WARNING log line quoting the request (which may carry whatever a client sent). This
    worker drops the banner, answers those requests with :data:`BASE_HEADERS` and a
    fixed text, and logs nothing about them: a malformed request is a client's mistake
    or a probe, and neither belongs on the server's disk or journal.
    """

    def init_process(self) -> None:
        # gunicorn builds its Response objects inside ``wsgi.create``, out of a
        # worker's reach: the banner goes from the class, in this worker process only.
        gunicorn_wsgi.Response.default_headers = _bannerless_headers
        super().init_process()

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
