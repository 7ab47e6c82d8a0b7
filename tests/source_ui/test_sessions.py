"""Sessions end on the server: a captured cookie or a replayed form is refused after a
logout, an expiry or a first use, in every worker process."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from flask import Flask

from sdwm_web.services import DROP, SETTINGS
from securedrop_wm.drop import Drop
from securedrop_wm.errors import SettingsError
from securedrop_wm.settings import Settings
from source_ui import create_app
from source_ui.sessions import SessionStore, filesystem_type, session_store_path
from tests.conftest import csrf_token, new_source, store_files
from tests.live import LiveServer


def _store(app: Flask) -> SessionStore:
    store: SessionStore = app.session_interface.store  # type: ignore[attr-defined]
    return store


def _logout(client: object) -> object:
    page = client.get("/replies")  # type: ignore[attr-defined]
    return client.post("/logout", data={"csrf_token": csrf_token(page.text)})  # type: ignore[attr-defined]


def test_a_cookie_captured_before_logout_is_not_logged_in(app: Flask) -> None:
    # Given a source who logs in, and someone who copied their cookie
    client = app.test_client()
    new_source(client)
    captured = client.get_cookie("sdwm")
    assert captured is not None
    # When the source logs out
    response = _logout(client)
    assert response.status_code == 303  # type: ignore[attr-defined]  # to the goodbye page
    # Then the copy opens nothing, and is not renewed
    thief = app.test_client()
    thief.set_cookie("sdwm", captured.value)
    response = thief.get("/replies")
    assert response.status_code == 401 and "Your session expired" in response.text
    assert "Replies from the response team" not in response.text
    assert "sdwm=;" in response.headers["Set-Cookie"]  # not renewed: deleted
    assert _store(app).counts()[0] == 0


def test_logout_clears_the_site_cookies(client: object) -> None:
    new_source(client)  # type: ignore[arg-type]
    response = _logout(client)
    assert response.headers["Clear-Site-Data"] == '"cookies"'  # type: ignore[attr-defined]


def test_an_active_session_ends_after_its_absolute_lifetime(settings: Settings, drop: Drop) -> None:
    now = [time.time()]
    client = create_app(settings, drop, clock=lambda: now[0]).test_client()
    new_source(client)
    idle = settings.session_minutes * 60
    steps = int(settings.session_max_minutes * 60 / (idle * 0.6))
    for _ in range(steps):  # the source stays active, never idle for long
        now[0] += idle * 0.6
        assert client.get("/submit").status_code == 200
    now[0] += idle * 0.6  # now past the absolute lifetime
    response = client.get("/submit")
    assert response.status_code == 401 and 'href="/login"' in response.text


def test_a_replayed_report_is_refused_and_nothing_more_is_stored(
    app: Flask, data_dir: Path
) -> None:
    # Given a logged-in source with the report form and the cookie that came with it
    client = app.test_client()
    new_source(client)
    page = client.get("/submit")
    cookie = client.get_cookie("sdwm")
    assert cookie is not None
    fields = {"csrf_token": csrf_token(page.text), "category": "other", "what_happened": "x"}
    assert client.post("/submit", data=fields).status_code == 302
    stored = store_files(data_dir)
    # When the same post is sent again with the same cookie
    replayer = app.test_client()
    replayer.set_cookie("sdwm", cookie.value)
    replay = replayer.post("/submit", data=fields)
    # Then it is refused clearly and nothing more is stored
    assert replay.status_code == 400 and "This form has expired" in replay.text
    assert store_files(data_dir) == stored


def test_a_replayed_create_gets_a_clear_page(app: Flask) -> None:
    client = app.test_client()
    page = client.get("/generate")
    cookie = client.get_cookie("sdwm")
    assert cookie is not None
    token = csrf_token(page.text)
    assert client.post("/create", data={"csrf_token": token}).status_code == 302
    replayer = app.test_client()
    replayer.set_cookie("sdwm", cookie.value)
    replay = replayer.post("/create", data={"csrf_token": token})
    assert 400 <= replay.status_code < 500
    assert "This form has expired" in replay.text


def test_sessions_live_on_a_tmpfs_and_leave_the_data_dir_alone(app: Flask, data_dir: Path) -> None:
    def snapshot() -> dict[str, tuple[int, int]]:
        return {
            str(p): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in data_dir.rglob("*")
            if p.is_file() and "gnupg" not in p.parts and p.name != "store"
        }

    client = app.test_client()
    new_source(client)  # creating the source writes the database: not what is measured
    _logout(client)
    store = _store(app)
    assert filesystem_type(store.path) in ("tmpfs", "ramfs")
    assert not str(store.path.resolve()).startswith(str(data_dir.resolve()))
    assert store.path.stat().st_mode & 0o077 == 0
    before = snapshot()
    codename = new_source(app.test_client())
    client = app.test_client()
    page = client.get("/login")
    login = {"csrf_token": csrf_token(page.text), "codename": codename}
    assert client.post("/login", data=login).status_code == 302
    assert _store(app).counts()[0] == 2
    _logout(client)
    db_files = {k for k in before if "db.sqlite" in k}
    # Only the database changed, and only because a source was created
    changed = {k for k in set(before) | set(snapshot()) if before.get(k) != snapshot().get(k)}
    assert changed <= db_files


def test_a_session_dir_on_disk_is_refused(settings: Settings, drop: Drop) -> None:
    on_disk = dataclasses.replace(settings, session_dir=settings.data_dir)
    with pytest.raises(SettingsError, match="tmpfs"):
        create_app(on_disk, drop)


def test_a_session_dir_that_is_the_data_dir_is_refused(tmp_path: Path) -> None:
    # Even on a tmpfs: a data dir held in memory is still the data dir, which a backup
    # copies and the threat model keeps to days.
    data = Path(tempfile.mkdtemp(prefix="sdwm-data-", dir="/dev/shm"))  # noqa: S108
    try:
        for session_dir in (data, data / "sessions"):
            session_dir.mkdir(exist_ok=True)
            with pytest.raises(SettingsError, match="the data dir or inside it"):
                session_store_path(session_dir, data)
    finally:
        shutil.rmtree(data)


_HAMMER = """
import secrets, sys, threading
from pathlib import Path
from source_ui.sessions import SessionStore
errors = []
def run():
    store = SessionStore(Path(sys.argv[1]), 1800, 7200, 1800)
    for _ in range(300):
        try:
            store.spend(secrets.token_hex(16))
            store.touch(store.create())
        except Exception as e:
            errors.append(repr(e))
