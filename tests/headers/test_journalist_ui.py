"""Every route of the journalist UI, GET and POST, logged out and logged in as the
admin, carries the security headers and safe cookies, and never a server error."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import CSRF_RE
from tests.workstation.fixtures import Desk, login

from .checks import header_problems, routes

LAST = ("auth.logout",)  # ends the session: walked last


def _walk(app: Flask, client: FlaskClient, token_page: str) -> tuple[list[str], set[str]]:
    problems: list[str] = []
    seen = set()
    for rule, path in sorted(routes(app), key=lambda r: r[0].endpoint in LAST):
        seen.add(rule.endpoint)
        for method in ("GET", "POST"):
            token = CSRF_RE.search(client.get(token_page).text)
            data = {"csrf_token": token.group(1)} if token else {}
            with client.open(path, method=method, data=data) as response:
                label = f"{method} {path} -> {response.status_code}"
                if response.status_code >= 500:
                    problems.append(f"{label}: server error")
                problems += [f"{label}: {p}" for p in header_problems(response)]
    return problems, seen


def test_every_route_logged_out(ws_app: Flask, ws_client: FlaskClient) -> None:
    problems, seen = _walk(ws_app, ws_client, "/login")
    assert problems == []
    assert {"auth.login", "cases.case", "static"} <= seen


def test_every_route_logged_in(ws_app: Flask, ws_client: FlaskClient, desk: Desk) -> None:
    response = login(ws_client, desk)
    assert response.status_code == 302  # type: ignore[attr-defined]
    problems, seen = _walk(ws_app, ws_client, "/account")
    assert problems == []
    assert {"cases.index", "admin.audit_log", "stats.index"} <= seen
