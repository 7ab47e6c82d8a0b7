"""Every route of the source UI, GET and POST, for a visitor and for a logged-in source,
carries the security headers and safe cookies; so do its error pages (400, 401, 404,
405, 413, 500) and the responses of the real gunicorn server."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from securedrop_wm.drop import Drop
from securedrop_wm.models import Reply, Source
from securedrop_wm.settings import Settings
from securedrop_wm.sources import add_reply
from source_ui import create_app
from tests.conftest import CSRF_RE, new_source
from tests.live import LiveServer

from .checks import header_problems, headers_problems, walk


def test_every_route_for_a_visitor(app: Flask, client: FlaskClient) -> None:
    problems, seen = walk(app, client, "/login", ("source.logout",))
    assert problems == []
    # The walk reached the routes that matter, whatever else is added later.
    assert {"main.index", "source.login", "source.submit", "source.delete", "static"} <= seen


def test_every_route_for_a_logged_in_source(app: Flask, client: FlaskClient, drop: Drop) -> None:
    new_source(client)
    with drop.sessions() as db:
        designation = db.scalars(select(Source.designation)).one()
    add_reply(drop, designation, "We read your report.")
    problems, seen = walk(app, client, "/submit", ("source.logout",))
    assert problems == []
    assert "source.replies" in seen


def _error_pages(client: FlaskClient, settings: Settings) -> dict[str, TestResponse]:
    login = client.get("/login")
    token = CSRF_RE.search(login.text)
    assert token
    return {
        "400 CSRF": client.post("/login", data={"codename": "x"}),
        "401 codename": client.post("/login", data={"csrf_token": token.group(1), "codename": "a"}),
        "404": client.get("/no/such/page"),
        "405": client.put("/login"),
        "413": client.post(
            "/submit",
            data=b"x" * (settings.max_report_bytes + 2 * 1024 * 1024),
            content_type="multipart/form-data; boundary=x",
        ),
    }


def test_error_pages_carry_the_headers(client: FlaskClient, settings: Settings) -> None:
    pages = _error_pages(client, settings)
    assert {name: r.status_code for name, r in pages.items()} == {
        "400 CSRF": 400,
        "401 codename": 401,
        "404": 404,
        "405": 405,
        "413": 413,
    }
    assert {name: header_problems(r) for name, r in pages.items() if header_problems(r)} == {}


def test_server_error_page_carries_the_headers_and_no_traceback(
    client: FlaskClient, drop: Drop
) -> None:
    # Given a reply whose ciphertext was damaged on disk (a real fault, not a mock)
    new_source(client)
    with drop.sessions() as db:
        designation = db.scalars(select(Source.designation)).one()
    add_reply(drop, designation, "We read your report.")
    with drop.sessions() as db:
        name = db.scalars(select(Reply.store_name)).one()
    drop.store.path(name).write_bytes(b"\x85damaged")
    # When the source opens their replies
    response = client.get("/replies")
    # Then they get a quiet error page with every header
    assert response.status_code == 500
    assert "Please try again later" in response.text
    assert "Traceback" not in response.text and "gpg" not in response.text.lower()
    assert header_problems(response) == []


def test_expired_session_page_carries_the_headers(settings: Settings, drop: Drop) -> None:
    now = [time.time()]
    client = create_app(settings, drop, clock=lambda: now[0]).test_client()
    new_source(client)
    now[0] += settings.session_minutes * 60 + 1
    response = client.get("/submit")
    assert response.status_code == 401
    assert header_problems(response) == []


def test_a_captured_cookie_dies_after_the_session_lifetime(settings: Settings, drop: Drop) -> None:
    """Sessions live only in the cookie: one copied by someone else stops working once
    the lifetime has passed since it was issued, even while the source stays active."""
    now = [time.time()]
    app = create_app(settings, drop, clock=lambda: now[0])
    client = app.test_client()
    new_source(client)
    captured = client.get_cookie("sdwm")
    assert captured is not None
    lifetime = settings.session_minutes * 60
    for _ in range(3):  # the source keeps going: each page renews their own cookie
        now[0] += lifetime * 0.6
        assert client.get("/submit").status_code == 200
    thief = app.test_client()
    thief.set_cookie("sdwm", captured.value)
    assert thief.get("/submit").status_code == 401


def test_tampered_or_foreign_cookie_is_a_visitor(settings: Settings, drop: Drop) -> None:
    client = create_app(settings, drop).test_client()
    new_source(client)
    cookie = client.get_cookie("sdwm")
    assert cookie is not None
    flipped = cookie.value[:-2] + ("A" if cookie.value[-2] != "A" else "B") + cookie.value[-1]
    for value in (flipped, cookie.value[:20], "", "%%%", "x" * 4000):
        other = create_app(settings, drop).test_client()
        other.set_cookie("sdwm", value)
        response = other.get("/submit")
        assert response.status_code == 302 and response.location.endswith("/login")
    # A cookie sealed by another drop's session key opens nothing here.
    foreign = create_app(_with_other_session_key(settings), drop).test_client()
    foreign.set_cookie("sdwm", cookie.value)
    assert foreign.get("/submit").status_code == 302


def _with_other_session_key(settings: Settings) -> Settings:
    import dataclasses
    import secrets

    return dataclasses.replace(settings, session_key=secrets.token_bytes(32))


def test_real_server_responses_carry_the_headers(live_server: LiveServer) -> None:
    """Through gunicorn: what it adds or strips reaches the browser too."""
    http = requests.Session()
    problems = []
    checks: list[tuple[str, Callable[[], requests.Response]]] = [
        ("GET /", lambda: http.get(live_server.url + "/", timeout=30)),
        ("GET /generate", lambda: http.get(live_server.url + "/generate", timeout=30)),
        ("GET /static/style.css", lambda: http.get(live_server.url + "/static/style.css")),
        ("GET /nowhere", lambda: http.get(live_server.url + "/nowhere", timeout=30)),
        ("POST /login", lambda: http.post(live_server.url + "/login", timeout=30)),
    ]
    for label, call in checks:
        response = call()
        assert response.status_code < 500, label
        set_cookies = response.raw.headers.getlist("Set-Cookie")  # kept apart by urllib3
        problems += [f"{label}: {p}" for p in headers_problems(response.headers, set_cookies)]
    http.close()
    assert problems == []


def test_a_session_reaches_only_its_own_replies(app: Flask, drop: Drop) -> None:
    """A source who learns another source's reply id can neither read nor delete it."""
    alice, mallory = app.test_client(), app.test_client()
    new_source(alice)
    with drop.sessions() as db:
        designation = db.scalars(select(Source.designation)).one()
    reply = add_reply(drop, designation, "For Alice only.")
    new_source(mallory)
    page = mallory.get("/replies")
    assert "For Alice only." not in page.text
    token = CSRF_RE.search(page.text)
    assert token
    attempt = mallory.post(f"/replies/{reply}/delete", data={"csrf_token": token.group(1)})
    assert attempt.status_code == 302
    assert "That reply no longer exists." in mallory.get("/replies").text
    assert "For Alice only." in alice.get("/replies").text
