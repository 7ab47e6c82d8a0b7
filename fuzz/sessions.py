"""Coverage-guided fuzzing of the source UI's encrypted session cookie: whatever cookie
arrives, opening it never raises and gives an empty (visitor's) session, since only
this server's key can seal one.

Run: python -m fuzz.sessions [-max_total_time=SECONDS] [CORPUS_DIR]
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import atheris
from flask import Flask

with atheris.instrument_imports(include=["source_ui.sessions"]):
    from source_ui.sessions import EncryptedSessionInterface, SessionStore

from fuzz.common import remove_after_exit, run

APP = Flask(__name__)
APP.config["SESSION_COOKIE_NAME"] = "sdwm"
# A store of its own on the tmpfs, removed when the run ends.
_FOLDER = Path(tempfile.mkdtemp(prefix="sdwm-fuzz-", dir="/dev/shm"))  # noqa: S108
remove_after_exit(_FOLDER)
STORE = SessionStore(_FOLDER / "sessions.sqlite", 1800, 7200, 1800)
SESSIONS = EncryptedSessionInterface(os.urandom(32), 1800, STORE)


def test(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 5000))
    # As a WSGI server hands it over: any bytes but line breaks, decoded as latin-1.
    cookie = raw.replace(b"\r", b"").replace(b"\n", b"").decode("latin-1")
    prefix = "sdwm=" if fdp.ConsumeBool() else ""
    with APP.test_request_context(environ_base={"HTTP_COOKIE": prefix + cookie}):
        from flask import request

        session = SESSIONS.open_session(APP, request)
    if session is None or dict(session):
        raise AssertionError(f"a forged cookie opened a session: {dict(session or {})!r}")


if __name__ == "__main__":
    run(test)
