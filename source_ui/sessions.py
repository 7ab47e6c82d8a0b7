"""Encrypted, expiring session cookies.

The session holds a logged-in source's derived lookup id and key passphrase, so it is
encrypted (AES-256-GCM under the server's session key), not merely signed, and it
expires after a period of inactivity enforced on the server, whatever the cookie says.
Nothing about sessions is kept on the server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SessionInterface


class SourceSession(SecureCookieSession):
    """A session dict that also says whether the cookie it came from had expired."""

    expired: bool = False


class EncryptedSessionInterface(SessionInterface):
    """Sessions in an AES-GCM encrypted cookie with server-side inactivity expiry."""

    session_class = SourceSession

    def __init__(self, key: bytes, lifetime_seconds: int, clock: Any = time.time) -> None:
        self._aead = AESGCM(hashlib.sha256(b"securedrop-wm session\0" + key).digest())
        self._lifetime = lifetime_seconds
        self._clock = clock

    def open_session(self, app: Flask, request: Request) -> SourceSession:
        cookie = request.cookies.get(self.get_cookie_name(app))
        if not cookie:
            return SourceSession()
        try:
            raw = base64.urlsafe_b64decode(cookie.encode("ascii") + b"==")
            payload = json.loads(self._aead.decrypt(raw[:12], raw[12:], b"session"))
            seen = float(payload.pop("_seen"))
        except (ValueError, InvalidTag, KeyError, TypeError, UnicodeError):
            return SourceSession()
        if self._clock() - seen > self._lifetime:
            # Everything goes but the chosen language, so the expiry page is readable.
            session = SourceSession({"lang": payload["lang"]} if "lang" in payload else {})
            session.expired = True
            return session
        return SourceSession(payload)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        name = self.get_cookie_name(app)
        path = self.get_cookie_path(app)
        if not session:
            if session.modified or session.expired:
                response.delete_cookie(name, path=path, httponly=True, samesite="Strict")
            return
        payload = dict(session, _seen=self._clock())
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, json.dumps(payload).encode(), b"session")
        value = base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")
        response.set_cookie(
            name,
            value,
            path=path,
            httponly=True,
            samesite="Strict",
            secure=self.get_cookie_secure(app),
        )
        response.vary.add("Cookie")
