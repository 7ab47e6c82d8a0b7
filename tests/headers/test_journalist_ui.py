"""Every route of the journalist UI, GET and POST, logged out and logged in as the
admin, carries the security headers and safe cookies, and never a server error."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.workstation.fixtures import Station, login

from .checks import walk


def test_every_route_logged_out(ws_app: Flask, ws_client: FlaskClient) -> None:
    problems, seen = walk(ws_app, ws_client, "/login", ("auth.logout",))
    assert problems == []
    assert {"auth.login", "cases.case", "static"} <= seen


def test_every_route_logged_in(ws_app: Flask, ws_client: FlaskClient, station: Station) -> None:
    response = login(ws_client, station)
    assert response.status_code == 302  # type: ignore[attr-defined]
    problems, seen = walk(ws_app, ws_client, "/account", ("auth.logout",))
    assert problems == []
    assert {"cases.index", "admin.audit_log", "stats.index"} <= seen
