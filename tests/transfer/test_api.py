"""The transfer API through Flask's test client: tokens, counts, bundles down and up."""

from __future__ import annotations

import errno
import io
import json
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from securedrop_wm.bundles import ReplyFile, export_bundle, verify_export_bundle
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.models import Report, Submission
from securedrop_wm.status_counts import STATUS_ONLY_ERROR, LevelCounts
from securedrop_wm.transfer import create_token, revoke_token, rotate_token, transfer_status
from securedrop_wm.transfer_client import ServerStatus
from securedrop_wm.vocabulary import Urgency
from tests.bundles.helpers import (
    new_id,
    read_members,
    reply_bundle,
    server_state,
    source_uuid,
    submit,
    write_members,
)
from tests.conftest import Responders

from .conftest import bearer, levels

ENDPOINTS = [("get", "/status"), ("get", "/export"), ("post", "/replies")]


@pytest.mark.parametrize(("method", "url"), ENDPOINTS)
def test_every_endpoint_needs_a_valid_token(
    api_client: FlaskClient, token: str, method: str, url: str, drop: Drop
) -> None:
    before = server_state(drop)
    for headers in ({}, {"Authorization": "Basic b246Y2FsbA=="}, {"Authorization": "Bearer "}):
        response = getattr(api_client, method)(url, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "token" in response.json["message"]
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = getattr(api_client, method)(url, headers=bearer(wrong))
    assert response.status_code == 403
    assert response.json["error"] == "Forbidden"
    # Refused requests changed nothing: no export sequence taken, nothing stored
    assert server_state(drop) == before
    assert drop_sequences(drop) == []


def drop_sequences(drop: Drop) -> list[int]:
    from securedrop_wm.models import BundleRecord

    with drop.sessions() as db:
        return [r.sequence for r in db.query(BundleRecord)]


def test_status_says_how_many_reports_wait_and_nothing_else(
    api_client: FlaskClient,
    token: str,
    drop: Drop,
    signer_gpg: GnuPG,
    responders: Responders,
    tmp_path: Path,
) -> None:
    assert api_client.get("/status", headers=bearer(token)).json == levels()
    # Given one report of each level and a second routine one
    submit(drop)
    submit(drop, urgency="danger")
    submit(drop, urgency="urgent")
    submit(drop)
    response = api_client.get("/status", headers=bearer(token))
    assert response.status_code == 200
    assert response.json == levels(routine=(2, 2), urgent=(1, 1), danger=(1, 1))
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Server" not in response.headers
    # When the workstation acknowledges everything (and the ciphertext is purged)
    with drop.sessions() as db:
        every_item = list(db.scalars(select(Submission.uuid)))
    bundle = reply_bundle(signer_gpg, responders, drop, tmp_path / "r.tar", acknowledged=every_item)
    body = {**bearer(token), "Content-Type": "application/x-tar"}
    assert api_client.post("/replies", data=bundle.read_bytes(), headers=body).status_code == 200
    # Then nothing is pending, the arrivals stay, and no acknowledged report keeps a level
    response = api_client.get("/status", headers=bearer(token))
    assert response.json == levels(routine=(0, 2), urgent=(0, 1), danger=(0, 1))
    with drop.sessions() as db:
        assert set(db.scalars(select(Report.urgency))) == {None}


def test_the_transfer_client_reads_back_what_status_answers(
    api_client: FlaskClient, token: str, drop: Drop
) -> None:
    submit(drop, urgency="urgent")
    body = api_client.get("/status", headers=bearer(token)).json
    status = ServerStatus.from_json(body)
    assert status == transfer_status(drop)
    assert status.level(Urgency.URGENT) == LevelCounts(pending=1, arrived=1)
    assert status.lines() == [
        "danger: 0 waiting, 0 arrived in all",
        "urgent: 1 waiting, 1 arrived in all",
        "routine: 0 waiting, 0 arrived in all",
    ]
    # An answer without a level or a count, or with a count that is not one, is refused
    for broken in (
        {},
        {"levels": {"routine": {"pending": 0, "arrived": 0}}},
        {"levels": {**body["levels"], "danger": {"pending": 0}}},
        {"levels": {**body["levels"], "danger": {"pending": -1, "arrived": 0}}},
        {"levels": {**body["levels"], "danger": {"pending": True, "arrived": 0}}},
        {"levels": {**body["levels"], "danger": {"pending": "1", "arrived": 0}}},
        [],
    ):
        with pytest.raises(ValueError, match=r"^(levels|urgent|danger|pending|arrived)$"):
            ServerStatus.from_json(broken)


def test_a_status_only_token_reads_the_status(api_client: FlaskClient, drop: Drop) -> None:
    watcher = create_token(drop, "watcher", status_only=True)
    submit(drop, urgency="danger")
    response = api_client.get("/status", headers=bearer(watcher))
    assert response.status_code == 200
    assert response.json == levels(danger=(1, 1))


@pytest.mark.parametrize(
    ("method", "url"),
    [("get", "/export"), ("post", "/replies"), ("get", "/nothing"), ("post", "/status")],
)
def test_a_status_only_token_is_refused_everything_else_before_any_work(
    api_client: FlaskClient,
    drop: Drop,
    signer_gpg: GnuPG,
    responders: Responders,
    tmp_path: Path,
    method: str,
    url: str,
) -> None:
    # Given pending reports, a valid reply bundle acknowledging them, a status-only token
    watcher = create_token(drop, "watcher", status_only=True)
    submit(drop, urgency="urgent")
    with drop.sessions() as db:
        items = list(db.scalars(select(Submission.uuid)))
    bundle = reply_bundle(signer_gpg, responders, drop, tmp_path / "r.tar", acknowledged=items)
    before = server_state(drop)
    # When it asks for anything but GET /status
    response = getattr(api_client, method)(
        url,
        data=bundle.read_bytes(),
        headers={**bearer(watcher), "Content-Type": "application/x-tar"},
    )
    # Then it is refused, in JSON, and nothing was done: no export written or sequence
    # taken, no upload kept, nothing imported or acknowledged
    assert response.status_code == 403
    assert response.json == {
        "error": STATUS_ONLY_ERROR,
        "message": "this token may only read the counts (the status endpoint)",
    }
    assert server_state(drop) == before
    assert drop_sequences(drop) == []
    for name in ("exports", "tmp"):
        folder = drop.settings.data_dir / name
        assert not folder.exists() or list(folder.iterdir()) == [], name


def test_rotated_and_revoked_tokens_stop_working(api_client: FlaskClient, drop: Drop) -> None:
    first = create_token(drop, "laptop")
    assert api_client.get("/status", headers=bearer(first)).status_code == 200
    second = rotate_token(drop, "laptop")
    assert second != first
    assert api_client.get("/status", headers=bearer(first)).status_code == 403
    assert api_client.get("/status", headers=bearer(second)).status_code == 200
    revoke_token(drop, "laptop")
    assert api_client.get("/status", headers=bearer(second)).status_code == 403


def test_tokens_are_kept_only_as_hashes(drop: Drop, token: str) -> None:
    drop.close()  # flush the WAL into the database file
    files = [p for p in drop.settings.data_dir.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert token.encode() not in path.read_bytes(), path


def test_export_streams_a_verifiable_bundle_and_reuses_it_while_nothing_changes(
    api_client: FlaskClient,
    token: str,
    drop: Drop,
    workstation_gpg: GnuPG,
    workdir: Path,
    responders: Responders,
    tmp_path: Path,
) -> None:
    sent = submit(drop, {"evidence.pdf": b"%PDF-1.4 " + bytes(100_000)})
    response = api_client.get("/export", headers=bearer(token))
    assert response.status_code == 200
    assert response.mimetype == "application/x-tar"
    assert response.headers["X-SDWM-Sequence"] == "1"
    assert int(response.headers["Content-Length"]) == len(response.data)
    bundle = tmp_path / "pulled.tar"
    bundle.write_bytes(response.data)
    response.close()
    server = drop.settings.signing_fingerprint
    with verify_export_bundle(bundle, workstation_gpg, server, workdir) as verified:
        files = [i for i in verified.manifest.items if i.kind == "file"]
        assert responders.decrypt(verified.item_path(files[0].id)) == sent.files["evidence.pdf"]
    # No temp bundle stays on the server; one export bundle is kept, for the next pull
    tmp = drop.settings.data_dir / "tmp"
    assert not tmp.exists() or list(tmp.iterdir()) == []
    assert sorted(p.name for p in (drop.settings.data_dir / "exports").iterdir()) == [
        ".lock",
        "last.json",
        "last.tar",
    ]
    kept = drop.settings.data_dir / "exports" / "last.tar"
    kept_inode = kept.stat().st_ino
    # Pulled again and again with nothing new: the same bundle, no new sequence or copy
    for _ in range(3):
        again = api_client.get("/export", headers=bearer(token))
        assert again.headers["X-SDWM-Sequence"] == "1"
        assert again.headers["X-SDWM-Items"] == "2"
        assert again.data == bundle.read_bytes()
        again.close()
    assert drop_sequences(drop) == [1]
    assert kept.stat().st_ino == kept_inode
    # A new report: a newer bundle with all pending items
    submit(drop)
    newer = api_client.get("/export", headers=bearer(token))
    assert newer.headers["X-SDWM-Sequence"] == "2"
    assert newer.headers["X-SDWM-Items"] == "3"
    newer.close()


def test_a_newer_cli_export_is_not_followed_by_an_older_one(
    api_client: FlaskClient, token: str, drop: Drop, tmp_path: Path
) -> None:
    # The workstation refuses a sequence older than one it imported (replay rule).
    submit(drop)
    api_client.get("/export", headers=bearer(token)).close()
    export_bundle(drop, tmp_path / "by-the-admin.tar")
    again = api_client.get("/export", headers=bearer(token))
    assert again.headers["X-SDWM-Sequence"] == "3"
    again.close()


def test_a_purge_removes_the_kept_export(
    api_client: FlaskClient,
    token: str,
    drop: Drop,
    signer_gpg: GnuPG,
    responders: Responders,
    tmp_path: Path,
) -> None:
    # Given a pulled export, kept on the server for the next pull
    submit(drop)
    pulled = api_client.get("/export", headers=bearer(token))
    items = read_members_ids(pulled.data, tmp_path)
    pulled.close()
    kept = drop.settings.data_dir / "exports" / "last.tar"
    assert kept.exists()
    # When the workstation acknowledges its items and the server purges them
    acks = reply_bundle(
        signer_gpg, responders, drop, tmp_path / "ack.tar", sequence=1, acknowledged=items
    )
    response = push(api_client, token, acks)
    assert response.json["purged"] == len(items)
    # Then no copy of the purged ciphertext stays in the kept bundle
    assert not kept.exists()


def read_members_ids(data: bytes, tmp_path: Path) -> list[str]:
    """Ids of the items of an export bundle's manifest (read without verifying it)."""
    bundle = tmp_path / "export.tar"
    bundle.write_bytes(data)
    manifest = json.loads(read_members(bundle)[0][1])
    return [item["id"] for item in manifest["items"]]


def test_error_messages_name_no_path(
    api_client: FlaskClient, token: str, drop: Drop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a server whose disk fills while it writes an export bundle
    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    submit(drop)
    monkeypatch.setattr(drop.signing_gpg(), "sign_detached", disk_full)
    # When the transfer machine asks for it
    response = api_client.get("/export", headers=bearer(token))
    # Then it is told why, but not where the server keeps its files
    assert response.status_code == 503
    assert "No space left" in response.json["message"]
    assert "/" not in response.json["message"]


def test_push_imports_a_reply_bundle_once_and_refuses_bad_ones(
    api_client: FlaskClient,
    token: str,
    drop: Drop,
    signer_gpg: GnuPG,
    responders: Responders,
    tmp_path: Path,
) -> None:
    sent = submit(drop)
    reply = tmp_path / "reply.gpg"
    signer_gpg.encrypt_bytes(b"Hello", [responders.team_fingerprint], reply)
    good = reply_bundle(
        signer_gpg,
        responders,
        drop,
        tmp_path / "good.tar",
        sequence=3,
        replies=[ReplyFile(new_id(), source_uuid(drop, sent.login), reply)],
    )
    # A tampered bundle: 422, the error class and why, nothing stored
    members = read_members(good)
    info, data = members[2]
    bad = write_members(tmp_path / "bad.tar", [*members[:2], (info, data[::-1])])
    before = server_state(drop)
    response = push(api_client, token, bad)
    assert response.status_code == 422
    assert response.json["error"] == "HashMismatchError"
    assert "SHA-256" in response.json["message"]
    assert server_state(drop) == before
    # The good one: stored
    response = push(api_client, token, good)
    assert response.status_code == 200
    assert response.json["replies_stored"] == 1
    assert not response.json["already_imported"]
    # Again: nothing changed
    after = server_state(drop)
    response = push(api_client, token, good)
    assert response.json["already_imported"] is True
    assert server_state(drop) == after
    # An older bundle: 409 replay
    old = reply_bundle(signer_gpg, responders, drop, tmp_path / "old.tar", sequence=2)
    response = push(api_client, token, old)
    assert response.status_code == 409
    assert "not newer" in response.json["message"]
    # No upload stays on the server
    assert list((drop.settings.data_dir / "tmp").iterdir()) == []


def push(client: FlaskClient, token: str, path: Path) -> object:
    return client.post(
        "/replies",
        data=path.read_bytes(),
        headers={**bearer(token), "Content-Type": "application/x-tar"},
    )


def test_push_refuses_empty_and_oversized_bodies(
    api: Flask, api_client: FlaskClient, token: str, drop: Drop
) -> None:
    response = api_client.post("/replies", data=b"", headers=bearer(token))
    assert response.status_code == 400
    assert "reply bundle" in response.json["message"]
    api.config["MAX_CONTENT_LENGTH"] = 4096
    response = api_client.post("/replies", data=io.BytesIO(bytes(10_000)), headers=bearer(token))
    assert response.status_code == 413
    assert json.loads(response.data)["error"] == "TooLarge"
    assert list((drop.settings.data_dir / "tmp").iterdir()) == []


def test_unknown_paths_and_methods_answer_in_json(api_client: FlaskClient, token: str) -> None:
    response = api_client.get("/nothing", headers=bearer(token))
    assert response.status_code == 404
    assert response.is_json
    response = api_client.post("/status", headers=bearer(token))
    assert response.status_code == 405
    assert response.is_json
