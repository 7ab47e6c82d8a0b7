"""What every response carries, and what bad input gets: a clear page, nothing kept."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from securedrop_wm.drop import Drop
from securedrop_wm.settings import Settings
from source_ui import create_app
from tests.conftest import csrf_token, new_source, post_multipart, store_files

PAGES = ["/", "/safety", "/generate", "/login", "/nowhere"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_strict_headers_and_no_script(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "unsafe" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "<script" not in response.text and "style=" not in response.text
    assert "http://" not in response.text and "https://" not in response.text


def test_session_cookie_is_httponly_strict_and_encrypted(client: FlaskClient) -> None:
    codename = new_source(client)
    cookie = client.get_cookie("sdwm")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Strict"
    assert cookie.expires is None  # dies with the browser
    for word in codename.split():
        assert word not in cookie.value


def test_not_onion_warning(client: FlaskClient) -> None:
    assert "did not reach this page at its .onion address" in client.get("/").text
    onion = "abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion"
    assert "did not reach" not in client.get("/", base_url=f"http://{onion}").text


def test_wrong_codename_is_refused_clearly(client: FlaskClient) -> None:
    page = client.get("/login")
    for attempt in ("not a codename", "abacus " * 7):
        token = csrf_token(client.get("/login").text if attempt != "not a codename" else page.text)
        response = client.post("/login", data={"csrf_token": token, "codename": attempt})
        assert response.status_code == 401
        assert "That codename was not recognized" in response.text
    assert client.get("/replies").status_code == 302


def test_expired_session_gets_a_clear_page(settings: Settings, drop: Drop) -> None:
    now = [time.time()]
    client = create_app(settings, drop, clock=lambda: now[0]).test_client()
    client.get("/language/fr")
    new_source(client)
    page = client.get("/submit")
    now[0] += settings.session_minutes * 60 + 1
    response = client.post(
        "/submit", data={"csrf_token": csrf_token(page.text), "what_happened": "late"}
    )
    assert response.status_code == 401
    assert "Votre session a expiré" in response.text  # the chosen language outlives it
    assert 'action="/login"' in response.text and ">late</textarea>" in response.text
    now[0] += 1
    assert client.get("/replies").status_code == 302  # session gone: to the login page


def test_missing_or_replayed_csrf_token_is_refused(client: FlaskClient, data_dir: Path) -> None:
    new_source(client)
    token = csrf_token(client.get("/submit").text)
    missing = client.post("/submit", data={"category": "other", "what_happened": "x"})
    assert missing.status_code == 400 and "This form has expired" in missing.text
    fields = {"csrf_token": token, "category": "other", "what_happened": "first"}
    assert client.post("/submit", data=fields).status_code == 302
    replay = client.post("/submit", data={**fields, "what_happened": "second"})
    assert replay.status_code == 400 and "This form has expired" in replay.text
    assert len(store_files(data_dir)) == 1  # only the first report's message


def _post_report(client: FlaskClient, **extra: object) -> object:
    token = csrf_token(client.get("/submit").text)
    data = {"csrf_token": token, "category": "harassment", "urgency": "routine", **extra}
    return post_multipart(client, "/submit", data)


def test_empty_report_is_refused(client: FlaskClient, data_dir: Path) -> None:
    new_source(client)
    response = _post_report(client, what_happened="   ")
    assert response.status_code == 400
    assert "Write what happened or attach at least one file" in response.text
    assert store_files(data_dir) == set()


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        ("../../etc/passwd", "folder path"),
        ("/home/me/a.txt", "folder path"),
        ("evil\x07name.txt", "control characters"),
    ],
)
def test_bad_file_names_are_refused_and_nothing_is_kept(
    client: FlaskClient, data_dir: Path, filename: str, reason: str
) -> None:
    new_source(client)
    response = _post_report(
        client,
        what_happened="with a file",
        files=[(b"ok", "good.txt"), (b"data", filename)],
    )
    assert response.status_code == 400
    assert reason in response.text
    assert store_files(data_dir) == set()


def test_a_refused_file_name_is_explained_in_the_page_language(
    client: FlaskClient, data_dir: Path
) -> None:
    client.get("/language/ar")
    new_source(client)
    response = _post_report(client, what_happened="x", files=[(b"data", "../secret.txt")])
    assert response.status_code == 400
    assert "يجب ألا يحتوي اسم الملف على مسار مجلد." in response.text
    assert "folder path" not in response.text
    assert store_files(data_dir) == set()


def test_unicode_file_names_are_fine(client: FlaskClient, data_dir: Path) -> None:
    new_source(client)
    response = _post_report(client, what_happened="x", files=[(b"data", "صورة الشاشة.png")])
    assert response.status_code == 302
    assert len(store_files(data_dir)) == 2


def test_oversize_report_is_refused_and_nothing_is_kept(settings: Settings, drop: Drop) -> None:
    small = dataclasses.replace(settings, max_report_bytes=64 * 1024)
    client = create_app(small, dataclasses.replace(drop, settings=small)).test_client()
    new_source(client)
    # Within the request limit (report limit + 1 MiB of form), over the report limit:
    response = _post_report(client, what_happened="x", files=[(b"a" * 100 * 1024, "big.bin")])
    assert response.status_code == 413
    assert "larger than this drop accepts" in response.text
    # Over the request limit: refused before the body is read.
    response = _post_report(client, what_happened="x", files=[(b"a" * 2 * 1024 * 1024, "huge.bin")])
    assert response.status_code == 413
    assert store_files(settings.data_dir) == set()


def test_huge_text_field_is_refused(client: FlaskClient, data_dir: Path) -> None:
    new_source(client)
    response = _post_report(client, what_happened="x" * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert "Traceback" not in response.text
    assert store_files(data_dir) == set()


def test_malformed_multipart_is_refused_and_nothing_is_kept(
    client: FlaskClient, data_dir: Path
) -> None:
    new_source(client)
    token = csrf_token(client.get("/submit").text)
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n'
        + token.encode()
        + b'\r\n--XX\r\nContent-Disposition: form-data; name="files"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nsecret start of a file that never ends"
    )
    response = client.post("/submit", data=body, content_type="multipart/form-data; boundary=XX")
    assert 400 <= response.status_code < 500
    assert "Traceback" not in response.text
    assert store_files(data_dir) == set()
