"""Running a WSGI app under gunicorn with the drop's rules: no access log, quiet errors.

The rules are written once, in :func:`gunicorn_policy`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from .settings import CONFIG_ENV


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
        "worker_class": "gthread",
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
