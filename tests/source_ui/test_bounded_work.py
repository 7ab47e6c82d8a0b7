"""Bounded work per request, in the app: a cap on files per report checked before any
work, one gpg at a time per upload, the form token checked before the first file part
starts a gpg, and the lanes that bound Argon2id derivations and key creation.

The real server (gunicorn, other sources in the same worker) is in test_bounded_live.py.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from securedrop_wm.drop import Drop
from securedrop_wm.models import Source
from securedrop_wm.retention import maintain
from securedrop_wm.settings import Settings
from source_ui.lanes import Busy, Lane
from tests.conftest import csrf_token, new_source, store_files
from tests.source_ui.uploads import gpg_children, post_watched, report_form


def submit_token(client: FlaskClient) -> str:
    return csrf_token(client.get("/submit").text)


def test_a_report_with_300_file_parts_is_refused_with_nothing_stored(
    client: FlaskClient, data_dir: Path, settings: Settings
) -> None:
    assert settings.max_files_per_report == 30
    new_source(client)
    before = store_files(data_dir)
    response, watched = post_watched(client, report_form(submit_token(client), 300, 4096))
    assert response.status_code == 413
    assert "at most 30 files in one report" in response.text
    assert "Nothing was kept" in response.text
    assert 'id="files-not-kept"' in response.text
    # What the source typed comes back; no file, not even a temporary one, remains.
    assert "Someone keeps reverting my edits" in response.text
    assert store_files(data_dir) == before
    assert max(watched.gpg_seen) <= 1
    assert gpg_children() == 0
    # The refusal came at the 31st file part: the rest of the body was never read.
    assert len(watched.gpg_seen) < 300 * 4096 // (64 * 1024)
    # The source is not stuck: the form that came back sends a report.
    token = csrf_token(response.text)
    response, _ = post_watched(client, report_form(token, 21, 1024))
    assert response.status_code == 302, response.text
    assert len(store_files(data_dir) - before) == 22  # 21 files and the message


def test_the_file_cap_is_a_setting_and_explained_in_the_sources_language(
    settings: Settings, drop: Drop, data_dir: Path
) -> None:
    import dataclasses

    from source_ui import create_app

    app = create_app(dataclasses.replace(settings, max_files_per_report=25), drop)
    client = app.test_client()
    new_source(client)
    client.get("/language/fr")
    before = store_files(data_dir)
    response, _ = post_watched(client, report_form(submit_token(client), 26, 1024))
    assert response.status_code == 413
    assert "25 fichiers au plus par signalement" in response.text
    assert "Rien n'a été conservé" in response.text.replace("&#39;", "'")
    assert store_files(data_dir) == before
    # Exactly the cap is accepted.
    response, _ = post_watched(client, report_form(csrf_token(response.text), 25, 1024))
    assert response.status_code == 302


def test_an_upload_runs_one_gpg_at_a_time(client: FlaskClient, data_dir: Path) -> None:
    new_source(client)
    before = store_files(data_dir)
    response, watched = post_watched(client, report_form(submit_token(client), 6, 300_000))
    assert response.status_code == 302, response.text
    assert len(store_files(data_dir) - before) == 7
    # Parts were being encrypted while the body streamed, never two at once.
    assert max(watched.gpg_seen) == 1
    assert len(watched.gpg_seen) > 6


@pytest.mark.parametrize("token", ["missing", "forged", "after the files"])
def test_an_upload_without_a_valid_token_first_starts_no_gpg(
    client: FlaskClient, data_dir: Path, token: str
) -> None:
    new_source(client)
    real = submit_token(client)
    before = store_files(data_dir)
    values = {
        "missing": report_form(None, 300, 4096),
        "forged": report_form("IjEyMzQ1Ig.forged.token", 300, 4096),
        "after the files": report_form(real, 30, 4096, token_last=True),
    }[token]
    response, watched = post_watched(client, values)
    assert response.status_code == 400
    assert "This form has expired" in response.text
    assert max(watched.gpg_seen) == 0
    assert store_files(data_dir) == before


def test_a_spent_token_starts_no_gpg_and_a_good_one_is_spent_once(
    client: FlaskClient, data_dir: Path
) -> None:
    new_source(client)
    token = submit_token(client)
    response, _ = post_watched(client, report_form(token, 2, 1024))
    assert response.status_code == 302
    after_first = store_files(data_dir)
    # The same token (and cookie) again: refused before the first file part.
    response, watched = post_watched(client, report_form(token, 10, 4096))
    assert response.status_code == 400
    assert max(watched.gpg_seen) == 0
    assert store_files(data_dir) == after_first


def test_a_new_codename_page_says_when_an_unused_codename_stops(
    app: Flask, client: FlaskClient, settings: Settings
) -> None:
    page = client.get("/generate")
    days = settings.unused_source_days
    assert f"this codename stops working after {days} days" in page.text
    client.get("/language/ru")
    page = client.get("/generate")
    assert re.search(rf"через {days} (дней|дня|день)", page.text)


# The lanes, on their own.


def test_a_lane_runs_its_concurrency_queues_in_order_and_refuses_the_rest() -> None:
    lane = Lane("test", concurrency=1, queue=2, wait_seconds=5)
    order: list[int] = []
    release = threading.Event()
    entered = threading.Event()

    def first() -> None:
        with lane.slot():
            entered.set()
            release.wait(5)
            order.append(0)

    def waiter(i: int) -> None:
        with lane.slot():
            order.append(i)

    threads = [threading.Thread(target=first)]
    threads[0].start()
    assert entered.wait(5)
    for i in (1, 2):
        t = threading.Thread(target=waiter, args=(i,))
        t.start()
        threads.append(t)
        deadline = time.monotonic() + 5
        while len(lane._waiting) < i and time.monotonic() < deadline:
            time.sleep(0.01)
    with pytest.raises(Busy) as refused:
        with lane.slot():
            pass
    assert refused.value.retry_after >= 2
    release.set()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2]  # first come, first served
    with lane.slot():  # and room again
        pass


def test_a_queued_job_gives_up_after_the_wait() -> None:
    lane = Lane("test", concurrency=1, queue=1, wait_seconds=0.2)
    with lane.slot():
        started = time.monotonic()
        with pytest.raises(Busy), lane.slot():
            pass
        assert time.monotonic() - started < 2
    assert not lane._waiting


def test_a_removed_codename_is_told_so_in_the_sources_language(
    app: Flask, drop: Drop, settings: Settings
) -> None:
    client = app.test_client()
    codename = new_source(client)
    # A codename that never reported, older than unused_source_days: removed by retention.
    old = drop.today() - dt.timedelta(days=settings.unused_source_days + 1)
    with drop.sessions.begin() as db:
        db.execute(update(Source).values(created_day=old))
    maintain(drop)
    for language, text in (
        ("en", "were removed from the server after the retention period"),
        ("es", "se eliminaron del servidor tras el periodo de conservación"),
    ):
        visitor = app.test_client()
        visitor.get(f"/language/{language}")
        page = visitor.get("/login")
        response = visitor.post(
            "/login", data={"csrf_token": csrf_token(page.text), "codename": codename}
        )
        assert response.status_code == 401
        assert text in response.text
