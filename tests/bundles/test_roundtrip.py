"""A report goes out in an export bundle and comes back as a reply, as in DESIGN flows 3-5."""

from __future__ import annotations

import json
from pathlib import Path

from flask.testing import FlaskClient

from securedrop_wm.bundles import (
    ReplyFile,
    export_bundle,
    import_reply_bundle,
    verify_export_bundle,
)
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from tests.conftest import Responders, csrf_token, new_source

from .conftest import encrypt_reply, new_id, reply_bundle, server_state, submit


def test_export_holds_every_pending_submission_and_decrypts_to_the_bytes_sent(
    drop: Drop, workstation_gpg: GnuPG, workdir: Path, responders: Responders, tmp_path: Path
) -> None:
    # Given two sources, one with an urgent report and two files
    photo = bytes(range(256)) * 400
    a = submit(drop, {"screenshot.png": photo, "notes.txt": "ünïcode\n".encode()})
    b = submit(drop, text="They threatened me.", urgency="danger")

    # When the server exports and the workstation verifies
    out = tmp_path / "export.tar"
    manifest = export_bundle(drop, out)
    with verify_export_bundle(
        out, workstation_gpg, drop.settings.signing_fingerprint, workdir
    ) as v:
        # Then every submission is there and decrypts with the team key to the bytes sent
        assert v.manifest.sequence == 1
        assert len(v.manifest.items) == 4 and len(v.manifest.sources) == 2
        files = {}
        texts = []
        for item in v.manifest.items:
            plain = responders.decrypt(v.item_path(item.id))
            if item.kind == "message":
                texts.append(json.loads(plain))
            else:
                files[item.id] = plain
        assert sorted(t["what_happened"] for t in texts) == sorted(
            [a.what_happened, b.what_happened]
        )
        named = {f["name"]: files[f["submission"]] for t in texts for f in t["files"]}
        assert named == a.files
        urgent = {i.report_id for i in v.manifest.items if i.urgent}
        assert len(urgent) == 1
        for source in v.manifest.sources:
            assert source.key_fingerprint in v.key_path(source.id).read_text() or (
                GnuPG(workdir / "k").import_keys(v.key_path(source.id).read_text())
                == [source.key_fingerprint]
            )
    assert manifest.items == v.manifest.items


def test_reply_bundle_reaches_the_source_and_purges_acknowledged_ciphertext(
    drop: Drop,
    client: FlaskClient,
    workstation_gpg: GnuPG,
    signer_gpg: GnuPG,
    workdir: Path,
    responders: Responders,
    tmp_path: Path,
) -> None:
    # Given a source who reported through the web UI
    codename = new_source(client)
    page = client.get("/submit")
    response = client.post(
        "/submit",
        data={
            "csrf_token": csrf_token(page.text),
            "category": "harassment",
            "what_happened": "A user follows me across wikis.",
            "urgency": "routine",
        },
    )
    assert response.status_code in (200, 302)
    before = server_state(drop)

    # And the workstation imported the export and wrote a reply
    export = tmp_path / "export.tar"
    export_bundle(drop, export)
    with verify_export_bundle(
        export, workstation_gpg, drop.settings.signing_fingerprint, workdir
    ) as v:
        (item,) = v.manifest.items
        (source,) = v.manifest.sources
        reply = encrypt_reply(
            responders, v.key_path(source.id), "We are on it. Stay safe.", tmp_path / "r.gpg"
        )
    bundle = reply_bundle(
        signer_gpg,
        responders,
        drop,
        tmp_path / "replies.tar",
        replies=[ReplyFile(new_id(), source.id, reply)],
        acknowledged=[item.id],
    )

    # When the server imports it
    result = import_reply_bundle(drop, bundle)

    # Then the reply is stored, the submission acknowledged and its ciphertext gone
    assert (result.replies_stored, result.acknowledged, result.purged) == (1, 1, 1)
    after = server_state(drop)
    gone = before.store - after.store
    assert len(gone) == 1 and len(after.store - before.store) == 1
    # And the source logs in and reads the reply
    other = client.application.test_client()
    page = other.get("/login")
    other.post("/login", data={"csrf_token": csrf_token(page.text), "codename": codename})
    assert "We are on it. Stay safe." in other.get("/replies").text
    # And importing the same bundle again changes nothing
    again = import_reply_bundle(drop, bundle)
    assert again.already_imported and server_state(drop) == after
    # And the next export no longer holds the acknowledged submission
    manifest = export_bundle(drop, tmp_path / "export2.tar")
    assert manifest.items == () and manifest.sequence == 2
