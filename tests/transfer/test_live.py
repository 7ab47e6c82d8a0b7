"""The transfer API under real gunicorn: pull an export, push replies, log nothing."""

from __future__ import annotations

from pathlib import Path

import requests

from securedrop_wm.bundles import ReplyFile, verify_export_bundle
from securedrop_wm.crypto import GnuPG
from securedrop_wm.drop import Drop
from securedrop_wm.transfer import create_token
from securedrop_wm.transfer_client.errors import _http_error
from tests.bundles.helpers import encrypt_reply, new_id, reply_bundle, server_state, submit
from tests.conftest import Responders
from tests.live import LiveServer, free_port

from .conftest import bearer, levels


def test_pull_and_push_through_gunicorn_leave_no_trace_in_its_output(
    drop: Drop,
    token: str,
    workstation_gpg: GnuPG,
    signer_gpg: GnuPG,
    responders: Responders,
    workdir: Path,
    tmp_path: Path,
) -> None:
    sent = submit(drop, {"threat.eml": b"From: someone\n\nI know where you live.\n" * 2000})
    log = tmp_path / "server.log"
    config = drop.settings.data_dir / "config.toml"
    with LiveServer.transfer_api(config, free_port(), log) as server:
        session = requests.Session()
        assert session.get(f"{server.url}/status").status_code == 401
        assert session.get(f"{server.url}/status", headers=bearer("sdwm_wrong")).status_code == 403
        status = session.get(f"{server.url}/status", headers=bearer(token))
        assert status.json() == levels(routine=(1, 1))
        assert status.headers["Cache-Control"] == "no-store"

        # Pull: streamed to a file, verified, decrypted
        bundle = tmp_path / "pulled.tar"
        with session.get(f"{server.url}/export", headers=bearer(token), stream=True) as r:
            assert r.status_code == 200
            length = int(r.headers["Content-Length"])
            with bundle.open("wb") as f:
                for chunk in r.iter_content(65536):
                    f.write(chunk)
        assert bundle.stat().st_size == length
        server_fpr = drop.settings.signing_fingerprint
        with verify_export_bundle(bundle, workstation_gpg, server_fpr, workdir) as v:
            item = next(i for i in v.manifest.items if i.kind == "file")
            assert responders.decrypt(v.item_path(item.id)) == sent.files["threat.eml"]
            (source,) = v.manifest.sources
            reply = encrypt_reply(responders, v.key_path(source.id), "Received.", tmp_path / "r")
            acks = [i.id for i in v.manifest.items]

        # Push: replies stored, acknowledged ciphertext purged
        replies = reply_bundle(
            signer_gpg,
            responders,
            drop,
            tmp_path / "replies.tar",
            replies=[ReplyFile(new_id(), source.id, reply)],
            acknowledged=acks,
        )
        before = server_state(drop)
        with replies.open("rb") as body:
            pushed = session.post(
                f"{server.url}/replies",
                data=body,
                headers={**bearer(token), "Content-Type": "application/x-tar"},
            )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["replies_stored"] == 1 and pushed.json()["purged"] == 2
        assert len(before.store - server_state(drop).store) == 2
        status = session.get(f"{server.url}/status", headers=bearer(token))
        assert status.json() == levels(routine=(0, 1))
        session.close()

    # Nothing about a request reached the server's output (no access log, no errors)
    output = log.read_text()
    for trace in ("GET", "POST", "/status", "/export", "/replies", token, source.designation):
        assert trace not in output
    assert list((drop.settings.data_dir / "tmp").iterdir()) == []
    # and the export kept for the next pull went with the ciphertext it copied
    assert not (drop.settings.data_dir / "exports" / "last.tar").exists()


def test_a_status_only_token_is_told_why_pull_is_refused(drop: Drop, tmp_path: Path) -> None:
    # The real answer of the real server, read by the transfer client's error mapping:
    # "revoked, rotated or mistyped" would send the responder after the wrong problem.
    watcher = create_token(drop, "watcher", status_only=True)
    config = drop.settings.data_dir / "config.toml"
    with LiveServer.transfer_api(config, free_port(), tmp_path / "server.log") as server:
        with requests.get(f"{server.url}/export", headers=bearer(watcher), timeout=30) as r:
            assert r.status_code == 403
            message = str(_http_error(r, "transfer.onion"))
    assert "may only read the counts" in message
    assert "revoked" not in message
