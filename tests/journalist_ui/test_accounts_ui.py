"""Accounts through the journalist UI: an admin adds a responder, who logs in with the
one-time password and can reach nothing but enrolment (own password, authenticator shown
as a QR code and confirmed by a code); an admin resets a responder, never themselves."""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as ET

import pyotp
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.conftest import csrf_token
from tests.workstation.fixtures import ADMIN, Station, login

OWN_PASSWORD = "rosa's own long password"


def _post(client: FlaskClient, path: str, page: str, **data: str) -> TestResponse:
    return client.post(path, data={"csrf_token": csrf_token(page), **data})


def _one_time_password(page: str) -> str:
    found = re.search(r'id="one-time-password">([a-z2-7-]+)<', page)
    assert found, page
    return found.group(1)


def _svg_is_clean(page: str) -> None:
    """The page's QR code is an inline SVG: no script, no event handler, no link."""
    found = re.search(r'<figure id="totp-qr">(.*?)</figure>', page, re.DOTALL)
    assert found, page
    root = ET.fromstring(found.group(1))  # noqa: S314 (our own page, parsed to check it)
    assert root.tag.rsplit("}", 1)[-1] == "svg"
    for el in root.iter():
        assert el.tag.rsplit("}", 1)[-1] in {"svg", "title", "g", "path", "rect"}, el.tag
        assert not any(a.lower().startswith("on") or "href" in a.lower() for a in el.attrib)
    assert "<script" not in page


def _add(client: FlaskClient, username: str) -> str:
    page = client.get("/admin/accounts").text
    made = _post(client, "/admin/accounts", page, username=username)
    assert made.status_code == 200 and "shown only once" in made.text
    return _one_time_password(made.text)


def _enrol(client: FlaskClient, station: Station, one_time: str, password: str) -> str:
    """Log in with the one-time password, no code, and enrol; return the TOTP secret."""
    station.clock.advance(seconds=30)
    page = client.get("/login").text
    logged = _post(client, "/login", page, username="rosa", password=one_time, code="")
    assert logged.status_code == 302 and logged.location.endswith("/account/enrol")
    enrol = client.get("/account/enrol").text
    _svg_is_clean(enrol)
    secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', enrol)
    assert secret
    code = pyotp.TOTP(secret.group(1)).generate_otp(
        pyotp.TOTP(secret.group(1)).timecode(station.clock())
    )
    done = _post(client, "/account/enrol", enrol, new=password, confirm=password, code=code)
    assert done.status_code == 302 and done.location.endswith("/"), done.text
    return secret.group(1)


def test_an_added_responder_must_enrol_before_reaching_any_page(
    ws_app: Flask, ws_client: FlaskClient, station: Station
) -> None:
    login(ws_client, station)
    one_time = _add(ws_client, "rosa")
    rosa = ws_app.test_client()
    station.clock.advance(seconds=30)
    page = rosa.get("/login").text
    # The one-time password alone logs her in, to enrolment only
    logged = _post(rosa, "/login", page, username="rosa", password=one_time, code="")
    assert logged.location.endswith("/account/enrol")
    for path in ("/", "/audit", "/cases/1", "/account", "/outbox", "/admin/accounts"):
        response = rosa.get(path)
        assert response.status_code == 302, path
        assert response.location.endswith("/account/enrol"), path
    enrol = rosa.get("/account/enrol").text
    # the one-time password again is refused, in words
    refused = _post(rosa, "/account/enrol", enrol, new=one_time, confirm=one_time, code="123456")
    assert "not the one-time password" in rosa.get(refused.location).text
    assert rosa.get("/").location.endswith("/account/enrol")
    rosa.post("/logout", data={"csrf_token": csrf_token(enrol)})
    # When she enrols, every page opens
    secret = _enrol(rosa, station, one_time, OWN_PASSWORD)
    assert rosa.get("/").status_code == 200
    # and the next login needs her password and a code of her authenticator
    rosa.post("/logout", data={"csrf_token": csrf_token(rosa.get("/").text)})
    assert login(rosa, station, "rosa", password=one_time).status_code == 401  # type: ignore[attr-defined]
    assert login(rosa, station, "rosa", password=OWN_PASSWORD, code="000000").status_code == 401  # type: ignore[attr-defined]
    ok = login(rosa, station, "rosa", password=OWN_PASSWORD, secret=secret)
    assert ok.status_code == 302 and rosa.get("/").status_code == 200  # type: ignore[attr-defined]


def test_an_admin_resets_a_responder_but_not_themselves(
    ws_app: Flask, ws_client: FlaskClient, station: Station
) -> None:
    login(ws_client, station)
    rosa = ws_app.test_client()
    secret = _enrol(rosa, station, _add(ws_client, "rosa"), OWN_PASSWORD)
    assert rosa.get("/").status_code == 200
    accounts_page = ws_client.get("/admin/accounts").text
    ids = {}
    for row in re.findall(r"<tr><td>.*?</tr>", accounts_page, re.S):
        name = re.match(r"<tr><td>([^<]+)</td>", row)
        reset_id = re.search(r"/admin/accounts/(\d+)/reset", row)
        if name and reset_id:
            ids[html.unescape(name.group(1))] = int(reset_id.group(1))
    assert set(ids) == {"rosa"}  # no reset button for one's own account
    # An admin's own account cannot be reset by this path, even by a crafted POST
    own = _post(ws_client, "/admin/accounts/1/reset", accounts_page)
    assert "You cannot reset your own account here" in ws_client.get(own.location).text
    # When the admin resets rosa
    reset = _post(ws_client, f"/admin/accounts/{ids['rosa']}/reset", accounts_page)
    assert reset.status_code == 200 and "reset" in reset.text
    one_time = _one_time_password(reset.text)
    # Then her open session is over, her old password and authenticator fail,
    assert rosa.get("/").location.endswith("/login")
    assert login(rosa, station, "rosa", password=OWN_PASSWORD, secret=secret).status_code == 401  # type: ignore[attr-defined]
    # and she enrols again with the one-time password
    new_secret = _enrol(rosa, station, one_time, "rosa's second own password")
    assert new_secret != secret and rosa.get("/").status_code == 200
    log = ws_client.get("/audit?what=account.reset").text
    assert f"<td>{ADMIN}</td><td>account.reset</td>" in log and one_time not in log


def test_a_responder_replaces_their_authenticator_after_a_code(
    ws_client: FlaskClient, station: Station
) -> None:
    login(ws_client, station)
    page = ws_client.get("/account/totp").text
    _svg_is_clean(page)
    secret = re.search(r'id="totp-secret">([A-Z2-7]{32})<', page)
    assert secret
    wrong = _post(ws_client, "/account/totp", page, code=station.code())
    assert "does not match the new secret" in ws_client.get(wrong.location).text
    station.clock.advance(seconds=30)
    done = _post(ws_client, "/account/totp", page, code=station.code(secret.group(1)))
    assert "Your new authenticator" in ws_client.get(done.location).text
