"""A report goes out in an export bundle and comes back as a reply (DESIGN flows 3 to 5)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from securedrop_wm.bundles import (
    ReplyFile,
    export_bundle,
    import_reply_bundle,
    verify_export_bundle,
)
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from tests.conftest import Responders, csrf_token

from .helpers import encrypt_reply, new_id, reply_bundle, server_state, submit


@pytest.fixture
def team_secret_key(responders: Responders, tmp_path: Path) -> Path:
    """The team's secret key as a file, the way Sequoia's ``sq`` takes it."""
    out = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(responders.home),
            "--batch",
            "--export-secret-keys",
            responders.team_fingerprint,
        ],
        capture_output=True,
        check=True,
    ).stdout
    path = tmp_path / "team.pgp"
    path.write_bytes(out)
    return path


def sq_decrypt(key: Path, path: Path) -> bytes:
    """Decrypt with Sequoia (sq 0.27 in Debian 12: ``--recipient-key``)."""
    return subprocess.run(
        ["sq", "decrypt", "--recipient-key", str(key), str(path)],
        capture_output=True,
        check=True,
    ).stdout


def test_every_exported_submission_decrypts_with_gpg_and_sq_to_the_bytes_sent(
    drop: Drop,
    workstation_gpg: GnuPG,
    workdir: Path,
    responders: Responders,
    team_secret_key: Path,
    tmp_path: Path,
) -> None:
    # Given two sources, one with two files, one in danger
    photo = bytes(range(256)) * 400
    a = submit(drop, {"screenshot.png": photo, "notes.txt": "ünïcode\n".encode()})
    b = submit(drop, text="They threatened me.", urgency="danger")

    # When the server exports and the workstation verifies the bundle
    out = tmp_path / "export.tar"
    written = export_bundle(drop, out)
    server = drop.settings.signing_fingerprint
    with verify_export_bundle(out, workstation_gpg, server, workdir) as bundle:
        manifest = bundle.manifest
        # Then it holds both reports: two messages and two files, from two sources
        assert manifest == written
        assert (manifest.sequence, manifest.server_id) == (1, server)
        assert sorted(i.kind for i in manifest.items) == ["file", "file", "message", "message"]
        assert len(manifest.sources) == 2
        # And every item decrypts with gpg and with sq, to the same bytes
        plain = {}
        for item in manifest.items:
            by_gpg = responders.decrypt(bundle.item_path(item.id))
            assert sq_decrypt(team_secret_key, bundle.item_path(item.id)) == by_gpg
            plain[item.id] = by_gpg
        messages = [json.loads(plain[i.id]) for i in manifest.items if i.kind == "message"]
        # And those bytes are what the sources sent
        assert sorted(m["what_happened"] for m in messages) == sorted(
            [a.what_happened, b.what_happened]
        )
        files = {f["name"]: plain[f["submission"]] for m in messages for f in m["files"]}
        assert files == a.files
        # And only the report of the source in danger is flagged urgent
        urgent = {i.report_id for i in manifest.items if i.urgent}
        in_danger = [m for m in messages if m["urgency"] == "danger"]
        assert len(urgent) == 1 and len(in_danger) == 1
        # And each source's public key is the one that will encrypt replies to them
        keys = GnuPG(workdir / "keys")
        for source in manifest.sources:
            imported = keys.import_keys(bundle.key_path(source.id).read_text())
            assert imported == [source.key_fingerprint]
        keys.close()


def test_reply_bundle_reaches_the_source_and_purges_acknowledged_ciphertext(
    drop: Drop,
    client: FlaskClient,
    workstation_gpg: GnuPG,
    signer_gpg: GnuPG,
    workdir: Path,
    responders: Responders,
    tmp_path: Path,
) -> None:
    # Given a source who reported a harassment case with a file
    sent = submit(drop, {"diff.txt": b"- my username\n+ my real name\n"})
    before = server_state(drop)

    # And the workstation imported the export and wrote a reply
    export = tmp_path / "export.tar"
    export_bundle(drop, export)
    server = drop.settings.signing_fingerprint
    with verify_export_bundle(export, workstation_gpg, server, workdir) as bundle:
        items = [i.id for i in bundle.manifest.items]
        (source,) = bundle.manifest.sources
        reply = encrypt_reply(
            responders, bundle.key_path(source.id), "We are on it. Stay safe.", tmp_path / "r"
        )
    replies = reply_bundle(
        signer_gpg,
        responders,
        drop,
        tmp_path / "replies.tar",
        replies=[ReplyFile(new_id(), source.id, reply)],
        acknowledged=items,
    )

    # When the server imports the reply bundle
    result = import_reply_bundle(drop, replies)

    # Then the reply is stored, both submissions acknowledged and their ciphertext gone
    assert (result.replies_stored, result.acknowledged, result.purged) == (1, 2, 2)
    after = server_state(drop)
    assert len(before.store - after.store) == 2
    assert len(after.store - before.store) == 1
    assert all(acknowledged for _, acknowledged in after.reports)
    # And the source logs in with their codename and reads the reply
    page = client.get("/login")
    client.post("/login", data={"csrf_token": csrf_token(page.text), "codename": sent.codename})
    assert "We are on it. Stay safe." in client.get("/replies").text
    # And importing the same bundle again changes nothing
    again = import_reply_bundle(drop, replies)
    assert again.already_imported
    assert server_state(drop) == after
    # And the next export no longer holds the acknowledged submissions
    manifest = export_bundle(drop, tmp_path / "export2.tar")
    assert (manifest.items, manifest.sequence) == ((), 2)


def test_retention_keeps_acknowledged_ciphertext_until_it_is_due(
    drop: Drop, signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    import dataclasses
    import datetime as dt

    from securedrop_wm.bundles import purge_acknowledged
    from securedrop_wm.models import Submission

    # Given a drop that keeps acknowledged ciphertext for 7 days
    drop.settings = dataclasses.replace(drop.settings, purge_acknowledged_after_days=7)
    submit(drop)
    with drop.sessions() as db:
        acks = [s.uuid for s in db.query(Submission)]
    stored = server_state(drop).store
    bundle = reply_bundle(signer_gpg, responders, drop, tmp_path / "r.tar", acknowledged=acks)
    # When the workstation acknowledges it today
    result = import_reply_bundle(drop, bundle)
    # Then nothing is purged yet, and it is no longer exported
    assert (result.acknowledged, result.purged) == (1, 0)
    assert server_state(drop).store == stored
    assert export_bundle(drop, tmp_path / "e.tar").items == ()
    # And six days later a purge still keeps it; on the seventh it is gone
    day = drop.today()
    drop.today = lambda: day + dt.timedelta(days=6)
    assert purge_acknowledged(drop) == 0
    drop.today = lambda: day + dt.timedelta(days=7)
    assert purge_acknowledged(drop) == 1
    assert not (stored & server_state(drop).store)


def test_a_purge_waits_until_a_running_export_has_read_the_ciphertexts(
    drop: Drop, signer_gpg: GnuPG, responders: Responders, tmp_path: Path
) -> None:
    import threading

    from securedrop_wm.bundles import server as bundles
    from securedrop_wm.models import Submission

    submit(drop)
    with drop.sessions() as db:
        acks = [s.uuid for s in db.query(Submission)]
    stored = server_state(drop).store
    bundle = reply_bundle(signer_gpg, responders, drop, tmp_path / "r.tar", acknowledged=acks)
    done = threading.Event()

    def push() -> None:
        import_reply_bundle(drop, bundle)
        done.set()

    # While an export holds the store (as export_bundle does while it reads)...
    with bundles._store_lock(drop, exclusive=False):
        worker = threading.Thread(target=push)
        worker.start()
        # ...the import's purge waits and the ciphertext stays intact
        assert not done.wait(0.5)
        assert server_state(drop).store == stored
    worker.join(30)
    assert done.is_set()
    assert not (stored & server_state(drop).store)
