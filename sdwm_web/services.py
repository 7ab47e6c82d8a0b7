"""The core services an app was built with, kept on ``app.extensions``.

A factory stores each service once (``app.extensions[key] = service``); views and hooks
read it back through :func:`service`, typed, so a test that builds an app with its own
services never patches a global.
"""

from __future__ import annotations

from typing import TypeVar

from flask import Flask

T = TypeVar("T")

# The keys each app stores its core services under.
DROP = "securedrop_wm"
SETTINGS = "securedrop_wm.settings"
WORKSTATION = "securedrop_wm.workstation"


def service(app: Flask, key: str, kind: type[T]) -> T:
    """The service stored under ``key`` on ``app``.

    :raises TypeError: if what is stored there is not a ``kind`` (a wiring mistake in a
        factory, caught at the first request rather than deep in a view).
    """
    found = app.extensions[key]
    if not isinstance(found, kind):
        raise TypeError(f"app.extensions[{key!r}] is a {type(found).__name__}, not {kind}")
    return found