threads = [threading.Thread(target=run) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(len(errors), errors[:3])
"""


def test_workers_and_threads_share_the_store_without_errors() -> None:
    # Given two worker processes with four threads each, as gunicorn runs the source UI
    path = Path(tempfile.mkdtemp(prefix="sdwm-hammer-", dir="/dev/shm")) / "s.sqlite"  # noqa: S108
    try:
        workers = [
            subprocess.Popen(
                [sys.executable, "-c", _HAMMER, str(path)], stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        # When each thread logs sources in and spends form tokens at once
        outputs = [worker.communicate(timeout=240)[0].strip() for worker in workers]
        # Then no call failed (the store once lost its locks to a stray close: "disk I/O
        # error", "database is locked", a malformed file) and nothing was lost
        assert outputs == ["0 []", "0 []"]
        assert SessionStore(path, 1800, 7200, 1800).counts() == (2400, 2400)
    finally:
        shutil.rmtree(path.parent)


def test_the_store_is_bounded(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    path = shm / f"sdwm-test-{os.getpid()}-{time.monotonic_ns()}.sqlite"
    now = [1000.0]
    try:
        store = SessionStore(path, 60, 600, 60, lambda: now[0], max_sessions=3, max_tokens=3)
        records = []
        for _ in range(5):
            now[0] += 1
            records.append(store.create())
        assert store.counts()[0] == 3
        # At the cap the least recently seen sessions ended; the newest live on
        assert not store.touch(records[0]) and store.touch(records[4])
        for i in range(5):
            assert store.spend(f"token{i}")
        assert store.counts()[1] == 3
        now[0] += 61  # everything idle past its lifetime is dropped at the next write
        store.create()
        assert store.counts()[0] == 1
    finally:
        for p in shm.glob(path.name + "*"):
            p.unlink()


def test_logout_ends_the_session_in_every_worker(live_server: LiveServer) -> None:
    # Given a source logged in through a real server with two worker processes
    deadline = time.monotonic() + 30
    while len(live_server.worker_pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(live_server.worker_pids()) == 2
    source = requests.Session()
    page = source.get(f"{live_server.url}/generate", timeout=30)
    token = csrf_token(page.text)
    assert source.post(f"{live_server.url}/create", data={"csrf_token": token}, timeout=60).ok
    captured = source.cookies["sdwm"]
    page = source.get(f"{live_server.url}/replies", timeout=30)
    assert page.status_code == 200
    # When they log out
    logout = source.post(
        f"{live_server.url}/logout",
        data={"csrf_token": csrf_token(page.text)},
        timeout=30,
        allow_redirects=False,
    )
    assert logout.headers["Clear-Site-Data"] == '"cookies"'
    # Then the captured cookie opens nothing, whichever worker answers (new connections)
    for _ in range(16):
        response = requests.get(
            f"{live_server.url}/replies", cookies={"sdwm": captured}, timeout=30
        )
        assert response.status_code == 401 and "Your session expired" in response.text


def test_stores_unused_for_longer_than_any_session_are_removed(app: Flask) -> None:
    # Given a store nobody wrote to for more than a day (a drop removed, a test run)
    folder = _store(app).path.parent
    stale = folder / f"sessions-stale{os.getpid()}.sqlite"
    stale.write_bytes(b"")
    os.utime(stale, (time.time() - 26 * 3600,) * 2)
    # When a drop starts, its own store is kept and the stale one goes
    create_app(app.extensions[SETTINGS], app.extensions[DROP])
    assert not stale.exists() and _store(app).path.exists()
