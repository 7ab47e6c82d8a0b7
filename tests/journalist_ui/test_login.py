"""Logging in through the journalist UI: one answer for every refusal, and a password
change that logs out the responder's other browsers."""

from __future__ import annotations

import datetime as dt
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from securedrop_wm.workstation import accounts
from securedrop_wm.workstation.models import Account
from tests.conftest import csrf_token
from tests.workstation.fixtures import ADMIN, ADMIN_PASSWORD, Station, login


def _refusal(
    client: FlaskClient, station: Station, username: str, password: str
) -> tuple[int, str]:
    """Status and flashed message of a refused login."""
    response = login(client, station, username, password=password)
    assert isinstance(response, TestResponse)
    flashed = re.findall(r'<p class="flash error"[^>]*>(.*?)</p>', response.text, re.DOTALL)
    return response.status_code, " ".join(flashed)


def test_unknown_user_wrong_password_and_waiting_account_get_the_same_page(
    ws_client: FlaskClient, station: Station
) -> None:
    # Given a responder whose account waits after failed logins
    accounts.add_account(station.ws, ADMIN, "bea", "bea's own password", admin=False)
    with station.ws.write() as db:
        bea = db.scalar(select(Account).where(Account.username == "bea"))
        assert bea is not None
        bea.locked_until = station.ws.now() + dt.timedelta(minutes=3)
    # When someone tries a name that does not exist, a wrong password, and bea's
    # right password while her account waits
    unknown = _refusal(ws_client, station, "nobody", "some password!!")
    wrong = _refusal(ws_client, station, ADMIN, "not the password!")
    waiting = _refusal(ws_client, station, "bea", "bea's own password")
    # Then the three answers cannot be told apart
    assert unknown == wrong == waiting
    assert unknown[0] == 401 and "Wrong username, password or code" in unknown[1]
    assert "locked" not in unknown[1]


def test_a_password_change_logs_out_the_other_browsers(
    ws_app: Flask, ws_client: FlaskClient, station: Station
) -> None:
    # Given the admin logged in from two browsers
    other = ws_app.test_client()
    for client in (ws_client, other):
        response = login(client, station)
        assert isinstance(response, TestResponse) and response.status_code == 302
    assert other.get("/").status_code == 200
    # When they change their password in the first
    page = ws_client.get("/account")
    new = "a fresh password, long"
    changed = ws_client.post(
        "/account",
        data={
            "csrf_token": csrf_token(page.text),
            "current": ADMIN_PASSWORD,
            "new": new,
            "confirm": new,
        },
        follow_redirects=True,
    )
    assert "Your password is changed" in changed.text
    # Then the other browser is logged out, and the first one is not
    gone = other.get("/")
    assert gone.status_code == 302 and gone.location.endswith("/login")
    assert ws_client.get("/").status_code == 200
