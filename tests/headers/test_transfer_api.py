"""Every route of the transfer API, GET and POST, without a token, with a wrong one and
with a valid one, carries the security headers, sets no cookie, and never answers with
a server error; its refusals of a bad reply bundle carry them too."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from securedrop_wm.drop import Drop
from securedrop_wm.settings import Settings
from securedrop_wm.transfer import create_token
from transfer_api import create_app

from .checks import header_problems, routes


@pytest.fixture
def api(settings: Settings, drop: Drop) -> Flask:
    return create_app(settings, drop)


def test_every_route_with_and_without_a_token(api: Flask, drop: Drop) -> None:
    client: FlaskClient = api.test_client()
    tokens = {"no token": None, "wrong token": "x" * 40, "token": create_token(drop, "on-call")}
    problems = []
    seen = set()
    for rule, path in routes(api):
        seen.add(rule.endpoint)
        for who, token in tokens.items():
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for method in ("GET", "POST"):
                body = b"not a bundle" if method == "POST" else None
                with client.open(path, method=method, headers=headers, data=body) as response:
                    label = f"{method} {path} ({who}) -> {response.status_code}"
                    if response.status_code >= 500:
                        problems.append(f"{label}: server error")
                    if who != "token" and response.status_code < 400:
                        problems.append(f"{label}: answered without a valid token")
                    if "Set-Cookie" in response.headers:
                        problems.append(f"{label}: sets a cookie")
                    problems += [f"{label}: {p}" for p in header_problems(response, html_csp=False)]
    assert problems == []
    assert {"transfer.status", "transfer.export", "transfer.replies"} <= seen


def test_refused_reply_bundles_carry_the_headers(api: Flask, drop: Drop) -> None:
    client = api.test_client()
    auth = {"Authorization": f"Bearer {create_token(drop, 'on-call')}"}
    answers = {
        "empty": client.post("/replies", headers=auth, data=b""),
        "garbage": client.post("/replies", headers=auth, data=b"\x1f\x8b" + b"\0" * 4096),
        "no such route": client.get("/../../etc/passwd", headers=auth),
    }
    for name, response in answers.items():
        assert 400 <= response.status_code < 500, name
        assert response.is_json, name
        assert header_problems(response, html_csp=False) == [], name
