"""Property-based fuzzing of the source UI through its test client, with real gpg and
SQLite: whatever a visitor sends (fields, file names, raw multipart bodies, codenames,
paths, cookies), the answer is never a server error or a traceback, a refused report
leaves nothing in the store, and an accepted one decrypts to what was sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from securedrop_wm.vocabulary import Category, Urgency
from tests.conftest import Responders, csrf_token, new_source, post_multipart, store_files

# One app and one logged-in source per test, shared by its examples (an inner function
# is what hypothesis runs): each example compares the store before and after itself.
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

texts = st.text(max_size=300)
names = st.text(min_size=0, max_size=300) | st.sampled_from(
    ["../../etc/passwd", "/abs", "a\x00b", "..", ".", "C:\\x", "é" * 300, "a\r\nb", '"q"']
)
categories = st.sampled_from([*Category, "", "HARASSMENT", "x" * 600]) | texts
urgencies = st.sampled_from([*Urgency, "", "DANGER"]) | texts


def _quiet(text: str) -> bool:
    return "Traceback" not in text and 'File "/' not in text and "Error:" not in text


def test_any_report_form_is_stored_whole_or_refused_cleanly(
    client: FlaskClient, data_dir: Path, responders: Responders
) -> None:
    new_source(client)

    @FUZZ
    @given(
        category=categories,
        urgency=urgencies,
        what=texts,
        wiki=texts,
        links=texts,
        language=texts,
        files=st.lists(st.tuples(st.binary(max_size=2048), names), max_size=3),
    )
    def send(
        category: str,
        urgency: str,
        what: str,
        wiki: str,
        links: str,
        language: str,
        files: list[tuple[bytes, str]],
    ) -> None:
        before = store_files(data_dir)
        fields = {
            "csrf_token": csrf_token(client.get("/submit").text),
            "category": category,
            "urgency": urgency,
            "what_happened": what,
            "wiki": wiki,
            "links": links,
            "reply_language": language,
            "files": files,
        }
        response = post_multipart(client, "/submit", fields)
        event(f"HTTP {response.status_code}")
        assert response.status_code in (302, 400, 413), response.status_code
        assert _quiet(response.text)
        added = store_files(data_dir) - before
        if response.status_code != 302:
            assert added == set(), "a refused report left files behind"
            return
        # Accepted: the message and each file are there; the message says what was sent.
        message = _message(responders, [data_dir / "store" / name for name in added])
        assert message["what_happened"] == what.strip()
        assert message["category"] == category.strip()
        assert len(added) == 1 + len(message["files"])

    send()


def _message(responders: Responders, paths: list[Path]) -> dict[str, Any]:
    """The report's message among its stored ciphertexts (the others are its files)."""
    for path in paths:
        try:
            value = json.loads(responders.decrypt(path))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(value, dict) and "what_happened" in value:
            return value
    raise AssertionError("no message among the stored files")


def _part(name: str, body: bytes, filename: str | None = None, ctype: str = "") -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    head = f"Content-Disposition: {disposition}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode("utf-8", "surrogatepass") + b"\r\n" + body


def test_raw_multipart_bodies_never_break_the_server(client: FlaskClient, data_dir: Path) -> None:
    new_source(client)

    @FUZZ
    @given(
        boundary=st.text(
            alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=70
        ),
        parts=st.lists(
            st.tuples(
                st.sampled_from(["csrf_token", "category", "what_happened", "files", "x", ""]),
                st.binary(max_size=512),
                st.none() | names,
                st.sampled_from(["", "text/plain", "application/octet-stream", "multipart/mixed"]),
            ),
            max_size=5,
        ),
        cut=st.none() | st.integers(min_value=0, max_value=4096),
        junk=st.binary(max_size=64),
        with_token=st.booleans(),
        with_fields=st.booleans(),
    )
    @example(  # a file cut off mid-way, after a valid token and fields
        boundary="b",
        parts=[("files", b"x" * 99, "a.bin", "")],
        cut=190,
        junk=b"",
        with_token=True,
        with_fields=True,
    )
    def send(
        boundary: str,
        parts: list[tuple[str, bytes, str | None, str]],
        cut: int | None,
        junk: bytes,
        with_token: bool,
        with_fields: bool,
    ) -> None:
        before = store_files(data_dir)
        token = csrf_token(client.get("/submit").text)
        chunks = [_part("csrf_token", token.encode())] if with_token else []
        if with_fields:
            chunks += [_part("category", b"threats"), _part("what_happened", b"fuzzed report")]
        chunks += [_part(n, b, f, c) for n, b, f, c in parts]
        delimiter = b"--" + boundary.encode()
        body = junk + b"".join(delimiter + b"\r\n" + c + b"\r\n" for c in chunks)
        body = (body + delimiter + b"--")[:cut]
        response = client.post(
            "/submit", data=body, content_type=f"multipart/form-data; boundary={boundary}"
        )
        csrf = " CSRF" if "form has expired" in response.text else ""
        event(f"HTTP {response.status_code}{csrf}")
        assert response.status_code < 500, response.status_code
        assert _quiet(response.text)
        if response.status_code != 302:
            assert store_files(data_dir) == before

    send()


def test_any_codename_is_refused_without_a_server_error(client: FlaskClient) -> None:
    @FUZZ
    @given(codename=st.text(max_size=400) | st.sampled_from(["", " " * 300, "\x00" * 7]))
    def log_in(codename: str) -> None:
        token = csrf_token(client.get("/login").text)
        response = client.post("/login", data={"csrf_token": token, "codename": codename})
        assert response.status_code == 401
        assert "That codename was not recognized" in response.text

    log_in()


def test_any_path_method_or_cookie_is_answered_calmly(client: FlaskClient) -> None:
    @FUZZ
    @given(
        path=st.text(max_size=200),
        target=st.text(max_size=200) | st.sampled_from(["//evil.example", "/\\evil", "https://x"]),
        method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
        cookie=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=600),
    )
    def visit(path: str, target: str, method: str, cookie: str) -> None:
        client.set_cookie("sdwm", cookie)
        response = client.open("/" + path.lstrip("/"), method=method)
        assert response.status_code < 500
        # The language switch sends a visitor back only to a page of this site.
        switch = client.get("/language/fr", query_string={"next": target})
        location = switch.headers.get("Location", "")
        assert switch.status_code == 302
        assert location.startswith("/") and not location.startswith(("//", "/\\"))

    visit()
